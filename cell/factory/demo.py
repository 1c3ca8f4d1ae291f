"""A small factory in one process (in-process bus): a manager, N simulated cells, M smart products.

One cell suffers a robot fault in the middle of its first task and another vanishes in the middle of its
first task (its last will is published); both tasks are put out again and completed exactly once. One extra
product needs a shoe size no cell takes: every cell refuses, the manager is alarmed and that product
waits. The ledger is written to ``ledger_path`` and verified from genesis at the end.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .auction import Weights
from .bus.inproc import Hub
from .ledger import Ledger
from .ledgercheck import verify_file
from .manager import Manager
from .node import NodeAgent
from .product import SmartProduct
from .rdf import NodeProfile
from .sim import SimCell
from .site import Site, create_site

__all__ = ["PROCESSES", "demo_members", "run_demo", "start_inproc_factory"]

PROCESSES = ("spray-upper", "spray-sole", "inspect")


def demo_members(nodes: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """Members of a demo site: one manager, one operator, two customers, ``nodes`` cells."""
    return ([("manager", "manager", ()), ("operator-1", "operator", ()), ("customer-1", "customer", ()),
             ("customer-2", "customer", ())] + [(f"cell-{i}", "cell", PROCESSES) for i in range(1, nodes + 1)])


def sim_cell(i: int, time_scale: float) -> SimCell:
    """Cell ``i`` of the demo: costs, takt times and places differ so the WI picks among them."""
    profile = NodeProfile(f"cell-{i}", "UR10e glue-spraying cell", PROCESSES, ("PU-water", "PU-solvent"),
                          35 + (i % 2), 46 + (i % 3), 20.0 + 3 * (i % 4), (4.0 * i, 2.0 * (i % 3)))
    return SimCell(profile, cost=40.0 + (17 * i) % 30, time_scale=time_scale)


def start_inproc_factory(site: Site, cells: list[SimCell], ledger_path: Path, *, reply_window: float = 0.5,
                         weights: Weights | None = None) -> tuple[Hub, Manager, list[NodeAgent]]:
    """Start a hub, the manager and one NodeAgent per simulated cell; wait until every cell registered."""
    hub = Hub()
    for member, rules in site.hub_rules().items():
        hub.add_user(member, rules)
    reg_doc = site.registry.signed(_admin(site))
    ledger = Ledger.create(ledger_path, site.identity("manager"), reg_doc, sync=False)
    manager = Manager(site.identity("manager"), site.load_registry(), hub.client("manager"), ledger,
                      reply_window=reply_window, weights=weights)
    manager.start()
    agents = []
    for cell in cells:
        member = cell.profile.id
        bus = hub.client(member)
        agent = NodeAgent(site.identity(member), site.load_registry(), bus, cell.profile,
                          can_do=cell.can_do, perform=cell.perform, on_reject=cell.release,
                          decide=lambda p: True)
        if cell.hang_on:
            cell.on_hang = bus.kill
        agent.start()
        agents.append(agent)
    for agent in agents:
        agent.wait_registered(10.0)
    return hub, manager, agents


def _admin(site: Site) -> Any:
    from .crypto import load_identity

    return load_identity(site.path / "admin.key")


def _summary(manager: Manager) -> dict[str, Any]:
    """The manager's summary, taken on its own thread."""
    import threading

    out: dict[str, Any] = {}
    done = threading.Event()
    manager.call(lambda: (out.update(manager.summary()), done.set()))
    done.wait(5.0)
    return out


def run_demo(nodes: int = 5, tasks: int = 6, ledger_path: str | Path = "factory-ledger.jsonl", *,
             time_scale: float = 0.02, timeout: float = 60.0,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the demo factory; returns the manager's summary plus the checks made on the ledger."""
    if nodes < 1 or tasks < 1:
        raise ValueError("the demo needs at least one node and one task")
    ledger_path = Path(ledger_path)
    with tempfile.TemporaryDirectory(prefix="gluecell-factory-") as tmp:
        site = create_site(Path(tmp) / "site", demo_members(nodes), broker_files=False)
        cells = [sim_cell(i, time_scale) for i in range(1, nodes + 1)]
        if nodes >= 3:  # breakdowns: a robot fault and a cell that vanishes, both mid-task
            cells[0].fail_on = frozenset({1})
            cells[1].hang_on = frozenset({1})
        hub, manager, agents = start_inproc_factory(site, cells, ledger_path)
        try:
            t0 = time.monotonic()
            for k in range(1, tasks + 1):
                manager.submit(SmartProduct(f"pair-{k:03d}", f"customer-{1 + k % 2}", list(PROCESSES),
                                            {"size": 36 + k % 10, "glue": "PU-water"}, (6.0, 1.0), step_time_s=8.0))
            # a size no cell's fixture takes: every cell refuses, the manager is alarmed, the product waits
            manager.submit(SmartProduct("pair-size-55", "customer-1", list(PROCESSES), {"size": 55},
                                        step_time_s=8.0))
            while not manager.wait_finished(0.25) and time.monotonic() - t0 < timeout:
                if progress:
                    progress(sum(p.status == "done" for p in manager.products.values()), tasks)
            summary = _summary(manager)
        finally:
            for a in agents:
                a.stop()
            manager.stop()
            hub.close()
    state = verify_file(ledger_path, keep=True)
    results = Counter((r["body"]["product"], r["body"]["step"]) for r in state.records if r["kind"] == "result")
    summary["ledger"] = {"path": str(ledger_path), "records": len(state.tree), "kinds": state.kinds,
                         "root": state.tree.root().hex(), "verified": True}
    summary["exactly_once"] = all(v == 1 for v in results.values()) and len(results) == tasks * len(PROCESSES)
    summary["wall_s"] = time.monotonic() - t0
    return summary
