"""The manager: product host (the smart products' auctioneer), ledger writer and the human manager's desk.

For each smart product it runs a FIPA contract-net auction for the next process: a call for proposals
on ``gcf/cfp/<process>`` with a ``reply-by``, proposals and refusals from the registered nodes authorised for
that process, award to the lowest WI (recomputed here), accept/reject messages, then ``inform-done`` or
``failure``. A failure, a missed deadline or the winner's last will puts the process out again; the step
advances on exactly one ``inform-done`` (a late one from an earlier award is recorded and ignored). When no
node proposes, the manager is alarmed (``gcf/alarm``, ledger, callback) and the product waits for a human.
Every registration, award, result, failure, alarm, vote and override goes into the ledger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .agent import Agent
from .auction import CallForProposals, Proposal, Weights, choose
from .bus.base import ALARM, STATUS, VOTE, Bus, cfp_topic
from .crypto import Identity
from .errors import AuthError, FactoryError
from .ledger import Ledger
from .messages import Message
from .product import SmartProduct
from .rdf import NodeProfile, parse_description
from .registry import Registry
from .votes import Ballot, VoteProposal
from .voting import VoteKeeper

__all__ = ["Auction", "Manager"]

log = logging.getLogger(__name__)


@dataclass
class Auction:
    """One open call for proposals."""

    product: str
    cfp: CallForProposals
    expected: set[str]
    t0: float
    answered: set[str] = field(default_factory=set)
    bids: dict[str, Proposal] = field(default_factory=dict)
    refusals: dict[str, str] = field(default_factory=dict)
    t_first: float = 0.0  # perf_counter of the first answer


class Manager(Agent):
    """Hosts smart products, runs their auctions, writes the ledger, raises alarms."""

    def __init__(self, identity: Identity, registry: Registry, bus: Bus, ledger: Ledger, *,
                 weights: Weights | None = None, reply_window: float = 1.0, grace: float = 2.0,
                 on_alarm: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__(identity, registry, bus)
        if self.role != "manager":
            raise AuthError(f"{self.id} is not a manager")
        self.ledger, self.reply_window, self.grace, self.on_alarm = ledger, reply_window, grace, on_alarm
        self.votes = VoteKeeper(registry, on_decided=self._decided)
        if weights is not None:
            self.votes.state = type(self.votes.state)(weights=weights, members=self.votes.state.members)
        self.products: dict[str, SmartProduct] = {}
        self.joined: dict[str, NodeProfile] = {}
        self.auctions: dict[str, Auction] = {}
        self.awards: dict[str, tuple[str, int, str]] = {}  # conv -> (product, step, node)
        self.attempts: dict[tuple[str, int], int] = {}
        self.excluded: dict[tuple[str, int], set[str]] = {}
        self.alarms: list[dict[str, Any]] = []
        self.award_latency_s: list[float] = []
        self.auction_phases_s: list[tuple[float, float]] = []  # (first answer, all answers) after the cfp
        self.counts: dict[str, int] = {}

    # -- life cycle -------------------------------------------------------------------------------
    def on_start(self) -> None:
        self.listen(STATUS + "+")
        self.listen(VOTE)
        self._tick()

    def _tick(self) -> None:
        self.votes.check(time.time())
        self.call_later(0.1, self._tick)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def submit(self, product: SmartProduct) -> None:
        """Host a new smart product and start the auction for its first process (thread-safe)."""
        self.call(lambda: self._submit(product))

    def _submit(self, p: SmartProduct) -> None:
        if p.id in self.products:
            log.warning("%s: product %s is already hosted (recovered from the ledger?); not submitted again",
                        self.id, p.id)
            return
        self.products[p.id] = p
        self.ledger.add(self.identity, "product", {
            "product": p.id, "owner": p.owner, "processes": p.processes, "requirements": p.requirements,
            "location": list(p.location), "step_time_s": p.step_time_s})
        self._auction(p.id)

    def recover(self, records: list[dict[str, Any]]) -> list[str]:
        """Rebuild products, registered nodes and attempt counters from the ledger after a restart and put
        every open step out again (see :func:`.recovery.recover`); call before :meth:`start`."""
        from .recovery import recover

        return recover(self, records)

    def finished(self) -> bool:
        """Every hosted product is done or stopped (waiting for a human)."""
        return all(p.status in ("done", "stopped") for p in self.products.values())

    def wait_finished(self, timeout: float, ids: list[str] | None = None) -> bool:
        """Wait until every hosted product (or each of ``ids``, once submitted) is done or stopped."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if ids is not None:
                ps = [self.products.get(i) for i in ids]
                if all(p is not None and p.status in ("done", "stopped") for p in ps):
                    return True
            elif self.products and self.finished():
                return True
            time.sleep(0.005)
        return False

    # -- auctions ---------------------------------------------------------------------------------
    def _auction(self, pid: str) -> None:
        p = self.products[pid]
        key = (pid, p.step)
        self.attempts[key] = attempt = self.attempts.get(key, 0) + 1
        conv = f"{pid}.{p.step}.{attempt}"
        process = p.current
        assert process is not None
        excluded = self.excluded.get(key, set())
        expected = {n for n, prof in self.joined.items() if process in prof.processes and n not in excluded}
        now = time.time()
        cfp = CallForProposals(pid, p.step, process, now, now + p.step_time_s, now + self.reply_window,
                               dict(p.requirements), p.location, weights=self.votes.state.weights)
        p.set_status("auctioning")
        p.note("cfp", conversation=conv, invited=sorted(expected))
        if not expected:
            self._alarm(pid, f"no registered node can do {process!r}" + (" (all failed)" if excluded else ""))
            return
        self.auctions[conv] = Auction(pid, cfp, expected, time.perf_counter())
        self.send(self.message("cfp", f"cfp/{process}", cfp.to_content(), conversation_id=conv, broadcast=True,
                               reply_by=cfp.reply_by), cfp_topic(process))
        self.call_later(self.reply_window, lambda: self._close(conv))

    def _answer(self, msg: Message) -> None:
        a = self.auctions.get(msg.conversation_id)
        if a is None:
            if msg.action == "propose":  # after reply-by: FIPA says reject as late
                self.send(msg.reply(self.id, "reject-proposal", {"reason": "late"}))
            return
        if msg.sender not in a.expected or msg.sender in a.answered:
            return
        a.answered.add(msg.sender)
        a.t_first = a.t_first or time.perf_counter()
        if msg.action == "propose":
            try:
                a.bids[msg.sender] = Proposal.from_content(msg.content)
            except FactoryError as exc:
                a.refusals[msg.sender] = f"bad proposal: {exc}"
        else:
            a.refusals[msg.sender] = str(msg.content.get("reason", msg.action))[:200]
        if a.answered == a.expected:
            self._close(msg.conversation_id)

    def _close(self, conv: str) -> None:
        a = self.auctions.pop(conv, None)
        if a is None:
            return
        silent = sorted(a.expected - a.answered)
        t_answers = time.perf_counter() - a.t0
        pick = None
        forced = dict(self.votes.state.reassign).get(a.product)
        if forced in a.bids:
            pick = (forced, float("nan"))
        pick = pick or choose(a.cfp, a.bids)
        if pick is None:
            self._alarm(a.product, f"no proposal for {a.cfp.process!r}: refusals {a.refusals}, silent {silent}")
            return
        winner, wi = pick
        p = self.products[a.product]
        # intent first: the award is in the ledger before the winner hears of it
        self.ledger.add(self.identity, "award", {
            "product": a.product, "step": a.cfp.step, "process": a.cfp.process, "conversation": conv,
            "winner": winner, "wi": None if wi != wi else wi, "forced": forced == winner, "cfp": a.cfp.to_content(),
            "bids": {n: b.to_content() for n, b in sorted(a.bids.items())}, "refusals": a.refusals,
            "silent": silent})
        content = {"product": a.product, "step": a.cfp.step, "process": a.cfp.process,
                   "requirements": a.cfp.requirements, "deadline": a.cfp.deadline}
        self.send(self.message("accept-proposal", winner, content, conversation_id=conv,
                               reply_by=a.cfp.deadline + self.grace))
        self.award_latency_s.append(time.perf_counter() - a.t0)  # the award is out; rejections follow
        self.auction_phases_s.append((a.t_first - a.t0 if a.t_first else float("nan"), t_answers))
        self.awards[conv] = (a.product, a.cfp.step, winner)
        p.set_status("in-process")
        p.note("award", node=winner, conversation=conv)
        for node in sorted(a.bids):
            if node != winner:
                self.send(self.message("reject-proposal", node, {"reason": "another bid won"}, conversation_id=conv))
        self._count("awards")
        self.call_later(a.cfp.deadline - time.time() + self.grace, lambda: self._overdue(conv))

    def _done(self, msg: Message) -> None:
        award = self.awards.get(msg.conversation_id)
        if award is None or award[2] != msg.sender:
            self.ledger.add(self.identity, "late-result", {"conversation": msg.conversation_id, "node": msg.sender,
                                                           "note": "no open award; ignored"})
            self._count("late_results")
            return
        pid, _, node = award
        signed = msg.content.get("record")
        rec = signed.get("rec", {}) if isinstance(signed, dict) else {}
        body = rec.get("body", {}) if isinstance(rec, dict) else {}
        if rec.get("kind") != "result" or rec.get("author") != node or body.get("conversation") != msg.conversation_id:
            raise FactoryError(f"{node}: inform-done without its signed result record")
        self.ledger.append(signed)
        del self.awards[msg.conversation_id]
        p = self.products[pid]
        p.complete_step(node, body.get("result", {}))
        self._count("results")
        if p.status != "done":
            self._auction(pid)

    def _failed(self, conv: str, node: str, reason: str) -> None:
        award = self.awards.pop(conv, None)
        if award is None or award[2] != node:
            return
        pid, step, _ = award
        self.ledger.add(self.identity, "failure", {"product": pid, "step": step, "conversation": conv,
                                                   "node": node, "reason": reason[:300]})
        self._count("failures")
        self.excluded.setdefault((pid, step), set()).add(node)
        self.products[pid].note("failure", node=node, reason=reason[:300])
        self._auction(pid)  # put the task out again

    def _overdue(self, conv: str) -> None:
        award = self.awards.get(conv)
        if award is not None:
            self.send(self.message("cancel", award[2], {"reason": "deadline passed"}, conversation_id=conv))
            self._failed(conv, award[2], "no inform-done by the deadline")

    def _alarm(self, pid: str, reason: str) -> None:
        p = self.products[pid]
        p.set_status("stopped")
        p.note("alarm", reason=reason)
        alarm = {"product": pid, "step": p.step, "process": p.current, "reason": reason[:500], "t": time.time()}
        self.alarms.append(alarm)
        self.ledger.add(self.identity, "alarm", alarm)
        self.send(self.message("alarm", "managers", alarm, conversation_id=f"alarm.{pid}", broadcast=True), ALARM)
        log.warning("ALARM product %s: %s", pid, reason)
        if self.on_alarm:
            self.on_alarm(alarm)

    # -- incoming messages ------------------------------------------------------------------------
    def handle(self, msg: Message, topic: str) -> None:
        role = self.registry.get(msg.sender).role
        if topic == VOTE:
            self._vote_message(msg, role)
        elif msg.action == "register" and role == "cell":
            self._register(msg)
        elif msg.action in ("propose", "refuse", "not-understood") and role == "cell":
            self._answer(msg)
        elif msg.action == "inform-done" and role == "cell":
            self._done(msg)
        elif msg.action == "failure" and role == "cell":
            self._failed(msg.conversation_id, msg.sender, str(msg.content.get("reason", "failure")))
        elif msg.action == "query-ref":
            self._query(msg, role)
        elif msg.action == "override" and role == "operator":
            self._override(msg)
        else:
            self.verifier.refused["unauthorised"] += 1
            log.warning("%s: %s from %s (%s) refused: not allowed for this role", self.id, msg.action, msg.sender, role)
            if msg.send_type == "unicast":
                self.send(msg.reply(self.id, "refuse", {"reason": f"{msg.action} not allowed for role {role}"}))

    def _register(self, msg: Message) -> None:
        if msg.sender in self.joined:  # a repeated registration (the node retries until it hears back)
            self.send(msg.reply(self.id, "agree", {"processes": list(self.joined[msg.sender].processes)}))
            return
        try:
            profile = parse_description(str(msg.content.get("description", "")))
            if profile.id != msg.sender:
                raise AuthError(f"description is of {profile.id}, sent by {msg.sender}")
            extra = set(profile.processes) - set(self.registry.get(msg.sender).processes)
            if extra:
                raise AuthError(f"not authorised for processes {sorted(extra)}")
            signed = msg.content.get("record")
            rec = signed.get("rec", {}) if isinstance(signed, dict) else {}
            if rec.get("kind") != "register" or rec.get("author") != msg.sender:
                raise AuthError("registration without the node's signed register record")
            self.ledger.append(signed)
        except FactoryError as exc:
            log.warning("%s: registration of %s refused: %s", self.id, msg.sender, exc)
            self.send(msg.reply(self.id, "refuse", {"reason": str(exc)[:300]}))
            return
        self.joined[msg.sender] = profile
        self.send(msg.reply(self.id, "agree", {"processes": list(profile.processes)}))

    def _query(self, msg: Message, role: str) -> None:
        p = self.products.get(str(msg.content.get("product")))
        try:
            if p is None:
                raise AuthError("no such product")
            self.send(msg.reply(self.id, "inform", p.progress(msg.sender, role)))
        except AuthError as exc:  # an unknown product and a foreign one look the same to the asker
            log.warning("%s: %s may not read product %r: %s", self.id, msg.sender, msg.content.get("product"), exc)
            self.send(msg.reply(self.id, "refuse", {"reason": "not authorised or no such product"}))

    def on_status(self, member: str, payload: bytes) -> None:
        if payload != b"offline":
            return
        self.joined.pop(member, None)
        for conv, (_, _, node) in list(self.awards.items()):
            if node == member:
                self._failed(conv, node, "node went offline (last will)")
        for conv, a in list(self.auctions.items()):
            if member in a.expected and member not in a.answered:
                a.expected.discard(member)
                if a.answered == a.expected:
                    self._close(conv)

    def _override(self, msg: Message) -> None:
        """A human operator outranks every automatic decision: resume or assign a product's current step."""
        c = msg.content
        signed = c.get("record")
        rec = signed.get("rec", {}) if isinstance(signed, dict) else {}
        if rec.get("kind") != "override" or rec.get("author") != msg.sender:
            raise FactoryError("override without the operator's signed record")
        p = self.products.get(str(c.get("product")))
        if p is None or p.status == "done":
            self.send(msg.reply(self.id, "refuse", {"reason": "no such product or already done"}))
            return
        self.ledger.append(signed)
        p.note("override", operator=msg.sender, action=c.get("action"))
        for conv, (pid, _, _) in list(self.awards.items()):
            if pid == p.id:
                self.awards.pop(conv)
        self.excluded.pop((p.id, p.step), None)
        if c.get("action") == "assign":
            node = str(c.get("node"))
            key = (p.id, p.step)
            self.attempts[key] = attempt = self.attempts.get(key, 0) + 1
            conv = f"{p.id}.{p.step}.{attempt}"
            deadline = time.time() + p.step_time_s
            self.awards[conv] = (p.id, p.step, node)
            p.set_status("in-process")
            self.send(self.message("accept-proposal", node, {"product": p.id, "step": p.step, "process": p.current,
                                                             "requirements": p.requirements, "deadline": deadline},
                                   conversation_id=conv))
            self.call_later(p.step_time_s + self.grace, lambda: self._overdue(conv))
        else:
            self._auction(p.id)
        self.send(msg.reply(self.id, "agree", {"product": p.id}))

    # -- votes ------------------------------------------------------------------------------------
    def _vote_message(self, msg: Message, role: str) -> None:
        signed = msg.content.get("record")
        try:
            self.votes.handle(msg)
        except FactoryError as exc:
            log.warning("%s: vote message from %s refused: %s", self.id, msg.sender, exc)
            return
        if isinstance(signed, dict) and signed.get("rec", {}).get("author") == msg.sender:
            self.ledger.append(signed)
        self.votes.check(time.time())

    def _decided(self, p: VoteProposal, outcome: str, ballot: Ballot) -> None:
        yes = sorted(v for v, (y, _) in ballot.votes.items() if y)
        no = sorted(v for v, (y, _) in ballot.votes.items() if not y)
        self.ledger.add(self.identity, "vote-outcome", {
            "proposal": p.id, "kind": p.kind, "outcome": outcome, "yes": yes, "no": no,
            "members": self.votes.voters.get(p.id, []), "override": list(ballot.override or ()),
            "state": self.votes.state.digest()})
        if outcome == "passed" and p.kind == "admit":
            self.ledger.add(self.identity, "member-admitted", {"member": p.args["member"]})
        elif outcome == "passed" and p.kind == "expel":
            self.ledger.add(self.identity, "member-expelled", {"id": p.args["id"]})
            self.joined.pop(str(p.args["id"]), None)

    def summary(self) -> dict[str, Any]:
        """What happened: products, alarms, counts, refusals, award latencies, vote outcomes, ledger head."""
        return {"products": {k: {"status": p.status, "step": p.step, "history": p.history}
                             for k, p in self.products.items()},
                "alarms": self.alarms, "counts": dict(self.counts), "refused": dict(self.verifier.refused),
                "award_latency_s": list(self.award_latency_s), "votes": self.votes.summary(),
                "joined": sorted(self.joined), "ledger_head": self.ledger.head()}
