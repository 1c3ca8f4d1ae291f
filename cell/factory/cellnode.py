"""THIS cell as a CPS node: the real controller (PackML state, PackTags, store) behind a :class:`NodeAgent`.

* **Bids** (``can_do``): the cell refuses when its controller is Held/Stopped/Aborted (or on the way there,
  or Clearing), when the process is not ``spray``, when the pair's style, size or glue is outside what it
  can do, when the pair is not (or no longer) at its infeed, and when it cannot finish by the call's
  deadline. Otherwise it proposes its cost, a finish time = now + (pairs already booked + 1) x takt, and
  its distance. The takt time comes from the PackTags: seconds in Execute / ``ProdProcessedCount`` once a
  pair went through, else the nominal takt. A bid reserves its slot until it is rejected or done.
* **Award** (``accept-proposal``): the pair is ordered into the controller's store at once (so it is known
  when it reaches the infeed, even while an earlier task is still running), job ``factory``.
* **Perform**: waits until the controller routed the pair and reports it: ``passed`` -> inform-done with
  the controller's result (state, attempts, verdict source, robot time); ``rework`` or ``skipped`` ->
  **failure** (the glue is not to spec), so the manager puts the spray step out again; this cell then refuses
  that pair (it has already been through its line) and another cell does it. A controller that stops
  or aborts with the pair unrouted, or a deadline that passes, is a failure too (the still-ordered pair is
  skipped in the store, so it is never sprayed twice).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from .auction import CallForProposals, Proposal, Refusal
from .errors import FactoryError
from .messages import Message
from .node import NodeAgent, Task

__all__ = ["CellCapability", "CellNode", "CellNodeAgent", "UNAVAILABLE_STATES"]

log = logging.getLogger(__name__)

#: PackML states in which the cell takes no new work (names, so this module needs no control import).
UNAVAILABLE_STATES = frozenset({"HELD", "HOLDING", "STOPPED", "STOPPING", "ABORTED", "ABORTING", "CLEARING"})
SPRAY = "spray"
#: pair states in which the pair is not yet at the gun: a failed task skips it in the store
SKIPPABLE = ("ordered", "arrived", "planned")


@dataclass(frozen=True)
class CellCapability:
    """What this cell can spray: styles in its style library, the fixtures' EU size range, glues on the gun."""

    styles: tuple[str, ...]
    size_min: float = 35.0
    size_max: float = 47.0
    glues: tuple[str, ...] = ("PU-water",)
    nominal_takt_s: float = 10.0
    cost: float = 35.0
    location: tuple[float, float] = (0.0, 0.0)


