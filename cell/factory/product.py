"""The smart product: a work item that carries its process list, status and history, and asks for work.

It is hosted by the manager (the product host), which runs the auction for its next process. Anyone it
authorises may ask for its progress: its owner (a customer), managers and operators; nobody else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .crypto import check_id
from .errors import AuthError, FactoryError

__all__ = ["STATUSES", "SmartProduct"]

STATUSES = ("waiting", "auctioning", "in-process", "stopped", "done")


@dataclass
class SmartProduct:
    """One work item (e.g. a pair of uppers) and its route, e.g. ``["spray-upper", "press", "inspect"]``."""

    id: str
    owner: str
    processes: list[str]
    requirements: dict[str, Any] = field(default_factory=dict)
    location: tuple[float, float] = (0.0, 0.0)
    step_time_s: float = 30.0
    step: int = 0
    status: str = "waiting"
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_id(self.id, "product id")
        check_id(self.owner, "owner")
        if not self.processes:
            raise FactoryError(f"product {self.id}: empty process list")
        for p in self.processes:
            check_id(p, "process")
        if not 0 < self.step_time_s <= 86400:
            raise FactoryError(f"product {self.id}: step_time_s must be in (0, 86400]")

    @property
    def current(self) -> str | None:
        """The process it needs next (None when done)."""
        return self.processes[self.step] if self.step < len(self.processes) else None

    def note(self, event: str, **info: Any) -> None:
        self.history.append({"t": time.time(), "step": self.step, "event": event, **info})

    def set_status(self, status: str) -> None:
        if status not in STATUSES:
            raise FactoryError(f"unknown product status {status!r}")
        self.status = status

    def complete_step(self, node: str, result: dict[str, Any]) -> None:
        """The current process is done (exactly once): record it and move on."""
        self.note("done", node=node, process=self.current, result=result)
        self.step += 1
        self.set_status("done" if self.step >= len(self.processes) else "waiting")

    def progress(self, requester: str, role: str) -> dict[str, Any]:
        """Progress for an authorised requester (its owner, a manager or an operator)."""
        if requester != self.owner and role not in ("manager", "operator"):
            raise AuthError(f"{requester} may not read product {self.id}")
        return {"product": self.id, "owner": self.owner, "processes": list(self.processes), "step": self.step,
                "current": self.current, "status": self.status,
                "history": [{k: v for k, v in h.items() if k != "result"} for h in self.history]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SmartProduct:
        try:
            return cls(str(d["id"]), str(d["owner"]), [str(p) for p in d["processes"]],
                       dict(d.get("requirements", {})), tuple(d.get("location", (0.0, 0.0))),
                       float(d.get("step_time_s", 30.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise FactoryError(f"bad product description: {exc}") from exc
