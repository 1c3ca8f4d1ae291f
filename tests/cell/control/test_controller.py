"""The controller driving the simulated cell through the robot link (roslibpy <-> rosbridge server, no mocks).

Plans are a recording of the real pipeline replayed per pair (the replay mode), so the line runs in seconds.
"""

import pytest

from gluecell.cell.control import Command, CommandRefusedError, State, UnitMode
from gluecell.cell.control.pipeline import STANDIN_SOURCE

DONE = {State.COMPLETE, State.HELD, State.STOPPED, State.ABORTED}


def _run(ctl):
    ctl.command(Command.RESET, who="test", why="start")
    ctl.wait_for(State.IDLE, 10)
    ctl.command(Command.START, who="test", why="start")


def test_the_line_runs_every_pair_once_pipelined(sim, cell, tools):
    ids = [f"P-{i}" for i in range(4)]
    h = sim(ids)
    ctl, store, _ = cell(h, ids)
    _run(ctl)
    assert ctl.wait_for(DONE, 60) == State.COMPLETE, ctl.last_error
    assert tools.sprays(h) == {i: {"upper": 1, "sole": 1} for i in ids}  # the cell counted one spray per part
    assert store.items.counts() == {"passed": 4}
    for i in ids:
        assert [x["state"] for x in store.items.history(i)] == [
            "ordered", "arrived", "planned", "spraying", "sprayed", "passed"]  # fmt: skip
        assert [i["source"] for i in store.inspections.for_item(i)] == [STANDIN_SOURCE]
        assert {r["status"] for r in store.sprays.for_item(i)} == {"succeeded"}
        assert store.plans.latest(i)["source"] == "replay"
    tags = store.packtags.load()
    assert (tags["ProdProcessedCount"], tags["ProdDefectiveCount"], tags["StateCurrent"]) == (4, 0, 17)
    # pipelining: pair k+1 was planned before pair k's spray finished
    first_sprayed = next(x["ts"] for x in store.items.history("P-0") if x["state"] == "sprayed")
    assert store.plans.latest("P-1")["created"] < first_sprayed
    assert len(ctl.perf["overhead_ms"]) == 4 and all(v >= 0 for v in ctl.perf["overhead_ms"])


def test_an_id_nobody_ordered_passes_unsprayed(sim, cell, tools):
    h = sim(["P-0", "STRANGER", "P-1"])
    ctl, store, _ = cell(h, ["P-0", "P-1"])
    _run(ctl)
    assert ctl.wait_for(DONE, 60) == State.COMPLETE
    assert "STRANGER" not in tools.sprays(h)
    with pytest.raises(KeyError):
        store.items.get("STRANGER")
    refused = store.events.since(0, 5000, "refused")
    assert any("STRANGER" in e["message"] and "not ordered" in e["message"] for e in refused)
    assert store.items.counts() == {"passed": 2}


def test_commands_in_the_wrong_state_are_refused_and_logged(sim, cell, tools):
    h = sim(["P-0"])
    ctl, store, _ = cell(h, ["P-0"])
    for cmd in (Command.START, Command.HOLD, Command.UNHOLD, Command.CLEAR, "fly"):
        with pytest.raises(CommandRefusedError):
            ctl.command(cmd, who="ana", why="test")
        assert ctl.state == State.STOPPED
    refused = store.events.since(0, 100, "refused")
    assert len(refused) == 5 and all(e["data"].get("who") == "ana" for e in refused)
    assert store.items.counts() == {"ordered": 1}
    with pytest.raises(CommandRefusedError):  # the unit mode changes only at rest
        ctl.command(Command.RESET)
        ctl.wait_for(State.IDLE, 10)
        ctl.command(Command.START)
        ctl.wait_for(State.EXECUTE, 10)
        ctl.set_mode(UnitMode.MANUAL, who="ana", why="jog")


def test_overrides_outrank_the_machine_and_are_recorded(sim, cell, tools):
    ids = ["P-0", "P-1", "P-2", "P-3"]
    h = sim(ids)
    ctl, store, _ = cell(h, ids)
    o_fail = store.overrides.request("force_fail", "ana", "glue on the toe cap seen by eye", item_id="P-1")
    o_skip = store.overrides.request("skip", "ana", "upper torn", item_id="P-2")
    tools.wait_until(lambda: not store.overrides.pending(), 5, "overrides applied")
    _run(ctl)
    tools.wait_until(lambda: store.items.get("P-1")["state"] in ("passed", "rework"), 30, "P-1 routed")
    pause = store.overrides.request("command", "bo", "coffee", args={"command": "Hold"})
    assert ctl.wait_for({State.HELD}, 30) == State.HELD
    assert store.overrides.get(pause)["result"].startswith("applied")
    done_while_held = store.items.counts()
    ctl.command(Command.UNHOLD, who="bo", why="back")
    assert ctl.wait_for(DONE, 60) == State.COMPLETE
    assert done_while_held != store.items.counts()  # it went on after Unhold
    p1 = store.items.get("P-1")
    assert (p1["state"], p1["cause"]) == ("rework", "override") and "ana" in p1["reason"]
    assert [i["source"] for i in store.inspections.for_item("P-1")] == [STANDIN_SOURCE, "override"]
    assert store.items.get("P-2")["state"] == "skipped" and "P-2" not in tools.sprays(h)
    assert store.overrides.get(o_fail)["applied"] and store.overrides.get(o_skip)["result"].startswith("applied")
    # after the fact: force a pass on the rework pair; the defective count follows
    before = store.packtags.load()["ProdDefectiveCount"]
    store.overrides.request("force_pass", "ana", "reworked by hand", item_id="P-1")
    tools.wait_until(lambda: store.items.get("P-1")["state"] == "passed", 5, "force_pass applied")
    tools.wait_until(lambda: store.packtags.load()["ProdDefectiveCount"] == before - 1, 5, "count")
    refused = store.overrides.request("skip", "ana", "too late", item_id="P-0")
    tools.wait_until(lambda: store.overrides.get(refused)["applied"], 5, "refusal")
    assert store.overrides.get(refused)["result"].startswith("refused")
    store.overrides.request("respray", "ana", "thin film", item_id="P-3")
    tools.wait_until(lambda: store.items.get("P-3")["state"] == "ordered", 5, "respray")
