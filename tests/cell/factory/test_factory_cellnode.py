"""THIS cell as a factory node: its bids follow the REAL controller's PackML state (over rosbridge, against the
simulated cell), and ``gluecell demo --factory`` runs the real line inside a factory and leaves a signed ledger
that records the cell's awards and results and verifies (and catches tampering) from the CLI."""

import gzip
import json
import time
from pathlib import Path

import pytest

from gluecell.cell.factory.auction import CallForProposals, Proposal, Refusal
from gluecell.cell.factory.cellnode import CellCapability, CellNode

RECORDING = Path(__file__).parents[1] / "control" / "data" / "sneaker.replay.json.gz"


def _cfp(product="P-1", process="spray", size=40.0, style="sneaker", window=120.0):
    now = time.time()
    return CallForProposals(product, 0, process, now, now + window, now + 0.5,
                            {"style": style, "size": size, "glue": "PU-water"}, (6.0, 1.0))


@pytest.fixture
def controller(tmp_path):
    """A real controller on the real robot link to the simulated cell (in a thread); closed after."""
    from gluecell.cell.control import Controller, ControllerConfig, ReplayPipeline
    from gluecell.cell.robot.config import RobotLinkConfig
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.sim.cell import SimCell, SimCellConfig
    from gluecell.cell.sim.run import start_in_thread
    from gluecell.cell.store import Store

    (tmp_path / "replay").mkdir()
    (tmp_path / "replay" / "sneaker.json").write_bytes(gzip.decompress(RECORDING.read_bytes()))
    handle = start_in_thread(SimCell(SimCellConfig(speed=80.0), ids=["P-1", "P-2"]))
    store = Store(tmp_path / "cell.db")
    link = RosbridgeLink(RobotLinkConfig(port=handle.port))
    link.connect(10)
    ctl = Controller(store, link, ReplayPipeline.load(tmp_path / "replay"), ControllerConfig(ready_timeout_s=3.0))
    ctl.start()
    ctl.sim = handle
    yield ctl
    ctl.close(5)
    link.disconnect()
    store.close()
    handle.stop()


def test_bids_follow_the_controllers_state_and_capability(controller):
    from gluecell.cell.control import Command, State

    items = {p: {"style": "sneaker", "size_eu": 40.0, "side": "left"} for p in ("P-1", "P-2")}
    node = CellNode(controller, CellCapability(styles=("sneaker",), nominal_takt_s=10.0), ["P-1", "P-2"], items)
    r = node.can_do(_cfp())
    assert isinstance(r, Refusal) and r.reason.startswith("cell is Stopped")  # a fresh controller is Stopped
    controller.command(Command.RESET, who="test")
    controller.wait_for(State.IDLE, 15)
    t = time.time()
    p1 = node.can_do(_cfp("P-1"))
    assert isinstance(p1, Proposal) and p1.cost == 35.0
    assert 9.0 < p1.finish - t < 11.5  # one nominal takt (no pair processed yet: PackTags count 0)
    p2 = node.can_do(_cfp("P-2"))
    assert isinstance(p2, Proposal) and 19.0 < p2.finish - t < 21.5  # queued behind the reserved slot
    node.release(_cfp("P-2"))
    assert node.reservations.keys() == {("P-1", 0)}
    assert "wrong equipment" in node.can_do(_cfp("P-2", process="press")).reason
    assert "size 50" in node.can_do(_cfp("P-2", size=50.0)).reason
    assert "style 'boot'" in node.can_do(_cfp("P-2", style="boot")).reason
    assert "not at this cell's infeed" in node.can_do(_cfp("P-9")).reason
    assert "not available in the time window" in node.can_do(_cfp("P-2", window=15.0)).reason
    node.on_award("P-1", 0)  # the award orders the pair into the controller's store at once
    assert controller.store.items.get("P-1")["state"] == "ordered" and node.won == ["P-1"]
    assert "already been through" in node.can_do(_cfp("P-1")).reason
    controller.command(Command.STOP, who="test", why="end of shift")
    controller.wait_for(State.STOPPED, 15)
    assert node.can_do(_cfp("P-2")).reason.startswith("cell is Stopped")
    controller.command(Command.ABORT, who="test", why="e-stop drill")
    controller.wait_for(State.ABORTED, 15)
    assert node.can_do(_cfp("P-2")).reason.startswith("cell is Aborted")


