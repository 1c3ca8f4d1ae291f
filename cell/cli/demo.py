"""``gluecell demo [--pairs N] [--speed X]``: the whole line on the embedded default.

It generates ``N`` synthetic pairs (sneaker, court shoe, boot, ...), starts the simulated cell as its own
process (``gluecell sim``: robot, gun, conveyor and cameras behind a rosbridge server on 127.0.0.1), orders the
pairs in a fresh cell database, and runs the controller against it through the robot link: Reset, Start, and
for every pair identify -> scan -> predict -> plan (the REAL pipeline) -> spray over rosbridge -> inspect ->
route -> record, the next pair planned while the robot sprays. It ends with the summary: pairs, first-pass
yield and how the verdict was reached, cycle and robot time, stage latencies, stops, and where the pictures are.
The bite-line error column compares each predicted line with the world's truth (the demo may; the controller
never sees truth).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run_demo", "summarise", "start_sim_process"]

STYLES = ("sneaker", "court", "boot")
#: The embedded cell's gun calibration: its commissioning coupon (``gluecell gun calibrate --world 1 --seed 0``,
#: shipped as ``pathplan/models/gun_world1.json``). Every world seed of the embedded cell sprays with the same true
#: gun (``cell.sim.coupon.true_gun``: ``SprayWorldConfig()``; a seed draws pairs and per-run variation, not the gun),
#: so the demo plans with the file its cell was commissioned with, as a plant names its own in ``cell.toml``.
DEMO_GUN = "world1"


def demo_pathplan_config(gun: str | None = DEMO_GUN, design_film: float | None = None) -> Any:
    """The embedded cell's ``[pathplan]``: the planner's defaults with the cell's calibrated gun (``gun``: "world1",
    a calibration file, or None / "none": the planner's uncalibrated default) and passes designed for
    ``design_film`` x the inspected covered film (:func:`gluecell.pathplan.gun_calibration.with_design_film`;
    None: :data:`~gluecell.pathplan.gun_calibration.DESIGN_FILM_FACTOR` with a calibrated gun, 1 without)."""
    from gluecell.pathplan.gun_calibration import DESIGN_FILM_FACTOR, with_design_film, with_gun
    from gluecell.pathplan.pipeline import PathplanConfig

    gun = None if gun in (None, "", "none") else gun
    cfg = with_gun(PathplanConfig(), gun)
    factor = (DESIGN_FILM_FACTOR if gun is not None else 1.0) if design_film is None else float(design_film)
    return with_design_film(cfg, factor)


def start_sim_process(out: Path, world: Path, speed: float, port: int = 0, timeout_s: float = 60.0,
                      faults: Path | None = None) -> tuple[subprocess.Popen, int]:  # fmt: skip
    """``gluecell sim`` as a child process; returns it and its port once it serves.

    ``faults``: a ``[[fault]]`` TOML file the simulated cell plays (``gluecell sim --faults``).
    """
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "sim", "--port", str(port), "--speed", f"{speed:g}",
           "--world", str(world), "--out", str(out)]  # fmt: skip
    if faults is not None:
        cmd += ["--faults", str(faults)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "ws://127.0.0.1:" in line:
            return proc, int(line.split("ws://127.0.0.1:")[1].split()[0])
    proc.kill()
    from gluecell.core.errors import DeviceError

    raise DeviceError(f"the simulated cell did not start within {timeout_s:.0f} s ({' '.join(cmd)})")


def _order(store: Any, world: Path) -> list[str]:
    ids = sorted(p.name for p in (world / "inputs").iterdir() if (p / "workitem.json").is_file())
    store.jobs.add("demo", "mixed", len(ids), data={"source": str(world)})
    for sid in ids:
        wi = json.loads((world / "inputs" / sid / "workitem.json").read_text())
        store.items.order(sid, wi["style"], size_eu=float(wi["size_eu"]), side=wi["side"], job_id="demo")
    return ids


def _fresh(out: Path) -> None:
    for name in ("cell.db", "cell.db-wal", "cell.db-shm"):
        (out / name).unlink(missing_ok=True)
    for sub in ("cameras", "pairs", "inspection", "inspection_truth"):
        shutil.rmtree(out / sub, ignore_errors=True)


def run_demo(out: Path, pairs: int = 3, speed: float = 20.0, seed: int = 7,
             timeout_s: float = 1800.0, serve: Any = None, factory: int = 0,
             heartbeat_s: float | None = None, gun: str | None = DEMO_GUN,
             design_film: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the line on ``pairs`` synthetic pairs; returns :func:`summarise`'s summary.

    ``gun`` / ``design_film``: the cell's planner settings (:func:`demo_pathplan_config`).

    ``heartbeat_s``: the robot link's ``heartbeat_timeout_s`` (None: the link's default, 0.5 s; at most 0.9).

    ``factory`` > 0: the cell is one node of a factory of that many cells (:mod:`gluecell.cell.factory.celldemo`);
    it sprays the pairs it wins at auction; the factory's summary is under ``"factory"``.

    ``serve(out)`` (the task API and console, :class:`gluecell.cell.api.server.DemoConsole`) is called once the
    cell database is fresh."""
    from rich.progress import Progress

    from gluecell.cell.control import Command, Controller, RealPipeline, State
    from gluecell.cell.control.settings import sim_style_library
    from gluecell.cell.robot.config import RobotLinkConfig
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.sim.operator import sim_line_marker
    from gluecell.cell.store import Store
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    pathplan_cfg = demo_pathplan_config(gun, design_film)  # a bad gun file fails before the cell starts
    world_cfg, scanner = load_generate_config(None)
    generate_dataset(out / "world", GenerateOptions(n=pairs, seed=seed, world=world_cfg, scanner=scanner,
                                                    styles=STYLES))  # fmt: skip
    _fresh(out)
    if serve is not None:
        serve(out)
    t0 = time.monotonic()
    proc, port = start_sim_process(out, out / "world", speed)
    try:
        with Store(out / "cell.db") as store, RosbridgeLink(_link_config(RobotLinkConfig, port, heartbeat_s)) as link:
            ids = [] if factory else _order(store, out / "world")
            # a prediction refused as too uncertain goes to the operator, played by the simulated cell
            pipeline = RealPipeline(sim_style_library(), out=out / "pairs", pictures=True,
                                    marker=sim_line_marker(out / "world"), pathplan_config=pathplan_cfg)  # fmt: skip
            ctl = Controller(store, link, pipeline)
            ctl.start()
            try:
                ctl.command(Command.RESET, who="demo", why="gluecell demo")
                ctl.wait_for(State.IDLE, 30)
                if factory:  # the factory's auctions decide which pairs this cell sprays; it starts the line
                    from gluecell.cell.factory.celldemo import run_for_demo

                    fac = run_for_demo(ctl, out, factory, timeout_s)
                else:
                    ctl.command(Command.START, who="demo", why="gluecell demo")
                    _follow(ctl, store, len(ids), timeout_s, Progress)
            finally:
                ctl.close()
            planner = {"gun": str(gun or "none"), "flow_ml_s": pathplan_cfg.deposition.flow_ml_s,
                       "design_film_mm": pathplan_cfg.deposition.covered_mm}  # fmt: skip
            return {**summarise(store, out, time.monotonic() - t0, ctl.perf), "planner": planner,
                    **({"factory": fac} if factory else {})}  # fmt: skip
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


