"""The demo's line without the robot: a fair before / after check of what the planner puts on the pairs (truth side).

For every pair of a world dataset (``gluecell demo``'s ``<out>/world``) it runs the cell's own stages as the demo
does (:class:`~gluecell.cell.control.pipeline.RealPipeline`: scan the pair's camera frames, predict the line or let
the simulated operator mark it, plan with the safety policy), once per planner setting, sprays the PLANNED upper
path on the true upper refined near its line (:mod:`.finemesh`) and labels the inspection views exactly as the
simulated cell does (``capture_inspection``, seed ``id + 911``, no faults). No robot, no rosbridge, no real time:
the same scans and lines for every setting, so a difference is the planner's. What it leaves out is the arm's
tracking (the executed path; on the 50-pair demo, seed 7, one pair of ten defective ones was defective on its
executed path only).

    python -m gluecell.cell.sim.yieldcheck WORLD --first 0 --last 50 --out rows.jsonl   # both settings
    python -m gluecell.cell.sim.yieldcheck --summary rows.jsonl

Settings: ``default`` (the planner's defaults, the demo before the design film) and ``cell`` (the demo cell's
``demo_pathplan_config()``: its calibrated gun, passes designed for 2 x the inspected film).
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SETTINGS", "check_pairs", "summarise_rows"]

#: Planner settings compared (name -> ``demo_pathplan_config`` arguments; None: the planner's defaults).
SETTINGS: dict[str, tuple[str, float] | None] = {"default": None, "cell": ("world1", 2.0)}


def _pipelines(world: Path, names: list[str]) -> dict[str, Any]:
    from gluecell.cell.cli.demo import demo_pathplan_config
    from gluecell.cell.control.pipeline import RealPipeline
    from gluecell.cell.control.settings import sim_style_library
    from gluecell.cell.sim.operator import sim_line_marker

    out = {}
    for name in names:
        arg = SETTINGS[name]
        cfg = None if arg is None else demo_pathplan_config(*arg)
        out[name] = RealPipeline(sim_style_library(), marker=sim_line_marker(world), plan_worker=False,
                                 pathplan_config=cfg)  # fmt: skip
    return out


def _label(truth: Any, plan: dict[str, Any], sid: str) -> dict[str, Any]:
    from gluecell.core.plan import plan_from_dict
    from gluecell.datasets.world.uv_capture import capture_inspection
    from gluecell.datasets.world.uv_spray import SprayFaults

    paths = [p for p in plan_from_dict(plan).paths if p.part == "upper"]
    cap = capture_inspection(truth, paths, SprayFaults(), np.random.default_rng(int(sid) + 911))
    return {"defects": sorted({d for lb in cap.labels for d in lb["defects"]}),
            "views": [[lb["defects"], round(lb["overspray_mm"], 3), round(lb["gap_area_mm2"], 2)]
                      for lb in cap.labels]}  # fmt: skip


def check_pairs(world: Path, ids: list[str], out: Path, names: list[str] | None = None) -> None:
    """Plan, spray and label ``ids`` of ``world`` with each setting; one JSON line per (pair, setting) to ``out``."""
    from gluecell.datasets.format import open_dataset

    from .finemesh import refine_near_line

    ds = open_dataset(world)
    pipes = _pipelines(world, names or list(SETTINGS))
    with open(out, "a") as fh:
        for sid in ids:
            wi = json.loads((world / "inputs" / sid / "workitem.json").read_text())
            item = {"id": sid, "style": wi["style"], "size_eu": wi["size_eu"], "side": wi["side"]}
            truth = refine_near_line(ds.truth(sid))
            for name, pipe in pipes.items():
                t = time.monotonic()
                pp = pipe.prepare(item, world / "inputs" / sid)
                row: dict[str, Any] = {"id": sid, "setting": name, "verdict": pp.verdict, "reason": pp.reason}
                if pp.verdict == "ok":
                    row["robot_s"] = float(sum(p.t[-1] - p.t[0] for p in pp.programs.values()))
                    row.update(_label(truth, pp.plan, sid))
                row["wall_s"] = round(time.monotonic() - t, 1)
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(sid, name, pp.verdict, row.get("defects"), f"{row.get('robot_s', 0):.1f} s", flush=True)


def summarise_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per setting, over the pairs every setting was run on: planned, truly good, defective (by type), robot s."""
    by: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
    for r in rows:
        by[r["id"]][r["setting"]] = r
    names = sorted({r["setting"] for r in rows})
    ids = [i for i in sorted(by) if all(n in by[i] for n in names)]
    out = {}
    for n in names:
        rs = [by[i][n] for i in ids]
        ok = [r for r in rs if r["verdict"] == "ok"]
        bad = [r for r in ok if r.get("defects")]
        out[n] = {"pairs": len(rs), "planned": len(ok), "good": len(ok) - len(bad), "defective": len(bad),
                  "by_type": dict(collections.Counter(k for r in bad for k in r["defects"])),
                  "robot_s_mean": float(np.mean([r["robot_s"] for r in ok])) if ok else float("nan"),
                  "defective_ids": [r["id"] for r in bad],
                  "refused_ids": [r["id"] for r in rs if r["verdict"] != "ok"]}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m gluecell.cell.sim.yieldcheck``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("world", nargs="?", type=Path, help="a world dataset (gluecell demo's <out>/world)")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--last", type=int, default=50, help="pairs first..last-1 (ids 00000, 00001, ...)")
    p.add_argument("--setting", action="append", choices=sorted(SETTINGS), help="default: all")
    p.add_argument("--out", type=Path, help="JSON lines (appended)")
    p.add_argument("--summary", type=Path, help="summarise a JSON lines file instead")
    a = p.parse_args(argv)
    if a.summary is not None:
        rows = [json.loads(line) for line in a.summary.read_text().splitlines() if line.strip()]
        print(json.dumps(summarise_rows(rows), indent=1))
        return 0
    if a.world is None or a.out is None:
        p.error("WORLD and --out are required (or --summary FILE)")
    check_pairs(a.world, [f"{i:05d}" for i in range(a.first, a.last)], a.out, a.setting)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