def test_a_held_cell_fails_its_unsprayed_tasks_and_never_sprays_them(controller):
    """A robot error holds the cell mid-spray of P-1 (rework); P-2's task fails at once and P-2 is skipped, so
    the operator's Unhold finishes the batch without spraying a pair the factory re-auctions."""
    from gluecell.cell.control import Command, State
    from gluecell.cell.factory.cellnode import CellTaskFailed
    from gluecell.cell.factory.node import Task
    from gluecell.cell.sim.faults import parse_fault

    h = controller.sim
    h.call(lambda: h.cell.inject(parse_fault({"kind": "robot_error", "item": "P-1", "during": "upper",
                                              "at_fraction": 0.5})))
    items = {p: {"style": "sneaker", "size_eu": 40.0, "side": "left"} for p in ("P-1", "P-2")}
    node = CellNode(controller, CellCapability(styles=("sneaker",)), ["P-1", "P-2"], items, poll_s=0.05)
    for p in ("P-1", "P-2"):
        node.on_award(p, 0)
    controller.command(Command.RESET, who="test")
    controller.wait_for(State.IDLE, 15)
    controller.command(Command.START, who="test")
    assert controller.wait_for({State.HELD, State.COMPLETE}, 30) == State.HELD
    assert node.can_do(_cfp("P-2")).reason.startswith("cell is Held")
    task = Task("P-2", 0, "spray", {}, "P-2.0.1", time.time() + 60, "manager")
    with pytest.raises(CellTaskFailed, match="cell Held"):
        node.perform(task)
    assert controller.store.items.get("P-2")["state"] == "skipped"
    with pytest.raises(CellTaskFailed, match="rework"):  # half a spray: to rework -> failure, re-auctioned
        node.perform(Task("P-1", 0, "spray", {}, "P-1.0.1", time.time() + 60, "manager"))
    controller.command(Command.UNHOLD, who="ana", why="protective stop checked")
    controller.wait_for(State.COMPLETE, 30)
    sprays = h.call(lambda: {k: dict(v.sprays) for k, v in h.cell.items.items()})
    assert sprays["P-1"] == {"upper": 1, "sole": 0} and not any(sprays.get("P-2", {}).values())


def test_demo_factory_ledger_records_the_cells_awards_and_results(tmp_path):
    from gluecell.cell.cli import main
    from gluecell.cell.cli.demo import run_demo

    s = run_demo(tmp_path, pairs=2, speed=50.0, seed=8, factory=2)
    f = s["factory"]
    assert f["nodes"] == ["cell-1", "cell-2"] and f["registered"] == 2
    assert set(f["products"].values()) == {"done"} and f["exactly_once"] and f["ledger"]["verified"]
    assert f["won"] and f["awards"]["cell-1"] == len(f["won"])  # the real cell won at auction ...
    assert {r["id"] for r in s["rows"]} == set(f["won"])  # ... and sprayed exactly those pairs on its line
    assert s["state"] == "Complete"
    passed = [r["id"] for r in s["rows"] if r["state"] == "passed"]
    assert f["results"].get("cell-1", 0) == len(passed)  # inform-done for a passed pair, failure for rework
    assert f["failures"].get("cell-1", 0) == len(f["won"]) - len(passed)
    records = [json.loads(x)["rec"] for x in Path(f["ledger"]["path"]).read_text().splitlines()[1:]
               if json.loads(x).get("rec")]
    mine = [r for r in records if r["kind"] == "result" and r["author"] == "cell-1"]
    assert all(r["body"]["result"]["real_cell"] and r["body"]["result"]["item_state"] == "passed" for r in mine)
    assert {r["body"]["product"] for r in mine} == set(passed)
    assert main(["factory", "ledger", "verify", f["ledger"]["path"]]) == 0
    lines = Path(f["ledger"]["path"]).read_text().splitlines()
    k = next(i for i, x in enumerate(lines) if '"award"' in x and '"cell-1"' in x)
    lines[k] = lines[k].replace('"cell-1"', '"cell-2"', 1)  # rewrite who won
    bad = tmp_path / "tampered.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    assert main(["factory", "ledger", "verify", str(bad)]) != 0