def _follow(ctl: Any, store: Any, n: int, timeout_s: float, progress: Any) -> None:
    """Wait for the line to finish (or stop), with a progress bar."""
    from gluecell.cell.control import State

    stop_states = {State.COMPLETE, State.HELD, State.STOPPED, State.ABORTED}
    deadline = time.monotonic() + timeout_s
    with progress(transient=True) as bar:
        task = bar.add_task("pairs", total=n)
        while time.monotonic() < deadline and ctl.state not in stop_states:
            counts = store.items.counts()
            done = sum(counts.get(s, 0) for s in ("passed", "rework", "skipped"))
            bar.update(task, completed=done, description=f"{ctl.state.name.title()}: {done}/{n} pairs")
            time.sleep(0.2)


def _bite_error(store: Any, world: Path, sid: str) -> float | None:
    """p95 distance (mm) of the planned bite line from the world's true line (evaluation only)."""
    from gluecell.cell.bench.deformation import pair_errors
    from gluecell.datasets.format import open_dataset

    plan = store.plans.latest(sid)
    if plan is None:
        return None
    import numpy as np

    line = np.asarray(plan["data"]["bite_line"], dtype=np.float64)
    return float(pair_errors(line, open_dataset(world).truth(sid)["bite_line"])[0])


#: The QA verdict against the simulated cell's truth labels (evaluation only): a defective pair not passed is
#: caught, passed is missed; a good pair not passed (fail or uncertain) is a false reject.
VERSUS = ("caught", "missed", "false reject", "correct pass")


