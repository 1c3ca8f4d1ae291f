"""Every member's copy of the open votes: collects signed proposals, votes and overrides, tallies them
and runs the smart contract (:func:`~.votes.execute`) on what passed, identically on every node."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import FactoryError
from .messages import Message
from .registry import Member, Registry
from .votes import Ballot, FactoryState, VoteProposal, execute, tally

__all__ = ["VOTER_ROLES", "VoteKeeper"]

log = logging.getLogger(__name__)
VOTER_ROLES = ("manager", "cell")


class VoteKeeper:
    """Ballots by proposal id; ``on_decided(proposal, outcome, ballot)`` runs once per proposal."""

    def __init__(self, registry: Registry, on_decided: Callable[[VoteProposal, str, Ballot], None] | None = None):
        self.registry = registry
        self.ballots: dict[str, Ballot] = {}
        self.voters: dict[str, list[str]] = {}
        self.outcomes: dict[str, str] = {}
        self.state = FactoryState(members=tuple(sorted((m.id, m.role) for m in registry.members.values())))
        self.on_decided = on_decided

    def voting_members(self) -> list[str]:
        return sorted(m.id for m in self.registry.members.values() if m.role in VOTER_ROLES)

    def handle(self, msg: Message) -> VoteProposal | None:
        """Take a vote-propose / vote / override message; returns a new proposal (to decide on) or None."""
        role = self.registry.get(msg.sender).role
        c = msg.content
        if msg.action == "vote-propose":
            if role not in VOTER_ROLES:
                raise FactoryError(f"{msg.sender} ({role}) may not propose")
            p = VoteProposal.from_content(c.get("proposal"))
            if p.proposer != msg.sender or p.id in self.ballots:
                raise FactoryError(f"proposal {p.id}: wrong proposer or already known")
            self.ballots[p.id] = Ballot(p)
            self.voters[p.id] = self.voting_members()
            return p
        ballot = self.ballots.get(str(c.get("proposal")))
        if ballot is None:
            raise FactoryError(f"{msg.action} for unknown proposal {c.get('proposal')!r}")
        if msg.action == "vote":
            if msg.sender not in self.voters[ballot.proposal.id]:
                raise FactoryError(f"{msg.sender} is not a voting member of proposal {ballot.proposal.id}")
            ballot.cast(msg.sender, bool(c.get("yes")), msg.sent)
        elif msg.action == "override":
            if role != "operator":
                raise FactoryError(f"{msg.sender} ({role}) may not override: operators only")
            ballot.override = (msg.sender, bool(c.get("decision")))
        return None

    def check(self, now: float) -> list[tuple[str, str]]:
        """Tally every open ballot; run the contract on what passed; returns newly decided (id, outcome)."""
        decided = []
        for pid in sorted(self.ballots):
            if pid in self.outcomes:
                continue
            ballot = self.ballots[pid]
            outcome = tally(ballot, self.voters[pid], now)
            if outcome == "open":
                continue
            self.outcomes[pid] = outcome
            if outcome == "passed":
                self.state = execute(self.state, ballot.proposal)
                self._apply_membership(ballot.proposal)
            decided.append((pid, outcome))
            if self.on_decided:
                self.on_decided(ballot.proposal, outcome, ballot)
        return decided

    def _apply_membership(self, p: VoteProposal) -> None:
        if p.kind == "admit":
            self.registry.add(Member.from_dict(p.args["member"]))
        elif p.kind == "expel":
            self.registry.remove(str(p.args["id"]))

    def summary(self) -> dict[str, Any]:
        return {"outcomes": dict(self.outcomes), "state": self.state.digest(),
                "weights": [self.state.weights.cost, self.state.weights.deadline, self.state.weights.distance]}
