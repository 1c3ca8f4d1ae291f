"""``gluecell op`` against a running controller, and the unit modes on the real line."""

import pytest

from gluecell.cell.cli import main
from gluecell.cell.control import Command, CommandRefusedError, State, UnitMode


def _op(db, *argv):
    return main(["op", "--db", str(db), "--wait", "5", *argv])


def test_op_pauses_forces_and_is_recorded(sim, cell, tmp_path, capsys):
    ids = ["P-0", "P-1", "P-2"]
    h = sim(ids)
    ctl, store, _ = cell(h, ids)
    db = store.db.path
    assert _op(db, "reset", "--who", "ana") == 2  # no --why: refused before anything is queued
    assert store.overrides.list() == []
    assert _op(db, "force-fail", "NOPE", "--who", "ana", "--why", "x") == 2  # an id nobody ordered
    assert _op(db, "start", "--who", "ana", "--why", "too early") == 3  # refused in Stopped: exit 3
    assert "refused" in capsys.readouterr().out
    assert _op(db, "reset", "--who", "ana", "--why", "shift start") == 0
    ctl.wait_for(State.IDLE, 10)
    assert _op(db, "force-fail", "P-0", "--who", "ana", "--why", "glue seen on the toe") == 0
    assert _op(db, "start", "--who", "ana", "--why", "go") == 0
    assert _op(db, "pause", "--who", "bo", "--why", "coffee") == 0
    assert ctl.wait_for({State.HELD}, 20) == State.HELD
    assert _op(db, "resume", "--who", "bo", "--why", "back") == 0
    assert ctl.wait_for({State.COMPLETE}, 30) == State.COMPLETE
    assert store.items.get("P-0")["state"] == "rework" and "ana" in store.items.get("P-0")["reason"]
    capsys.readouterr()
    assert _op(db, "rework") == 0
    assert "P-0" in capsys.readouterr().out
    who = {(o["action"], o["who"]) for o in store.overrides.list()}
    assert {("force_fail", "ana"), ("command", "bo")} <= who


def test_manual_mode_runs_no_pairs_and_has_no_hold(sim, cell, tools):
    h = sim(["P-0"])
    ctl, store, _ = cell(h, ["P-0"])
    ctl.set_mode(UnitMode.MANUAL, who="ana", why="jog the arm")
    ctl.command(Command.RESET, who="ana")
    ctl.wait_for(State.IDLE, 10)
    ctl.command(Command.START, who="ana")
    ctl.wait_for(State.EXECUTE, 10)
    with pytest.raises(CommandRefusedError):
        ctl.command(Command.HOLD, who="ana")
    tools.wait_until(lambda: store.meta.get("heartbeat") is not None, 3, "heartbeat")
    import time

    time.sleep(0.5)
    assert store.items.get("P-0")["state"] == "ordered" and tools.sprays(h) == {}
    assert store.packtags.load()["UnitModeCurrent"] == 3
    ctl.command(Command.STOP, who="ana", why="done jogging")
    ctl.wait_for(State.STOPPED, 10)
    ctl.set_mode(UnitMode.PRODUCE, who="ana", why="production")
    assert store.packtags.load()["UnitModeCurrent"] == 1