def _qa_vs_truth(insp: list[dict[str, Any]], out: Path, item_id: str) -> dict[str, Any]:
    """Who judged the pair (the QA model or the stand-in, and why), the QA verdict and defects, and, for evaluation
    only, the truth labels the simulated cell wrote for the views (``<out>/inspection_truth``)."""
    from gluecell.cell.sim.inspection import read_truth

    judged = [i for i in insp if i["source"] != "override"]
    last = judged[-1] if judged else None
    data = (last or {}).get("data") or {}
    row: dict[str, Any] = {"judged_by": last["source"] if last else None,
                           "qa_verdict": last["verdict"] if last else None,
                           "qa_defects": sorted({d["kind"] for d in data.get("defects", [])}),
                           "qa_fallback": data.get("qa_fallback"), "truth_verdict": None, "truth_defects": [],
                           "truth_faults": [], "versus_truth": None}  # fmt: skip
    truth = read_truth(out / "cameras", item_id)
    if truth is None or last is None or not str(last["source"]).startswith("qa:"):
        return row
    bad, passed = truth["verdict"] == "fail", last["verdict"] == "pass"
    versus = ("missed" if passed else "caught") if bad else ("correct pass" if passed else "false reject")
    row.update(truth_verdict=truth["verdict"], truth_defects=truth["defects"], truth_faults=truth["fault_kinds"],
               versus_truth=versus)
    return row


def summarise(store: Any, out: Path, wall_s: float, perf: dict[str, list[float]]) -> dict[str, Any]:
    """Pairs, first-pass yield with the verdict source, times, stages, stops, pictures (from the store)."""
    import numpy as np

    rows = []
    for it in store.items.list():
        plan = store.plans.latest(it["id"])
        data = plan["data"] if plan else {}
        progs = data.get("robot_programs") or {}
        insp = store.inspections.for_item(it["id"])
        rows.append({"id": it["id"], "style": it["style"], "state": it["state"], "cause": it["cause"],
                     "reason": it["reason"], "attempts": it["attempts"],
                     "ms": {k: data.get("timing_ms", {}).get(k) for k in ("perception", "deformation", "pathplan")},
                     "robot_s": sum(p["t"][-1] - p["t"][0] for p in progs.values() if p)
                     if plan and plan["verdict"] == "ok" else 0.0,  # a plan for a human is not sprayed
                     "verdict_source": insp[-1]["source"] if insp else None,
                     **_qa_vs_truth(insp, out, it["id"]),
                     "line": (data.get("line_source") or "-").split(" (")[0],
                     "plan_verdict": data.get("verdict"),
                     "bite_p95_mm": _bite_error(store, out / "world", it["id"]) if plan else None,
                     "picture": str(out / "pairs" / f"{it['id']}_plan.png") if plan else it["picture"]})  # fmt: skip
    events = store.events.since(0, limit=100_000, kind="state")
    stopping = ("Holding", "Stopping", "Aborting")
    stops = [e["message"] + (f" — {e['data'].get('reason')}" if e["data"].get("reason") else "") for e in events
             if e["message"].split(" -> ")[-1].startswith(stopping)]  # fmt: skip
    tags = store.packtags.load()
    passed_first = sum(r["state"] == "passed" and r["attempts"] == 1 for r in rows)
    lat = {k: float(np.median([r["ms"][k] for r in rows if r["ms"].get(k) is not None] or [np.nan]))
           for k in ("perception", "deformation", "pathplan")}  # fmt: skip
    judges: dict[str, int] = {}
    for r in rows:
        if r["judged_by"]:
            judges[r["judged_by"]] = judges.get(r["judged_by"], 0) + 1
    versus = {k: sum(r["versus_truth"] == k for r in rows) for k in VERSUS}
    return {"pairs": len(rows), "passed_first": passed_first, "judges": judges, "versus_truth": versus,
            "fpy": passed_first / len(rows) if rows else 0.0,
            "rows": rows, "wall_s": wall_s, "cycle_s": wall_s / max(len(rows), 1),
            "cycle_ms_median": float(np.median(perf["cycle_ms"])) if perf["cycle_ms"] else None,
            "robot_s": float(sum(r["robot_s"] for r in rows)), "stage_ms_median": lat, "stops": stops,
            "state": tags.get("StateCurrentName"), "stop_reason": (tags.get("StopReason") or {}).get("Value", ""),
            "out": str(out)}  # fmt: skip


