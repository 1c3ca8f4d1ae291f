"""A CPS node: the cell's membership of the factory (registration, bids, tasks, votes).

This is the integration point for the cell's orchestrator: give :class:`NodeAgent` two callbacks,

* ``can_do(cfp) -> Proposal | Refusal`` — answer a call for proposals (cost, finish time, distance; or why
  not), quickly and without side effects beyond an optional reservation;
* ``perform(task) -> dict`` — do the work (blocking, on the node's worker thread) and return a JSON-able
  result; raise to report a failure (a robot fault) — the product is then auctioned again;

and optionally ``decide(proposal) -> bool | None`` for votes and ``on_reject(cfp)`` to drop a reservation.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .agent import Agent
from .auction import CallForProposals, Proposal, Refusal, weighted_index
from .bus.base import VOTE, Bus, cfp_topic
from .crypto import Identity
from .errors import AuthError, FactoryError
from .ledger import make_record
from .messages import Message
from .rdf import NodeProfile, describe
from .registry import Registry
from .votes import VoteProposal
from .voting import VoteKeeper

__all__ = ["NodeAgent", "Task"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """Awarded work: one process of one product, to be finished by ``deadline`` (POSIX s)."""

    product: str
    step: int
    process: str
    requirements: dict[str, Any]
    conversation_id: str
    deadline: float
    manager: str


class NodeAgent(Agent):
    """One CPS node on the bus."""

    def __init__(self, identity: Identity, registry: Registry, bus: Bus, profile: NodeProfile, *,
                 can_do: Callable[[CallForProposals], Proposal | Refusal], perform: Callable[[Task], dict[str, Any]],
                 decide: Callable[[VoteProposal], bool | None] | None = None,
                 on_reject: Callable[[CallForProposals], None] | None = None, manager: str | None = None) -> None:
        super().__init__(identity, registry, bus)
        if profile.id != identity.id:
            raise AuthError(f"profile of {profile.id} used with the key of {identity.id}")
        allowed = set(registry.get(self.id).processes)
        if not set(profile.processes) <= allowed:
            raise AuthError(f"{self.id} is not authorised for {sorted(set(profile.processes) - allowed)}")
        self.profile, self.can_do, self.perform = profile, can_do, perform
        self.decide, self.on_reject = decide, on_reject
        self.manager = manager or registry.ids("manager")[0]
        self.registered = threading.Event()
        self.refusal: str | None = None
        self.votes = VoteKeeper(registry)
        self.done: list[str] = []
        self._cfps: dict[str, CallForProposals] = {}
        self._tasks: queue.Queue[Task | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name=f"gcf-{self.id}-work", daemon=True)

    def on_start(self) -> None:
        for p in self.profile.processes:
            self.listen(cfp_topic(p))
        self.listen(VOTE)
        self._worker.start()
        self._register()
        self._tick()

    def _register(self) -> None:
        """Send the registration, again every second until the manager answers (it may start after us)."""
        if self.registered.is_set():
            return
        record = make_record(self.identity, "register", {"equipment": self.profile.equipment,
                                                         "processes": list(self.profile.processes)})
        self.send(self.message("register", self.manager, {"description": describe(self.profile), "record": record},
                               conversation_id=f"register.{self.id}"))
        self.call_later(1.0, self._register)

    def _tick(self) -> None:
        self.votes.check(time.time())
        self.call_later(0.1, self._tick)

    def wait_registered(self, timeout: float = 10.0) -> None:
        if not self.registered.wait(timeout):
            raise FactoryError(f"{self.id}: the manager did not answer the registration within {timeout} s")
        if self.refusal:
            raise AuthError(f"{self.id}: registration refused: {self.refusal}")

    def stop(self) -> None:
        self._tasks.put(None)
        super().stop()

    def handle(self, msg: Message, topic: str) -> None:
        if topic == VOTE:
            self._vote_message(msg)
            return
        if msg.sender != self.manager and msg.action != "query-ref":
            log.warning("%s: %s from %s ignored (not my manager)", self.id, msg.action, msg.sender)
            return
        if msg.action in ("agree", "refuse") and msg.conversation_id == f"register.{self.id}":
            self.refusal = None if msg.action == "agree" else str(msg.content.get("reason"))
            self.registered.set()
        elif msg.action == "cfp" and self.registered.is_set():
            self._answer_cfp(msg)
        elif msg.action == "accept-proposal":
            c = msg.content
            self._cfps.pop(msg.conversation_id, None)
            self._tasks.put(Task(str(c["product"]), int(c["step"]), str(c["process"]), dict(c.get("requirements", {})),
                                 msg.conversation_id, float(c["deadline"]), msg.sender))
        elif msg.action == "reject-proposal":
            cfp = self._cfps.pop(msg.conversation_id, None)
            if cfp is not None and self.on_reject:
                self.on_reject(cfp)

    def _answer_cfp(self, msg: Message) -> None:
        try:
            cfp = CallForProposals.from_content(msg.content)
        except FactoryError as exc:
            self.send(msg.reply(self.id, "not-understood", {"reason": str(exc)}))
            return
        if time.time() > cfp.reply_by:
            return  # too late to bid; silence counts as a refusal
        try:
            answer = self.can_do(cfp)
        except Exception as exc:
            log.exception("%s: can_do failed", self.id)
            answer = Refusal(f"error: {type(exc).__name__}")
        if isinstance(answer, Proposal):
            p = Proposal(answer.cost, answer.finish, answer.distance, weighted_index(cfp, answer))
            self._cfps[msg.conversation_id] = cfp
            self.send(msg.reply(self.id, "propose", p.to_content()))
        else:
            self.send(msg.reply(self.id, "refuse", {"reason": answer.reason}))

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                result = self.perform(task)
                body = {"product": task.product, "step": task.step, "process": task.process,
                        "conversation": task.conversation_id, "result": result}
                content = {"product": task.product, "step": task.step, "result": result,
                           "record": make_record(self.identity, "result", body)}
                action = "inform-done"
                self.done.append(task.conversation_id)
            except Exception as exc:  # a robot fault: report it, the product is auctioned again
                log.warning("%s: task %s failed: %s", self.id, task.conversation_id, exc)
                content = {"product": task.product, "step": task.step, "reason": f"{type(exc).__name__}: {exc}"}
                action = "failure"
            try:
                self.send(self.message(action, task.manager, content, conversation_id=task.conversation_id))
            except FactoryError as exc:  # the bus is gone (the node was stopped or cut off)
                log.warning("%s: could not report %s of %s: %s", self.id, action, task.conversation_id, exc)

    def propose_vote(self, kind: str, args: dict[str, Any], *, deadline_s: float = 5.0) -> VoteProposal:
        """Put a proposal to the vote of all members (broadcast on the vote topic)."""
        import uuid

        p = VoteProposal(f"p-{uuid.uuid4().hex[:12]}", self.id, kind, args, time.time() + deadline_s)
        record = make_record(self.identity, "vote-proposal", p.to_content())
        self.send(self.message("vote-propose", "all", {"proposal": p.to_content(), "record": record},
                               conversation_id=p.id, broadcast=True), VOTE)
        return p

    def _vote_message(self, msg: Message) -> None:
        try:
            p = self.votes.handle(msg)
        except (FactoryError, AuthError) as exc:
            log.warning("%s: vote message refused: %s", self.id, exc)
            return
        if p is not None and self.decide is not None:
            yes = self.decide(p)
            if yes is not None:
                record = make_record(self.identity, "vote", {"proposal": p.id, "yes": bool(yes)})
                self.send(self.message("vote", "all", {"proposal": p.id, "yes": bool(yes), "record": record},
                                       conversation_id=p.id, broadcast=True), VOTE)
        self.votes.check(time.time())