class CellNode:
    """``can_do`` / ``perform`` / ``on_reject`` / ``on_award`` of the real cell.

    Args:
        controller: the running :class:`~gluecell.cell.control.Controller` (state, tags, store).
        capability: what the cell can do.
        infeed: ids of the pairs waiting at the cell's infeed (only those can be sprayed here).
        items: per pair id, its work item (``style``, ``size_eu``, ``side``) for ordering it into the store.
        poll_s: how often :meth:`perform` looks at the pair's state.
    """

    def __init__(self, controller: Any, capability: CellCapability, infeed: list[str],
                 items: dict[str, dict[str, Any]], poll_s: float = 0.2) -> None:
        self.ctl, self.cap, self.items, self.poll_s = controller, capability, items, poll_s
        self.store = controller.store
        self.infeed = list(infeed)
        self.closed = False  # the line runs its batch: no pair can be added to it any more
        self.reservations: dict[tuple[str, int], float] = {}
        self.won: list[str] = []
        self.attempted: set[str] = set()
        self.results: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # ---- bids ---------------------------------------------------------------------------------------------------
    def takt_s(self) -> float:
        """Seconds per pair from the PackTags (time in Execute / pairs processed), else the nominal takt."""
        tags = self.ctl.tags.snapshot()
        n = int(tags.get("ProdProcessedCount") or 0)
        execute = float((tags.get("StateCumulativeTime") or {}).get("Execute", 0.0))
        return execute / n if n > 0 and execute > 0 else self.cap.nominal_takt_s

    def availability(self) -> str | None:
        """Why the cell takes no work now (None: it does)."""
        state = self.ctl.state.name
        if state in UNAVAILABLE_STATES:
            reason = (self.ctl.tags.snapshot().get("StopReason") or {}).get("Value", "")
            return f"cell is {state.title()}" + (f": {reason}" if reason else "")
        return None

    def can_do(self, cfp: CallForProposals) -> Proposal | Refusal:
        """Propose or refuse (see the module docstring); a proposal reserves a slot."""
        if cfp.process != SPRAY:
            return Refusal(f"wrong equipment: this cell sprays, it cannot do {cfp.process}")
        why = self.availability() or self._unable(cfp.requirements) or self._not_here(cfp.product)
        if why:
            return Refusal(why)
        with self._lock:
            booked = len(self.reservations) + sum(1 for p in self.won if p not in self.results)
            finish = time.time() + (booked + 1) * self.takt_s()
            if finish > cfp.deadline:
                return Refusal("not available in the time window")
            self.reservations[(cfp.product, cfp.step)] = finish
        distance = math.hypot(self.cap.location[0] - cfp.location[0], self.cap.location[1] - cfp.location[1])
        return Proposal(self.cap.cost, finish, distance)

    def _unable(self, req: dict[str, Any]) -> str | None:
        style, size, glue = req.get("style"), req.get("size"), req.get("glue")
        if style is not None and style not in self.cap.styles:
            return f"style {str(style)[:40]!r} not in this cell's style library"
        if not isinstance(size, int | float) or not math.isfinite(size):
            return "no shoe size given"
        if not self.cap.size_min <= size <= self.cap.size_max:
            return f"size {size:g} outside {self.cap.size_min:g}-{self.cap.size_max:g}"
        if glue is not None and glue not in self.cap.glues:
            return f"glue {str(glue)[:40]!r} not on this cell's gun"
        return None

    def _not_here(self, product: str) -> str | None:
        if product in self.attempted:
            return f"{product} has already been through this cell's line"
        if product not in self.infeed:
            return f"{product} is not at this cell's infeed"
        if self.closed:
            return "the line is running its batch: no pair can join it"
        return None

    def release(self, cfp: CallForProposals) -> None:
        """``on_reject``: drop the reservation of a lost bid."""
        with self._lock:
            self.reservations.pop((cfp.product, cfp.step), None)

    # ---- award and work -----------------------------------------------------------------------------------------
    def on_award(self, product: str, step: int) -> None:
        """The manager accepted our bid: order the pair into the controller's store now."""
        with self._lock:
            self.reservations.pop((product, step), None)
            if product in self.attempted:
                return
            self.attempted.add(product)
            self.won.append(product)
        wi = self.items[product]
        if "factory" not in {j["id"] for j in self.store.jobs.list()}:
            self.store.jobs.add("factory", "mixed", len(self.infeed), data={"source": "factory auctions"})
        self.store.items.order(product, wi["style"], size_eu=float(wi["size_eu"]), side=wi["side"], job_id="factory")

    def perform(self, task: Task) -> dict[str, Any]:
        """Wait for the controller to route the pair; its result, or raise :class:`CellTaskFailed`."""
        from gluecell.cell.control.flow import FINAL_STATES

        pid = task.product
        if pid not in self.won:
            raise CellTaskFailed(f"{pid} was not ordered on this cell")
        try:
            while True:
                item = self.store.items.get(pid)
                if item["state"] in FINAL_STATES:
                    return self._report(task, item)
                state = self.ctl.state.name
                late = time.time() > task.deadline
                down = state in ("HELD", "STOPPED", "ABORTED")
                if late or (down and item["state"] in SKIPPABLE):
                    why = "deadline passed" if late else f"cell {state.title()}"
                    skipped = self._skip(pid, why)
                    raise CellTaskFailed(f"{pid} not routed ({why}): pair {'skipped' if skipped else item['state']}")
                time.sleep(self.poll_s)
        finally:
            self.results.setdefault(pid, {"state": "failed"})

    def _report(self, task: Task, item: dict[str, Any]) -> dict[str, Any]:
        insp = self.store.inspections.for_item(item["id"])
        plan = self.store.plans.latest(item["id"])
        progs = ((plan or {}).get("data") or {}).get("robot_programs") or {}
        result = {"node": self.ctl_id, "process": task.process, "item_state": item["state"],
                  "attempts": item["attempts"], "cause": item["cause"], "reason": (item["reason"] or "")[:200],
                  "verdict_source": insp[-1]["source"] if insp else None,
                  "robot_s": round(sum(p["t"][-1] - p["t"][0] for p in progs.values() if p), 3),
                  "takt_s": round(self.takt_s(), 3), "real_cell": True}
        self.results[item["id"]] = result
        if item["state"] != "passed":  # rework / skipped: glue not to spec -> the step is put out again
            raise CellTaskFailed(f"{item['id']} went to {item['state']} ({item['cause']}): "
                                 f"{(item['reason'] or '')[:160]}")
        return result

    def _skip(self, pid: str, why: str) -> bool:
        """Skip a pair not yet at the gun (so an Unhold never sprays a pair the factory gave to another cell)."""
        from gluecell.core.errors import GlueCellError

        try:
            self.store.items.transition(pid, "skipped", expect=SKIPPABLE, verdict="fail", cause="factory",
                                        reason=f"factory: {why}")
        except GlueCellError:
            return False  # it is being sprayed (or done): the controller finishes it
        return True

    ctl_id: str = "cell-1"


class CellTaskFailed(FactoryError):
    """The cell could not do its awarded spray to spec (rework, skipped, stopped, late)."""


class CellNodeAgent(NodeAgent):
    """A :class:`NodeAgent` that tells :class:`CellNode` of an award the moment it arrives (before its worker
    gets to the task), so the pair is in the store before it reaches the infeed."""

    def __init__(self, *args: Any, cell: CellNode, **kw: Any) -> None:
        super().__init__(*args, can_do=cell.can_do, perform=cell.perform, on_reject=cell.release, **kw)
        cell.ctl_id = self.id
        self.cell = cell

    def handle(self, msg: Message, topic: str) -> None:
        if msg.action == "accept-proposal" and msg.sender == self.manager:
            try:
                self.cell.on_award(str(msg.content["product"]), int(msg.content["step"]))
            except Exception:  # the task still runs; perform reports the failure to the manager
                log.exception("%s: could not order %s", self.id, msg.content.get("product"))
        super().handle(msg, topic)