def _print(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from gluecell.cell.control.pipeline import STANDIN_SOURCE

    table = Table(title=f"gluecell demo: {summary['pairs']} pairs through the simulated cell over rosbridge, "
                        f"{summary['wall_s']:.0f} s, final state {summary['state']}")  # fmt: skip
    for c in ("id", "style", "result", "verdict by", "QA verdict", "truth (eval only)", "vs truth", "line",
              "bite p95 vs truth [mm]", "robot [s]", "scan/predict/plan [ms]", "reason"):  # fmt: skip
        table.add_column(c)
    for r in summary["rows"]:
        ms = "/".join(f"{v:.0f}" for v in r["ms"].values() if v is not None) or "-"
        bite = "-" if r["bite_p95_mm"] is None else f"{r['bite_p95_mm']:.2f}"
        qa = f"{r['qa_verdict']} {','.join(r['qa_defects'])}".strip() if r["qa_verdict"] else "-"
        truth = f"{r['truth_verdict']} {','.join(r['truth_defects'])}".strip() if r["truth_verdict"] else "-"
        table.add_row(r["id"], r["style"], r["state"], r["verdict_source"] or "-", qa, truth, r["versus_truth"] or "-",
                      r["line"], bite, f"{r['robot_s']:.0f}", ms, (r["reason"] or "")[:60])  # fmt: skip
    con = Console(width=200)
    con.print(table)
    lat = summary["stage_ms_median"]
    judges = ", ".join(f"'{k}' {v}" for k, v in summary["judges"].items()) or "none"
    con.print(f"first-pass yield {summary['fpy']:.0%} ({summary['passed_first']}/{summary['pairs']}); inspected by: "
              f"{judges} (pairs). 'qa:<model>@<sha>' = gluecell.quality.inspect on the inspection views of the "
              f"executed spray (the promoted QA model; fail or uncertain -> rework / the human); '{STANDIN_SOURCE}' "
              f"= the STAND-IN fallback when no views arrived (it inspects the plan, not the glue)")
    vs = summary["versus_truth"]
    con.print("QA verdict vs the simulated cell's truth labels (evaluation only; the controller never reads them): "
              + ", ".join(f"{k} {v}" for k, v in vs.items()) + " — a pair is defective in truth when any view has a "
              "labelled defect (gap, glue above the TRUE line, thin film, blob)")
    con.print("line: 'predicted' = the predicted bite line and its 2-sigma margin; 'operator' = the prediction was "
              "refused as too uncertain and the operator (played by the simulated cell) marked the line on the pair")
    sprayed = [r["robot_s"] for r in summary["rows"] if r["robot_s"] > 0]
    per_shoe = f", {summary['robot_s'] / len(sprayed):.1f} s per sprayed pair" if sprayed else ""
    if "planner" in summary:
        pl = summary["planner"]
        con.print(f"planner: gun {pl['gun']} ({pl['flow_ml_s']:.3f} ml/s), passes designed for "
                  f"{pl['design_film_mm'] * 1e3:.0f} um of film")  # fmt: skip
    con.print(f"cycle {summary['cycle_s']:.1f} s per pair (wall, incl. start-up); robot time {summary['robot_s']:.0f} s"
              f"{per_shoe} (simulated); stage latency median perception {lat['perception']:.0f} ms, deformation "
              f"{lat['deformation']:.0f} ms, pathplan {lat['pathplan']:.0f} ms")  # fmt: skip
    con.print(f"stops: {len(summary['stops'])}" + "".join(f"\n  {s}" for s in summary["stops"]))
    if summary["stop_reason"]:
        con.print(f"stop reason: {summary['stop_reason']}")
    con.print(f"inspection pictures: {summary['out']}/pairs/<id>_inspection_a<attempt>.png (views, defects outlined)"
              f" and _defect<k>_<type>.png crops; views {summary['out']}/inspection/<id>/, truth labels (evaluation "
              f"only) {summary['out']}/inspection_truth/<id>.json")
    con.print(f"pictures: {summary['out']}/pairs/<id>_plan.png (scans, bite line, paths); plans and scans beside "
              f"them; the cell database {summary['out']}/cell.db (gluecell op --db ... status | rework | events)")


def _link_config(cls: Any, port: int, heartbeat_s: float | None) -> Any:
    """The link's config on ``port``; ``heartbeat_s`` overrides its heartbeat timeout (validated by the config)."""
    return cls(port=port) if heartbeat_s is None else cls(port=port, heartbeat_timeout_s=float(heartbeat_s))


def _cmd_demo(args: argparse.Namespace) -> int:
    from gluecell.cell.api.server import DemoConsole

    if not 0 <= args.factory <= 50:
        from gluecell.core.errors import ConfigError

        raise ConfigError(f"--factory takes 1-50 cells (0: no factory), got {args.factory}")
    console = None if args.no_api else DemoConsole(args)
    try:
        summary = run_demo(Path(args.out), args.pairs, args.speed, args.seed, serve=console, factory=args.factory,
                           heartbeat_s=args.heartbeat_s, gun=args.gun, design_film=args.design_film)  # fmt: skip
        _print(summary)
        rc = 0 if summary["state"] == "Complete" else 1
        if args.factory:
            from gluecell.cell.factory.celldemo import print_factory

            rc = print_factory(summary)
        if console is not None:
            console.finish()
    finally:
        if console is not None:
            console.close()
    return rc


def register(sub: Any) -> None:
    """Add ``gluecell demo``."""
    p = sub.add_parser("demo", help="run the whole line on the embedded default (simulated cell over rosbridge)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--pairs", type=int, default=3, help="pairs to generate and run (default 3)")
    p.add_argument("--speed", type=float, default=20.0, help="simulated robot speed-up (default 20)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--seed", type=int, default=7, help="world seed (default 7)")
    p.add_argument("--heartbeat-s", type=float, default=None, metavar="S",
                   help="robot link heartbeat timeout in s (default the link's 0.5; at most 0.9): a longer one keeps "
                        "a demo on a heavily loaded machine from holding on a starved /joint_states")  # fmt: skip
    p.add_argument("--gun", default=DEMO_GUN, metavar="FILE",
                   help="the cell's gun calibration: 'world1' (default: the embedded cell's commissioning coupon), "
                        "a file from 'gluecell gun calibrate', or 'none' (the planner's uncalibrated default)")
    p.add_argument("--design-film", type=float, default=None, metavar="X",
                   help="design the passes for X times the inspected 50 um film (1-4; default 2 with a calibrated "
                        "gun, 1 with none)")
    p.add_argument("--factory", type=int, default=0, metavar="N",
                   help="run the cell as one node of an in-process factory of N cells (N-1 simulated): "
                        "the pairs' smart products auction their spray; signed ledger verified at the end")
    from gluecell.cell.api.server import add_server_options

    add_server_options(p, demo=True)  # the task API and operator console (issue 10)
    p.set_defaults(func=_cmd_demo)
