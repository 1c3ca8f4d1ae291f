"""PackTags (PackML v3 / OPC 30050 names): status and admin tags of the cell, persisted in the store.

``ProdProcessedCount`` / ``ProdDefectiveCount`` reset on the Reset command; their ``AccCount`` twins never
reset (they survive restarts, as they live in the store). ``StateCumulativeTime`` holds seconds per state name
since the last Reset, ``StateCurrentTime`` the seconds in the current state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .packml import Command, State, Transition, UnitMode

__all__ = ["PackTags", "StopReason", "MAX_ALARMS"]

#: How many alarms the ``Alarm`` list keeps (oldest dropped; the store's event log keeps all).
MAX_ALARMS = 32


class StopReason:
    """``StopReason.ID`` (and ``Alarm[].ID``) codes of this cell."""

    OPERATOR = 1
    ROBOT_ERROR = 2
    LINK_LOST = 3
    ESTOP = 4
    RESTART = 5
    NOT_READY = 6
    SAFETY = 7
    TIMEOUT = 8


class PackTags:
    """The cell's PackTags; update them through the methods, read them with :meth:`snapshot`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.processed = self.defective = 0
        self.processed_acc = self.defective_acc = 0
        self.stop_reason: dict[str, Any] = {"ID": 0, "Value": ""}
        self.alarms: list[dict[str, Any]] = []
        self.cumulative: dict[str, float] = {}
        self.state, self.mode, self.command = State.STOPPED, UnitMode.PRODUCE, 0
        self.state_since = clock()

    def on_transition(self, tr: Transition) -> None:
        """Book the time of the state left; reset the counters on Reset."""
        with self._lock:
            name = tr.before.name.title()
            self.cumulative[name] = self.cumulative.get(name, 0.0) + max(0.0, tr.ts - self.state_since)
            self.state, self.state_since = tr.after, tr.ts
            if tr.trigger.upper() in Command.__members__:
                self.command = int(Command[tr.trigger.upper()])
            if tr.trigger.upper() == "RESET":
                self.processed = self.defective = 0
                self.cumulative = {}
                self.stop_reason = {"ID": 0, "Value": ""}

    def count(self, defective: bool) -> None:
        """One pair routed (``defective``: it went to rework)."""
        with self._lock:
            self.processed += 1
            self.processed_acc += 1
            if defective:
                self.defective += 1
                self.defective_acc += 1

    def recount(self, defective_delta: int) -> None:
        """A human re-routed a counted pair (+1: now defective, -1: no longer)."""
        with self._lock:
            self.defective = max(0, self.defective + defective_delta)
            self.defective_acc = max(0, self.defective_acc + defective_delta)

    def set_stop_reason(self, code: int, text: str) -> None:
        """``StopReason`` (code 0: none)."""
        with self._lock:
            self.stop_reason = {"ID": int(code), "Value": text[:500]}

    def alarm(self, code: int, text: str) -> None:
        """Raise an alarm (kept in ``Alarm``, newest last)."""
        with self._lock:
            self.alarms = [*self.alarms, {"ID": int(code), "Value": text[:500], "Time": self._clock()}][-MAX_ALARMS:]

    def clear_alarms(self) -> None:
        """Acknowledge all alarms (on Reset/Clear)."""
        with self._lock:
            self.alarms = []

    def snapshot(self) -> dict[str, Any]:
        """All tags as plain JSON values."""
        with self._lock:
            now = self._clock()
            cum = dict(self.cumulative)
            cur = self.state.name.title()
            cum[cur] = cum.get(cur, 0.0) + max(0.0, now - self.state_since)
            return {
                "StateCurrent": int(self.state), "StateCurrentName": cur, "UnitModeCurrent": int(self.mode),
                "CntrlCmd": self.command, "ProdProcessedCount": self.processed,
                "ProdProcessedAccCount": self.processed_acc, "ProdDefectiveCount": self.defective,
                "ProdDefectiveAccCount": self.defective_acc, "StopReason": dict(self.stop_reason),
                "Alarm": list(self.alarms), "StateCurrentTime": max(0.0, now - self.state_since),
                "StateCumulativeTime": {k: round(v, 3) for k, v in cum.items()},
            }  # fmt: skip

    def restore(self, saved: dict[str, Any]) -> None:
        """Take the counters, stop reason and alarms back from a stored snapshot (state times restart)."""
        with self._lock:
            self.processed = int(saved.get("ProdProcessedCount", 0))
            self.processed_acc = int(saved.get("ProdProcessedAccCount", 0))
            self.defective = int(saved.get("ProdDefectiveCount", 0))
            self.defective_acc = int(saved.get("ProdDefectiveAccCount", 0))
            self.stop_reason = dict(saved.get("StopReason") or {"ID": 0, "Value": ""})
            self.alarms = list(saved.get("Alarm") or [])[-MAX_ALARMS:]
            self.cumulative = {str(k): float(v) for k, v in (saved.get("StateCumulativeTime") or {}).items()}
