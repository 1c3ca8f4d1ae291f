"""The PackML state machine (ISA-TR88.00.02) as a table, with OPC 30050 / PackTags v3 numbering.

``TRANSITIONS[(state, trigger)] -> next state`` is the whole machine. Triggers are the operator commands
(``CntrlCmd`` 1-10) and the machine's own events: ``SC`` (state complete: an acting state finished its work,
or Execute finished the job), and the fault events that the controller raises (a safety-relevant failure or a
lost robot link holds the cell, an e-stop aborts it). A trigger not in the table for the current state is
refused: :meth:`PackMLMachine.fire` raises :class:`CommandRefusedError` and nothing changes.

Unit modes (Produce 1, Maintenance 2, Manual 3) disable some states: in Manual there is no Hold, Suspend or
Complete; in Maintenance no Suspend or Complete. A command that would enter a disabled state is refused.
The mode may change only in Stopped, Idle or Aborted (a resting state).

Numbering pinned to OPC 30050 (PackML v3): Clearing 1, Stopped 2, Starting 3, Idle 4, Suspended 5, Execute 6,
Stopping 7, Aborting 8, Aborted 9, Holding 10, Held 11, Unholding 12, Suspending 13, Unsuspending 14,
Resetting 15, Completing 16, Complete 17.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gluecell.cell.errors import CellError

__all__ = ["State", "Command", "Event", "UnitMode", "TRANSITIONS", "ACTING_STATES", "WAIT_STATES",
           "MODE_DISABLED", "MODE_CHANGE_STATES", "CommandRefusedError", "Transition", "PackMLMachine",
           "next_state"]  # fmt: skip


class State(enum.IntEnum):
    """``StateCurrent`` (OPC 30050 numbering)."""

    CLEARING = 1
    STOPPED = 2
    STARTING = 3
    IDLE = 4
    SUSPENDED = 5
    EXECUTE = 6
    STOPPING = 7
    ABORTING = 8
    ABORTED = 9
    HOLDING = 10
    HELD = 11
    UNHOLDING = 12
    SUSPENDING = 13
    UNSUSPENDING = 14
    RESETTING = 15
    COMPLETING = 16
    COMPLETE = 17


class Command(enum.IntEnum):
    """``CntrlCmd`` (OPC 30050 numbering)."""

    RESET = 1
    START = 2
    STOP = 3
    HOLD = 4
    UNHOLD = 5
    SUSPEND = 6
    UNSUSPEND = 7
    ABORT = 8
    CLEAR = 9
    COMPLETE = 10


class Event(enum.Enum):
    """Triggers that come from the machine itself, not from an operator."""

    SC = "state_complete"  # an acting state finished; in Execute: the job is done
    FAULT = "fault"  # a safety-relevant failure, a robot error or a lost link: hold and report
    ESTOP = "estop"  # emergency stop: abort
    STARVED = "starved"  # no pair at the infeed: suspend (PackML's "starved")
    UNSTARVED = "unstarved"  # a pair is back: unsuspend


class UnitMode(enum.IntEnum):
    """``UnitModeCurrent``."""

    PRODUCE = 1
    MAINTENANCE = 2
    MANUAL = 3


S, C, E = State, Command, Event
#: States that do work and end by themselves (``SC``).
ACTING_STATES = frozenset({S.CLEARING, S.STARTING, S.STOPPING, S.ABORTING, S.HOLDING, S.UNHOLDING, S.SUSPENDING,
                           S.UNSUSPENDING, S.RESETTING, S.COMPLETING})  # fmt: skip
#: States that wait for a command (Execute waits for the job to finish or a command).
WAIT_STATES = frozenset(set(S) - ACTING_STATES)

_SC_NEXT = {S.CLEARING: S.STOPPED, S.STARTING: S.EXECUTE, S.STOPPING: S.STOPPED, S.ABORTING: S.ABORTED,
            S.HOLDING: S.HELD, S.UNHOLDING: S.EXECUTE, S.SUSPENDING: S.SUSPENDED, S.UNSUSPENDING: S.EXECUTE,
            S.RESETTING: S.IDLE, S.COMPLETING: S.COMPLETE, S.EXECUTE: S.COMPLETING}  # fmt: skip
_NO_STOP = {S.STOPPED, S.STOPPING, S.ABORTING, S.ABORTED, S.CLEARING}
_NO_ABORT = {S.ABORTING, S.ABORTED}
#: Where Hold is accepted (TR88.00.02-2015 also holds from the suspend states).
_HOLD_FROM = {S.EXECUTE, S.SUSPENDING, S.SUSPENDED, S.UNSUSPENDING}


def _table() -> dict[tuple[State, Command | Event], State]:
    t: dict[tuple[State, Command | Event], State] = {(s, E.SC): n for s, n in _SC_NEXT.items()}
    t.update({(S.STOPPED, C.RESET): S.RESETTING, (S.COMPLETE, C.RESET): S.RESETTING, (S.IDLE, C.START): S.STARTING,
              (S.HELD, C.UNHOLD): S.UNHOLDING, (S.SUSPENDED, C.UNSUSPEND): S.UNSUSPENDING,
              (S.ABORTED, C.CLEAR): S.CLEARING, (S.EXECUTE, C.COMPLETE): S.COMPLETING,
              (S.EXECUTE, C.SUSPEND): S.SUSPENDING, (S.EXECUTE, E.STARVED): S.SUSPENDING,
              (S.SUSPENDED, E.UNSTARVED): S.UNSUSPENDING})  # fmt: skip
    for s in _HOLD_FROM:
        t[(s, C.HOLD)] = S.HOLDING
    for s in set(S) - _NO_STOP:
        t[(s, C.STOP)] = S.STOPPING
    for s in set(S) - _NO_ABORT:
        t[(s, C.ABORT)] = S.ABORTING
        t[(s, E.ESTOP)] = S.ABORTING
    # A fault holds a running cell; in a state that is already stopping or resting it changes nothing there.
    for s in {S.EXECUTE, S.STARTING, S.UNHOLDING, S.SUSPENDING, S.SUSPENDED, S.UNSUSPENDING, S.COMPLETING}:
        t[(s, E.FAULT)] = S.HOLDING
    return t


#: The machine: ``(state, trigger) -> next state``. Everything not listed is refused.
TRANSITIONS: dict[tuple[State, Command | Event], State] = _table()

#: States each unit mode does not use (a trigger into one of them is refused in that mode).
MODE_DISABLED: dict[UnitMode, frozenset[State]] = {
    UnitMode.PRODUCE: frozenset(),
    UnitMode.MAINTENANCE: frozenset({S.SUSPENDING, S.SUSPENDED, S.UNSUSPENDING, S.COMPLETING, S.COMPLETE}),
    UnitMode.MANUAL: frozenset({S.SUSPENDING, S.SUSPENDED, S.UNSUSPENDING, S.COMPLETING, S.COMPLETE, S.HOLDING,
                                S.HELD, S.UNHOLDING}),
}  # fmt: skip
#: In Manual a fault cannot hold (no Held state), so it stops the cell instead.
_MANUAL_FAULT = S.STOPPING
#: States in which the unit mode may change.
MODE_CHANGE_STATES = frozenset({S.STOPPED, S.IDLE, S.ABORTED})


def next_state(state: State, trigger: Command | Event, mode: UnitMode = UnitMode.PRODUCE) -> State | None:
    """Where ``trigger`` leads from ``state`` in ``mode``, or None when it is refused."""
    nxt = TRANSITIONS.get((state, trigger))
    if nxt is None:
        return None
    if nxt in MODE_DISABLED[mode]:
        if trigger is E.FAULT and mode is UnitMode.MANUAL:
            return _MANUAL_FAULT
        return None
    return nxt


class CommandRefusedError(CellError):
    """A command (or event) that the current state or unit mode does not accept; nothing changed."""


@dataclass(frozen=True)
class Transition:
    """One state change: from, to, the trigger, why, and when (UNIX s)."""

    before: State
    after: State
    trigger: str
    reason: str
    ts: float


class PackMLMachine:
    """The state machine with its unit mode; thread-safe. Listeners get every :class:`Transition`.

    Args:
        state: state to start in (a restart starts in Stopped or Held, see the controller).
        mode: unit mode to start in.
        clock: time source (UNIX seconds).
    """

    def __init__(self, state: State = State.STOPPED, mode: UnitMode = UnitMode.PRODUCE,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._state, self._mode, self._clock = State(state), UnitMode(mode), clock
        self._lock = threading.RLock()
        self._listeners: list[Callable[[Transition], None]] = []
        self.since = clock()

    @property
    def state(self) -> State:
        """``StateCurrent``."""
        return self._state

    @property
    def mode(self) -> UnitMode:
        """``UnitModeCurrent``."""
        return self._mode

    def listen(self, fn: Callable[[Transition], None]) -> None:
        """Call ``fn(transition)`` after every state change (under the machine's lock)."""
        self._listeners.append(fn)

    def accepts(self, trigger: Command | Event) -> bool:
        """Whether ``trigger`` would be accepted now."""
        return next_state(self._state, trigger, self._mode) is not None

    def fire(self, trigger: Command | Event, reason: str = "") -> Transition:
        """Apply ``trigger``; returns the transition.

        Raises:
            CommandRefusedError: the current state (or unit mode) does not accept it; nothing changes.
        """
        with self._lock:
            nxt = next_state(self._state, trigger, self._mode)
            if nxt is None:
                raise CommandRefusedError(f"{_name(trigger)} is refused in state {self._state.name.title()}"
                                          f" (unit mode {self._mode.name.title()})", state=int(self._state),
                                          trigger=_name(trigger))  # fmt: skip
            return self._enter(nxt, _name(trigger), reason)

    def set_mode(self, mode: UnitMode, reason: str = "") -> None:
        """Change the unit mode (only in Stopped, Idle or Aborted)."""
        with self._lock:
            if self._state not in MODE_CHANGE_STATES:
                raise CommandRefusedError(f"unit mode can change only in Stopped, Idle or Aborted, not in "
                                          f"{self._state.name.title()}", state=int(self._state))  # fmt: skip
            self._mode = UnitMode(mode)

    def force(self, state: State, reason: str) -> Transition:
        """Enter ``state`` without a trigger: only for a restart that restores a safe state from storage."""
        with self._lock:
            return self._enter(State(state), "restore", reason)

    def _enter(self, nxt: State, trigger: str, reason: str) -> Transition:
        tr = Transition(self._state, nxt, trigger, reason, self._clock())
        self._state, self.since = nxt, tr.ts
        for fn in self._listeners:
            fn(tr)
        return tr


def _name(trigger: Command | Event) -> str:
    return trigger.name.title() if isinstance(trigger, Command) else trigger.value
