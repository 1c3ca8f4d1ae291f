"""The PackML table walked whole: every accepted transition, every trigger refused in every state, in each mode."""

import pytest

from gluecell.cell.control.packml import (
    TRANSITIONS,
    Command,
    CommandRefusedError,
    Event,
    PackMLMachine,
    State,
    UnitMode,
    next_state,
)
from gluecell.cell.control.packtags import PackTags

S, C, E = State, Command, Event

# The expected machine, written out from ISA-TR88.00.02 (not derived from the code under test).
ACTING_SC = {"Clearing": "Stopped", "Starting": "Execute", "Stopping": "Stopped", "Aborting": "Aborted",
             "Holding": "Held", "Unholding": "Execute", "Suspending": "Suspended", "Unsuspending": "Execute",
             "Resetting": "Idle", "Completing": "Complete", "Execute": "Completing"}  # fmt: skip
EXPECTED = {("Stopped", "Reset"): "Resetting", ("Complete", "Reset"): "Resetting", ("Idle", "Start"): "Starting",
            ("Held", "Unhold"): "Unholding", ("Suspended", "Unsuspend"): "Unsuspending",
            ("Aborted", "Clear"): "Clearing", ("Execute", "Complete"): "Completing",
            ("Execute", "Suspend"): "Suspending", ("Execute", "starved"): "Suspending",
            ("Suspended", "unstarved"): "Unsuspending"}  # fmt: skip
EXPECTED.update({(s, "state_complete"): n for s, n in ACTING_SC.items()})
EXPECTED.update({(s, "Hold"): "Holding" for s in ("Execute", "Suspending", "Suspended", "Unsuspending")})
ALL = [s.name.title() for s in State]
EXPECTED.update({(s, "Stop"): "Stopping" for s in ALL
                 if s not in ("Stopped", "Stopping", "Aborting", "Aborted", "Clearing")})  # fmt: skip
EXPECTED.update({(s, t): "Aborting" for s in ALL if s not in ("Aborting", "Aborted") for t in ("Abort", "estop")})
EXPECTED.update({(s, "fault"): "Holding" for s in ("Execute", "Starting", "Unholding", "Suspending", "Suspended",
                                                   "Unsuspending", "Completing")})  # fmt: skip

TRIGGERS = [*Command, *Event]


def _name(t):
    return t.name.title() if isinstance(t, Command) else t.value


def test_opc30050_numbering_is_pinned():
    assert {s.name.title(): int(s) for s in State} == {
        "Clearing": 1, "Stopped": 2, "Starting": 3, "Idle": 4, "Suspended": 5, "Execute": 6, "Stopping": 7,
        "Aborting": 8, "Aborted": 9, "Holding": 10, "Held": 11, "Unholding": 12, "Suspending": 13,
        "Unsuspending": 14, "Resetting": 15, "Completing": 16, "Complete": 17}  # fmt: skip
    assert [(c.name, int(c)) for c in Command] == [("RESET", 1), ("START", 2), ("STOP", 3), ("HOLD", 4),
                                                   ("UNHOLD", 5), ("SUSPEND", 6), ("UNSUSPEND", 7), ("ABORT", 8),
                                                   ("CLEAR", 9), ("COMPLETE", 10)]  # fmt: skip
    assert [(m.name, int(m)) for m in UnitMode] == [("PRODUCE", 1), ("MAINTENANCE", 2), ("MANUAL", 3)]


def test_table_is_exactly_the_expected_machine():
    got = {(s.name.title(), _name(t)): n.name.title() for (s, t), n in TRANSITIONS.items()}
    assert got == EXPECTED


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name.title())
def test_every_trigger_in_every_state_in_produce(state):
    """Accepted triggers move the machine (and tell listeners); refused ones raise and change nothing."""
    for trig in TRIGGERS:
        m = PackMLMachine(state)
        seen = []
        m.listen(seen.append)
        want = EXPECTED.get((state.name.title(), _name(trig)))
        if want is None:
            with pytest.raises(CommandRefusedError):
                m.fire(trig)
            assert m.state == state and seen == []
        else:
            tr = m.fire(trig, reason="test")
            assert m.state.name.title() == want
            assert (seen[0].before, seen[0].after, seen[0].reason) == (state, m.state, "test") and tr == seen[0]


@pytest.mark.parametrize("mode", [UnitMode.MAINTENANCE, UnitMode.MANUAL], ids=lambda m: m.name.title())
def test_modes_refuse_their_disabled_states(mode):
    off = {"Suspending", "Suspended", "Unsuspending", "Completing", "Complete"}
    if mode == UnitMode.MANUAL:
        off |= {"Holding", "Held", "Unholding"}
    for state in State:
        for trig in TRIGGERS:
            want = EXPECTED.get((state.name.title(), _name(trig)))
            got = next_state(state, trig, mode)
            if want is None:
                assert got is None
            elif want in off:
                # in Manual a fault cannot hold: it stops the cell instead; everything else into `off` is refused
                expect = State.STOPPING if (mode == UnitMode.MANUAL and trig is Event.FAULT) else None
                assert got == expect, (state, trig)
            else:
                assert got is not None and got.name.title() == want


def test_mode_changes_only_in_resting_states():
    for state in State:
        m = PackMLMachine(state)
        if state in (State.STOPPED, State.IDLE, State.ABORTED):
            m.set_mode(UnitMode.MANUAL)
            assert m.mode == UnitMode.MANUAL
        else:
            with pytest.raises(CommandRefusedError):
                m.set_mode(UnitMode.MANUAL)
            assert m.mode == UnitMode.PRODUCE


def test_a_production_run_through_the_machine_and_its_packtags():
    t = [1000.0]
    clock = lambda: t[0]  # noqa: E731
    m, tags = PackMLMachine(State.STOPPED, clock=clock), PackTags(clock=clock)
    m.listen(tags.on_transition)
    path = [C.RESET, E.SC, C.START, E.SC, C.HOLD, E.SC, C.UNHOLD, E.SC, E.SC, E.SC]
    for trig in path:
        t[0] += 2.0
        m.fire(trig)
    assert m.state == State.COMPLETE
    tags.count(defective=False)
    tags.count(defective=True)
    snap = tags.snapshot()
    assert snap["StateCurrent"] == 17 and snap["CntrlCmd"] == 5  # the last command was Unhold
    assert (snap["ProdProcessedCount"], snap["ProdDefectiveCount"]) == (2, 1)
    assert snap["StateCumulativeTime"]["Held"] == pytest.approx(2.0)
    assert snap["StateCumulativeTime"]["Execute"] == pytest.approx(4.0)  # before Hold and after Unholding
    m.fire(C.RESET)
    snap = tags.snapshot()
    assert (snap["ProdProcessedCount"], snap["ProdProcessedAccCount"], snap["ProdDefectiveAccCount"]) == (0, 2, 1)
    restored = PackTags(clock=clock)
    restored.restore(snap)
    assert restored.snapshot()["ProdProcessedAccCount"] == 2
