"""Votes and smart contracts: proposals of digital workers, majority of all members, deterministic execution.

* Any voting member (managers and cells: the digital workers) may propose: ``set-weights``, ``reassign``
  (a product's next process goes to a named node), ``admit`` (a new member with its key) or ``expel``.
* A proposal passes when more than half of **all** voting members (not of the votes cast) vote yes with a
  vote signed no later than its deadline; it fails at its deadline, or as soon as a majority can no longer be
  reached. Each member's first vote counts; later ones are ignored.
* :func:`execute` is the smart contract: a pure function of (state, proposal) that every node runs and
  that gives every node the same state (compared by :meth:`FactoryState.digest`).
* A human operator's override (pass or reject) outranks any tally and is recorded as an override.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from .auction import Weights
from .crypto import canonical, check_id
from .errors import FactoryError
from .registry import Member

__all__ = ["PROPOSAL_KINDS", "FactoryState", "VoteProposal", "Ballot", "execute", "tally"]

PROPOSAL_KINDS = ("set-weights", "reassign", "admit", "expel")


@dataclass(frozen=True)
class VoteProposal:
    """A proposal put to the vote (``args`` depend on ``kind``)."""

    id: str
    proposer: str
    kind: str
    args: dict[str, Any]
    deadline: float

    def __post_init__(self) -> None:
        check_id(self.id, "proposal id")
        if self.kind not in PROPOSAL_KINDS:
            raise FactoryError(f"proposal kind {self.kind!r} is not one of {PROPOSAL_KINDS}")
        if self.kind == "set-weights":
            Weights.from_dict(self.args.get("weights"))
        elif self.kind == "reassign":
            check_id(str(self.args.get("product")), "product")
            check_id(str(self.args.get("node")), "node")
        elif self.kind == "admit":
            Member.from_dict(self.args.get("member"))
        elif self.kind == "expel":
            check_id(str(self.args.get("id")), "member id")

    def to_content(self) -> dict[str, Any]:
        return {"id": self.id, "proposer": self.proposer, "kind": self.kind, "args": self.args,
                "deadline": self.deadline}

    @classmethod
    def from_content(cls, d: Any) -> VoteProposal:
        try:
            return cls(str(d["id"]), str(d["proposer"]), str(d["kind"]), dict(d["args"]), float(d["deadline"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FactoryError(f"malformed vote proposal: {exc}") from exc


@dataclass
class Ballot:
    """The votes seen for one proposal: voter -> (yes, signed time)."""

    proposal: VoteProposal
    votes: dict[str, tuple[bool, float]] = field(default_factory=dict)
    override: tuple[str, bool] | None = None  # (operator, pass?)

    def cast(self, voter: str, yes: bool, at: float) -> bool:
        """Count ``voter``'s first vote; returns False if it is a repeat or after the deadline."""
        if voter in self.votes or at > self.proposal.deadline:
            return False
        self.votes[voter] = (bool(yes), at)
        return True


def tally(ballot: Ballot, voters: list[str], now: float) -> str:
    """``passed``, ``failed`` or ``open``; an override decides regardless of the votes."""
    if ballot.override is not None:
        return "passed" if ballot.override[1] else "failed"
    n = len(voters)
    yes = sum(1 for v in voters if ballot.votes.get(v, (False, 0.0))[0])
    undecided = sum(1 for v in voters if v not in ballot.votes)
    if 2 * yes > n:
        return "passed"
    if 2 * (yes + undecided) <= n or now > ballot.proposal.deadline:
        return "failed"
    return "open"


@dataclass(frozen=True)
class FactoryState:
    """What the smart contracts change; identical on every node that executed the same proposals."""

    weights: Weights = field(default_factory=Weights)
    members: tuple[tuple[str, str], ...] = ()  # (id, role), sorted
    reassign: tuple[tuple[str, str], ...] = ()  # (product, node), sorted
    executed: tuple[str, ...] = ()

    def digest(self) -> str:
        return hashlib.sha256(canonical({
            "weights": [self.weights.cost, self.weights.deadline, self.weights.distance],
            "members": self.members, "reassign": self.reassign, "executed": self.executed})).hexdigest()


def execute(state: FactoryState, p: VoteProposal) -> FactoryState:
    """The smart contract: apply a passed proposal (a proposal is executed at most once)."""
    if p.id in state.executed:
        return state
    done = (*state.executed, p.id)
    if p.kind == "set-weights":
        return replace(state, weights=Weights.from_dict(p.args["weights"]), executed=done)
    if p.kind == "reassign":
        pairs = dict(state.reassign)
        pairs[str(p.args["product"])] = str(p.args["node"])
        return replace(state, reassign=tuple(sorted(pairs.items())), executed=done)
    members = dict(state.members)
    if p.kind == "admit":
        m = Member.from_dict(p.args["member"])
        members[m.id] = m.role
    else:
        members.pop(str(p.args["id"]), None)
    return replace(state, members=tuple(sorted(members.items())), executed=done)
