"""``gluecell demo``: the main job on the embedded default (the simulated world).

For a few synthetic pairs: the virtual cameras scan the sole and the upper, perception cleans the
scans, deformation predicts the bite line, the planner plans both spray paths and robot programs, and
the simulated cell sprays them. Each pair gets a picture and a row in the summary table with its
errors against the world's truth and the stage timings. A pair the software refuses (bad scan,
uncertain bite line, unsafe plan) goes to the human's rework queue with the reason, as on the line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run_demo", "run_pair", "PASS_ABOVE_MM", "PASS_COVERAGE"]

#: A sprayed pair passes inspection when no glue lies further above the true bite line than this (mm; the
#: bench's goal for the planner) and this fraction of the true bond region is covered.
PASS_ABOVE_MM = 0.5
PASS_COVERAGE = 0.98


def _bite_line(scans: dict[str, Any], truth: dict[str, Any], item: Any, mode: str, row: dict[str, Any],
               refs: dict, seed: int) -> Any:  # fmt: skip
    """The pair's bite line and the planner config for it: predicted (with the style's nominal upper and sole
    from the simulated cell's style library and the shipped calibration; the glue kept ``MARGIN_SIGMAS`` sigma
    inside it), or marked by the operator (always in "marked" mode; in "predicted" mode when the prediction is
    refused, as the line's human does with a pair the software hands over)."""
    import numpy as np

    from gluecell.cell.sim.outcome import marked_bite_line
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.core.errors import GlueCellError
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
    from gluecell.deformation.predict import predict_attach
    from gluecell.pathplan.pipeline import PathplanConfig
    from gluecell.pathplan.safety import MARGIN_SIGMAS, with_margin

    if mode == "predicted":
        t = time.perf_counter()
        try:
            if "calibration" not in refs:  # read once for all pairs
                refs["calibration"] = load_calibration(DEFAULT_CALIBRATION)
            pred = predict_attach(scans["upper"], scans["sole"], reference=nominal_upper(refs, item)[:2],
                                  sole_reference=nominal_sole(refs, item), style=item.style,
                                  calibration=refs["calibration"])  # fmt: skip
            sigma = float(np.percentile(pred.bite_line_sigma, 95))
            cfg = with_margin(PathplanConfig(), sigma, MARGIN_SIGMAS)
            row["line"] = f"predicted (margin {cfg.region.bite_margin_mm:.1f} mm)"
            return pred.bite_line, cfg
        except GlueCellError as exc:
            row["line"] = f"operator (prediction refused: {exc.message})"
        finally:
            row["ms"]["deformation"] = (time.perf_counter() - t) * 1e3
    else:
        row["line"] = "operator"
    return marked_bite_line(truth, seed=seed), PathplanConfig()


def run_pair(ds: Any, sid: str, out: Path, bite_line: str = "predicted", refs: dict | None = None) -> dict[str, Any]:
    """Run the pipeline on sample ``sid`` of dataset ``ds``; returns its summary row.

    Args:
        bite_line: "predicted" (deformation step; a pair whose prediction is refused goes to the operator,
            who marks the line) or "marked" (the operator marks every pair). The simulated cell plays that
            operator, see :func:`gluecell.cell.sim.outcome.marked_bite_line`.
        refs: cache of the style references and the calibration (shared between pairs).
    """
    from gluecell.cell.bench.deformation import pair_errors
    from gluecell.cell.cli.plan import draw_plan
    from gluecell.cell.sim.outcome import spray_outcome
    from gluecell.core.errors import GlueCellError
    from gluecell.core.plan import Plan, write_plan
    from gluecell.core.ply import write_ply
    from gluecell.pathplan.pipeline import plan_pair
    from gluecell.perception.scan import scan_part_frames

    inp = ds.inputs(sid)
    item = inp["workitem"]
    row: dict[str, Any] = {"id": sid, "style": item.style, "size": item.size_eu, "side": item.side, "ms": {}}
    stage = "perception"
    try:
        t = time.perf_counter()
        scans = {p: scan_part_frames(inp["frames"][p], p, item_id=sid) for p in ("upper", "sole")}
        row["ms"]["perception"] = (time.perf_counter() - t) * 1e3
        for p, scan in scans.items():
            write_ply(out / f"{sid}_{p}.ply", scan.points, scan.normals)
        truth = ds.truth(sid)  # the simulated cell's truth: error columns, the operator and the spray outcome
        stage = "deformation"
        line, cfg = _bite_line(scans, truth, item, bite_line, row, {} if refs is None else refs, int(sid))
        row["bite_p95_mm"], row["bite_max_mm"] = pair_errors(line, truth["bite_line"])  # same metric as the bench
        stage = "pathplan"
        t = time.perf_counter()
        pair = plan_pair(scans["upper"].points, scans["sole"].points, line, cfg,
                         upper_normals=scans["upper"].normals, sole_normals=scans["sole"].normals)  # fmt: skip
        row["ms"]["pathplan"] = (time.perf_counter() - t) * 1e3
        plan = Plan(bite_line=line, paths=tuple(pair.paths.values()), timing_ms=dict(row["ms"]))
        write_plan(out / f"{sid}_plan.json", plan)
        draw_plan(out / f"{sid}_plan.json", out / f"{sid}_plan.png", upper=out / f"{sid}_upper.ply",
                 sole=out / f"{sid}_sole.ply")  # fmt: skip
        row["robot_s"] = float(sum(p.duration for p in pair.programs.values()))
        stage = "spray"
        outcome = spray_outcome(truth, plan, seed=int(sid))
        row["coverage"] = outcome["upper"]["coverage"]
        row["above_mm"] = outcome["upper"]["glue_above_max_mm"]
        ok = row["above_mm"] <= PASS_ABOVE_MM and row["coverage"] >= PASS_COVERAGE
        row["verdict"] = "pass" if ok else "rework"
    except GlueCellError as exc:
        row["verdict"] = f"to human ({stage}): {exc.message}"
    return row


def run_demo(out: Path, n: int, seed: int, bite_line: str = "predicted") -> list[dict[str, Any]]:
    """Generate ``n`` pairs into ``out/world`` (resumable), run each through the pipeline, draw it."""
    from rich.progress import Progress

    from gluecell.datasets.format import open_dataset
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config
    from gluecell.datasets.show import render_sample

    world, scanner = load_generate_config(None)
    opts = GenerateOptions(n=n, seed=seed, world=world, scanner=scanner, styles=("sneaker", "court", "boot"))
    generate_dataset(out / "world", opts)
    ds = open_dataset(out / "world")
    rows: list[dict[str, Any]] = []
    refs: dict = {}
    with Progress(transient=True) as bar:
        task = bar.add_task("pairs", total=n)
        for sid in ds.ids():
            row = run_pair(ds, sid, out, bite_line, refs)
            row["picture"] = str(render_sample(ds, sid, out / f"{sid}_pair.png"))
            rows.append(row)
            bar.advance(task)
    return rows


def _fmt(row: dict[str, Any], key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "-"


def _cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    out = Path(args.out)
    t0 = time.perf_counter()
    rows = run_demo(out, args.n, args.seed, args.bite_line)
    title = f"gluecell demo: {len(rows)} synthetic pairs, bite line {args.bite_line}"
    table = Table(title=f"{title}, {time.perf_counter() - t0:.0f} s ({out})")
    cols = ("id", "style", "EU", "side", "bite p95 [mm]", "bite max [mm]", "glue above [mm]", "coverage",
            "robot [s]", "scan/deform/plan [ms]", "bite line", "verdict")  # fmt: skip
    for c in cols:
        table.add_column(c)
    for r in rows:
        ms = "/".join(f"{r['ms'][k]:.0f}" for k in ("perception", "deformation", "pathplan") if k in r["ms"])
        table.add_row(
            r["id"], r["style"], f"{r['size']:g}", r["side"], _fmt(r, "bite_p95_mm", ".2f"),
            _fmt(r, "bite_max_mm", ".2f"), _fmt(r, "above_mm", ".2f"), _fmt(r, "coverage", ".1%"),
            _fmt(r, "robot_s", ".0f"), ms or "-", r.get("line", "-"), r["verdict"],
        )  # fmt: skip
    console = Console(width=200)
    console.print(table)
    console.print(f"pictures: {out}/<id>_plan.png (scans, bite line, paths), {out}/<id>_pair.png (the world's truth);"
                  f" plans: {out}/<id>_plan.json; scans: {out}/<id>_upper.ply, _sole.ply")
    return 0


def register(sub: Any) -> None:
    """Add ``gluecell demo``."""
    p = sub.add_parser("demo", help="run the main job on the embedded default (simulated world)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--n", type=int, default=3, help="pairs to generate (default 3)")
    p.add_argument("--seed", type=int, default=7, help="world seed (default 7)")
    p.add_argument("--bite-line", choices=["predicted", "marked"], default="predicted",
                   help="predicted by the deformation step (default; a refused prediction goes to the operator, who"
                   " marks the line), or marked by the operator on every pair")  # fmt: skip
    p.set_defaults(func=_cmd_demo)
