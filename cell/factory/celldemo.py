"""``gluecell demo --factory N``: THIS cell (the real controller over rosbridge) as one node of a small factory.

In one process: a manager, the cell (``cell-1``, :mod:`.cellnode`) and ``N - 1`` simulated cells (``cell-2`` ...,
:class:`.sim.SimCell`) on the in-process bus. Each pair of the demo's world is a smart product with the route
``spray -> press``: it puts its spray out to auction; the real cell bids from its controller's state and
PackTags, the simulated cells from their cost model; only the simulated cells press. Pairs the real cell wins
are ordered into its store and sprayed on its line (the others pass its line unsprayed and are sprayed by
their winner); a pair it sends to rework is reported as a failure and sprayed again by another cell. Every
registration, award, result and failure is in the signed ledger, verified from genesis at the end.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .cellnode import CellCapability, CellNode, CellNodeAgent
from .demo import _summary, start_inproc_factory
from .ledgercheck import verify_file
from .product import SmartProduct
from .rdf import NodeProfile
from .sim import SimCell
from .site import create_site

__all__ = ["ROUTE", "run_cell_factory"]

ROUTE = ("spray", "press")
CELL_ID = "cell-1"


def _members(nodes: int) -> list[tuple[str, str, tuple[str, ...]]]:
    return ([("manager", "manager", ()), ("operator-1", "operator", ()), ("customer-1", "customer", ()),
             ("customer-2", "customer", ()), (CELL_ID, "cell", ("spray",))]
            + [(f"cell-{i}", "cell", ROUTE) for i in range(2, nodes + 1)])


def _sim(i: int, time_scale: float) -> SimCell:
    """Simulated cell ``i`` (2..N): dearer and farther than the real cell, so it wins once that one is booked
    (with the defaults the real cell's third bid in one 120 s window loses to ``cell-3``)."""
    profile = NodeProfile(f"cell-{i}", "simulated glue-spraying cell with sole press", ROUTE, ("PU-water",),
                          35, 46, 20.0 + 3 * (i % 4), (8.0 + 4.0 * i, 2.0 * (i % 3)))
    return SimCell(profile, cost=30.0 + (17 * i) % 20, time_scale=time_scale)


def _wait(cond: Any, timeout_s: float, tick: Any = None) -> bool:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if cond():
            return True
        if tick:
            tick()
        time.sleep(0.1)
    return cond()


def _awarded(manager: Any, ids: list[str]) -> bool:
    """Every product's spray step is awarded, done or stopped (read on the manager's thread)."""
    out: list[bool] = []
    done = threading.Event()

    def check() -> None:
        ps = [manager.products.get(i) for i in ids]
        out.append(all(p is not None and (p.step > 0 or p.status in ("in-process", "stopped")) for p in ps))
        done.set()

    manager.call(check)
    return done.wait(5.0) and out[0]


def run_cell_factory(ctl: Any, world: Path, nodes: int, ledger_path: Path, *, step_time_s: float = 120.0,
                     time_scale: float = 0.02, timeout_s: float = 1800.0,
                     progress: Any = None) -> dict[str, Any]:
    """Run the factory around the (reset, Idle) controller ``ctl``; returns the factory's summary.

    Args:
        ctl: the cell's controller, started and Idle; it is started (Start) once the spray auctions are over
            and this cell won at least one pair.
        world: the demo's dataset (``inputs/<id>/workitem.json``): the pairs at this cell's infeed.
        nodes: factory cells in all (this one + ``nodes - 1`` simulated).
        ledger_path: where the signed ledger is written.
        step_time_s: each process's time window (the call's deadline).
        progress: ``progress(done, total)`` callback.
    """
    from gluecell.cell.control import Command, State

    if not 1 <= nodes <= 50:
        from gluecell.core.errors import ConfigError

        raise ConfigError(f"a factory of 1-50 cells (this one included), got {nodes}")
    ids = sorted(p.name for p in (world / "inputs").iterdir() if (p / "workitem.json").is_file())
    items = {i: json.loads((world / "inputs" / i / "workitem.json").read_text()) for i in ids}
    styles = tuple(sorted({wi["style"] for wi in items.values()}))
    cell = CellNode(ctl, CellCapability(styles=styles), ids, items)
    ledger_path = Path(ledger_path)
    ledger_path.unlink(missing_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gluecell-factory-") as tmp:
        site = create_site(Path(tmp) / "site", _members(nodes), broker_files=False)
        sims = [_sim(i, time_scale) for i in range(2, nodes + 1)]
        hub, manager, agents = start_inproc_factory(site, sims, ledger_path)
        profile = NodeProfile(CELL_ID, "UR10e glue-spraying cell (gluecell, real controller)", ("spray",),
                              cell.cap.glues, cell.cap.size_min, cell.cap.size_max, cell.cap.nominal_takt_s,
                              cell.cap.location)
        me = CellNodeAgent(site.identity(CELL_ID), site.load_registry(), hub.client(CELL_ID), profile, cell=cell,
                           decide=lambda p: True)
        try:
            me.start()
            me.wait_registered(10.0)
            for k, i in enumerate(ids):
                wi = items[i]
                manager.submit(SmartProduct(i, f"customer-{1 + k % 2}", list(ROUTE),
                                            {"style": wi["style"], "size": float(wi["size_eu"]), "glue": "PU-water"},
                                            (6.0, 1.0), step_time_s=step_time_s))
            _wait(lambda: _awarded(manager, ids), 30.0)
            cell.closed = True  # the line starts its batch: what is not ordered now passes unsprayed
            if cell.won:
                ctl.command(Command.START, who="factory", why=f"{len(cell.won)} pairs won at auction")

            def tick() -> None:
                if progress:
                    s = _summary(manager)
                    progress(sum(p["status"] == "done" for p in s["products"].values()), len(ids))

            stop = {State.COMPLETE, State.HELD, State.STOPPED, State.ABORTED}
            _wait(lambda: manager.finished() and (not cell.won or ctl.state in stop), timeout_s, tick)
            summary = _summary(manager)
        finally:
            me.stop()
            for a in agents:
                a.stop()
            manager.stop()
            hub.close()
    return _check(summary, cell, ledger_path, ids, time.monotonic() - t0)


def _check(summary: dict[str, Any], cell: CellNode, ledger_path: Path, ids: list[str],
           wall_s: float) -> dict[str, Any]:
    """Verify the ledger from genesis and count per node what it records."""
    state = verify_file(ledger_path, keep=True)
    recs = state.records
    awards = Counter(r["body"]["winner"] for r in recs if r["kind"] == "award")
    results = Counter(r["author"] for r in recs if r["kind"] == "result")
    failures = Counter(r["body"]["node"] for r in recs if r["kind"] == "failure")
    steps = Counter((r["body"]["product"], r["body"]["step"]) for r in recs if r["kind"] == "result")
    spray_by = {r["body"]["product"]: r["author"] for r in recs if r["kind"] == "result" and r["body"]["step"] == 0}
    return {"nodes": sorted(summary.get("joined", [])), "cell": CELL_ID, "won": list(cell.won),
            "cell_results": cell.results, "spray_by": spray_by,
            "products": {k: v["status"] for k, v in summary["products"].items()},
            "alarms": [a["reason"] for a in summary["alarms"]], "awards": dict(awards), "results": dict(results),
            "failures": dict(failures), "registered": sum(r["kind"] == "register" for r in recs),
            "exactly_once": all(v == 1 for v in steps.values()) and len(steps) == len(ids) * len(ROUTE),
            "award_latency_ms_median": _median(summary.get("award_latency_s", [])) * 1e3,
            "ledger": {"path": str(ledger_path), "records": len(state.tree), "kinds": state.kinds,
                       "root": state.tree.root().hex(), "verified": True},
            "wall_s": wall_s}


def _median(xs: list[float]) -> float:
    ys = sorted(xs)
    return ys[len(ys) // 2] if ys else float("nan")


def run_for_demo(ctl: Any, out: Path, nodes: int, timeout_s: float) -> dict[str, Any]:
    """:func:`run_cell_factory` for ``gluecell demo`` (world ``out/world``, ledger ``out/factory-ledger.jsonl``)
    with a progress bar."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("factory", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"factory ({ctl.state.name.title()}): "
                                                                      f"{done}/{total} products done")

        return run_cell_factory(ctl, out / "world", nodes, out / "factory-ledger.jsonl", timeout_s=timeout_s,
                                progress=progress)


def print_factory(summary: dict[str, Any]) -> int:
    """Print the factory part of a demo summary; 0 when every product is done exactly once and the ledger
    verified, else 1."""
    from rich.console import Console

    f = summary["factory"]
    con = Console(width=200)
    con.print(f"factory: {len(f['nodes'])} cells ({f['cell']} = this cell, real controller), "
              f"{len(f['products'])} products, route {' -> '.join(ROUTE)}, {f['wall_s']:.0f} s")
    con.print(f"  this cell won {len(f['won'])}: {', '.join(f['won']) or '-'}; its results: "
              + (", ".join(f"{k}={v.get('item_state', v.get('state'))}" for k, v in f["cell_results"].items()) or "-"))
    con.print(f"  sprayed by: {', '.join(f'{k}:{v}' for k, v in sorted(f['spray_by'].items()))}")
    con.print(f"  products: {dict(Counter(f['products'].values()))}; awards {f['awards']}; results {f['results']}; "
              f"failures {f['failures']}; alarms {len(f['alarms'])}; exactly once: {f['exactly_once']}; "
              f"award latency median {f['award_latency_ms_median']:.1f} ms")
    led = f["ledger"]
    con.print(f"  ledger: {led['records']} records {led['kinds']}, verified from genesis, root {led['root'][:16]}...")
    con.print(f"  ledger file: {led['path']}  (check it: gluecell factory ledger verify {led['path']})")
    ok = f["exactly_once"] and all(s == "done" for s in f["products"].values()) and led["verified"]
    return 0 if ok and (not f["won"] or summary["state"] == "Complete") else 1
