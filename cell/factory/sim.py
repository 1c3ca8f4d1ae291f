"""Simulated cells for the demo, the tests and the bench: a cost model, a takt time and injectable faults.

A real cell plugs its orchestrator into :class:`~.node.NodeAgent` the same way: ``can_do`` and ``perform``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .auction import CallForProposals, Proposal, Refusal
from .errors import FactoryError
from .node import Task
from .rdf import NodeProfile

__all__ = ["RobotFault", "SimCell"]


class RobotFault(FactoryError):
    """The simulated robot stopped (protective stop, gun clogged) in the middle of a task."""


@dataclass
class SimCell:
    """``can_do``/``perform`` of one simulated cell. ``time_scale`` shrinks the takt time for demos/tests."""

    profile: NodeProfile
    cost: float = 50.0
    time_scale: float = 1.0
    fail_on: frozenset[int] = frozenset()  # 1-based task numbers that end in a robot fault mid-task
    hang_on: frozenset[int] = frozenset()  # task numbers during which the cell vanishes (on_hang is called)
    on_hang: Callable[[], None] | None = None
    reservations: dict[tuple[str, int], float] = field(default_factory=dict)  # (product, step) -> finish
    tasks: int = 0
    performed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def work_s(self) -> float:
        return self.profile.takt_s * self.time_scale

    def can_do(self, cfp: CallForProposals) -> Proposal | Refusal:
        p = self.profile
        if cfp.process not in p.processes:
            return Refusal(f"wrong equipment: {p.equipment} cannot do {cfp.process}")
        size = cfp.requirements.get("size")
        if isinstance(size, int | float) and not p.size_min <= size <= p.size_max:
            return Refusal(f"size {size} outside {p.size_min}-{p.size_max}")
        glue = cfp.requirements.get("glue")
        if glue is not None and glue not in p.glues:
            return Refusal(f"glue {glue!r} not available")
        with self._lock:  # a bid reserves its slot until it is rejected or done (no double booking)
            finish = max([time.time(), *self.reservations.values()]) + self.work_s
            if finish > cfp.deadline:
                return Refusal("not available in the time window")
            self.reservations[(cfp.product, cfp.step)] = finish
        distance = math.hypot(p.location[0] - cfp.location[0], p.location[1] - cfp.location[1])
        return Proposal(self.cost, finish, distance)

    def release(self, cfp: CallForProposals) -> None:
        """Drop the reservation of a rejected bid (``on_reject``)."""
        with self._lock:
            self.reservations.pop((cfp.product, cfp.step), None)

    def perform(self, task: Task) -> dict[str, Any]:
        with self._lock:
            self.tasks += 1
            n = self.tasks
        try:
            return self._work(task, n)
        finally:
            with self._lock:
                self.reservations.pop((task.product, task.step), None)

    def _work(self, task: Task, n: int) -> dict[str, Any]:
        time.sleep(self.work_s / 2)
        if n in self.fail_on:
            raise RobotFault(f"{self.profile.id}: protective stop during {task.process} of {task.product}")
        if n in self.hang_on:
            if self.on_hang:
                self.on_hang()
            time.sleep(self.work_s * 10)
            raise RobotFault(f"{self.profile.id}: vanished")
        time.sleep(self.work_s / 2)
        self.performed.append(task.conversation_id)
        return {"node": self.profile.id, "process": task.process, "takt_s": self.profile.takt_s, "verdict": "ok"}
