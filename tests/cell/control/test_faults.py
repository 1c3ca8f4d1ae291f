"""Injected faults of the simulated cell: the state the cell goes to, how it comes back, and that no pair is lost
or sprayed twice (the simulated cell counts the sprays per pair and part)."""

from gluecell.cell.control import Command, CommandRefusedError, State, StopReason

DONE = {State.COMPLETE, State.HELD, State.STOPPED, State.ABORTED}
IDS = ["P-0", "P-1", "P-2"]


def _run(ctl):
    ctl.command(Command.RESET, who="test", why="start")
    ctl.wait_for(State.IDLE, 10)
    ctl.command(Command.START, who="test", why="start")


def _no_pair_lost_none_twice(store, tools, h):
    counts = store.items.counts()
    assert sum(counts.values()) == len(IDS) and set(counts) <= {"passed", "rework", "skipped"}, counts
    assert all(n <= 1 for parts in tools.sprays(h).values() for n in parts.values()), tools.sprays(h)


def test_robot_error_holds_and_unhold_recovers(sim, cell, tools):
    h = sim(IDS)
    tools.fault(h, kind="robot_error", item="P-1", during="upper", at_fraction=0.5)
    ctl, store, _ = cell(h, IDS)
    _run(ctl)
    assert ctl.wait_for(DONE, 30) == State.HELD
    assert store.packtags.load()["StopReason"]["ID"] == StopReason.ROBOT_ERROR
    p1 = store.items.get("P-1")
    assert (p1["state"], p1["cause"]) == ("rework", "spray")  # half a spray: to the human, never again
    ctl.command(Command.UNHOLD, who="ana", why="protective stop checked")  # Unhold unlocks it
    try:
        ctl.wait_for({State.COMPLETE}, 30)
    except TimeoutError:
        for e in store.events.since(0, 500):
            print(round(e["ts"] % 100, 3), e["kind"], e["message"])
        raise
    _no_pair_lost_none_twice(store, tools, h)
    assert tools.sprays(h)["P-1"] == {"upper": 1, "sole": 0}
    assert store.items.get("P-2")["state"] == "passed"


def test_estop_aborts_and_clear_reset_start_recover(sim, cell, tools):
    h = sim(IDS)
    tools.fault(h, kind="estop", item="P-1", during="sole", at_fraction=0.3)
    ctl, store, _ = cell(h, IDS)
    _run(ctl)
    assert ctl.wait_for({State.ABORTED}, 30) == State.ABORTED
    assert store.packtags.load()["StopReason"]["ID"] == StopReason.ESTOP
    try:
        ctl.command(Command.CLEAR, who="ana", why="too early")
        raise AssertionError("Clear must be refused while the e-stop is pressed")
    except CommandRefusedError:
        assert ctl.state == State.ABORTED
    tools.clear_fault(h, "estop")
    tools.wait_until(lambda: not ctl.link.state().e_stopped, 5, "e-stop released")
    ctl.command(Command.CLEAR, who="ana", why="e-stop released")
    ctl.wait_for(State.STOPPED, 10)
    _run(ctl)
    assert ctl.wait_for(DONE, 30) == State.COMPLETE, ctl.last_error
    _no_pair_lost_none_twice(store, tools, h)
    assert store.items.get("P-1")["state"] == "rework" and tools.sprays(h)["P-1"]["upper"] == 1


def test_link_drop_holds_then_unhold_finishes_without_repeating(sim, cell, tools):
    h = sim(IDS)
    tools.fault(h, kind="link_drop", item="P-1", during="upper", at_fraction=0.3, value=0.5)
    ctl, store, link = cell(h, IDS)
    _run(ctl)
    assert ctl.wait_for(DONE, 30) == State.HELD
    assert store.packtags.load()["StopReason"]["ID"] == StopReason.LINK_LOST
    tools.wait_until(lambda: link.is_connected, 15, "link back")
    ctl.command(Command.UNHOLD, who="ana", why="link back")
    assert ctl.wait_for({State.COMPLETE}, 40) == State.COMPLETE, ctl.last_error
    _no_pair_lost_none_twice(store, tools, h)


def test_part_off_its_station_holds_unsprayed_until_a_human_decides(sim, cell, tools):
    h = sim(IDS)
    tools.fault(h, kind="part_off_station", item="P-1")
    ctl, store, _ = cell(h, IDS)
    _run(ctl)
    assert ctl.wait_for(DONE, 30) == State.HELD
    assert "not seated" in store.packtags.load()["StopReason"]["Value"]
    assert sum(tools.sprays(h).get("P-1", {}).values()) == 0
    store.overrides.request("skip", "ana", "pair fell off its fixture", item_id="P-1")
    tools.wait_until(lambda: store.items.get("P-1")["state"] == "skipped", 5, "skip")
    ctl.command(Command.UNHOLD, who="ana", why="pair removed")
    assert ctl.wait_for({State.COMPLETE}, 30) == State.COMPLETE
    _no_pair_lost_none_twice(store, tools, h)
    assert sum(tools.sprays(h).get("P-1", {}).values()) == 0


def test_frames_that_never_appear_send_pairs_to_the_human(sim, cell, tools, tmp_path):
    h = sim(IDS)
    ctl, store, _ = cell(h, IDS, camera_root=str(tmp_path / "cams"), frames_timeout_s=0.3)
    (tmp_path / "cams").mkdir()
    _run(ctl)
    assert ctl.wait_for(DONE, 30) == State.COMPLETE
    assert {store.items.get(i)["cause"] for i in IDS} == {"camera_timeout"}
    assert sum(n for parts in tools.sprays(h).values() for n in parts.values()) == 0
    assert store.packtags.load()["ProdDefectiveCount"] == 3
