"""Contract-net auctions: calls for proposals, proposals, refusals and the weighted index (WI).

The papers' WI formula did not survive, so it is defined here (and in the README):

    WI = w_c * cost / cost_ref  +  w_d * (finish - issued) / (deadline - issued)  +  w_s * distance / distance_ref

Each term is normalised by a scale the call itself carries (so a bid's WI does not depend on the other
bids, and every node and the auctioneer compute the same number); lower is better. ``finish`` after
``deadline`` is not a valid proposal (the node must refuse: not available in the time window). Ties go to
the lexically smallest node id, so every replica picks the same winner. Weights are non-negative and
normalised to sum 1; a passed vote can change them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import FactoryError

__all__ = ["CallForProposals", "Proposal", "Refusal", "Weights", "choose", "weighted_index"]


def _num(d: dict[str, Any], key: str, lo: float = 0.0) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < lo:
        raise FactoryError(f"{key} must be a finite number >= {lo}, got {v!r:.40}")
    return float(v)


@dataclass(frozen=True)
class Weights:
    """WI weights of cost, deadline (finish time) and distance; normalised to sum 1."""

    cost: float = 0.5
    deadline: float = 0.3
    distance: float = 0.2

    def __post_init__(self) -> None:
        vals = [self.cost, self.deadline, self.distance]
        if any(not math.isfinite(v) or v < 0 for v in vals) or sum(vals) <= 0:
            raise FactoryError(f"WI weights must be finite, >= 0 and not all 0: {vals}")
        s = sum(vals)
        object.__setattr__(self, "cost", self.cost / s)
        object.__setattr__(self, "deadline", self.deadline / s)
        object.__setattr__(self, "distance", self.distance / s)

    @classmethod
    def from_dict(cls, d: Any) -> Weights:
        if not isinstance(d, dict) or set(d) != {"cost", "deadline", "distance"}:
            raise FactoryError(f"weights need exactly cost, deadline, distance: {d!r:.80}")
        return cls(_num(d, "cost"), _num(d, "deadline"), _num(d, "distance"))


@dataclass(frozen=True)
class CallForProposals:
    """What a smart product asks for: one process of one product, by a deadline (POSIX seconds)."""

    product: str
    step: int
    process: str
    issued: float
    deadline: float
    reply_by: float
    requirements: dict[str, Any] = field(default_factory=dict)
    location: tuple[float, float] = (0.0, 0.0)
    cost_ref: float = 100.0
    distance_ref: float = 50.0
    weights: Weights = field(default_factory=Weights)

    def to_content(self) -> dict[str, Any]:
        d = asdict(self)
        d["location"] = list(self.location)
        return d

    @classmethod
    def from_content(cls, d: dict[str, Any]) -> CallForProposals:
        try:
            loc = d["location"]
            if not (isinstance(loc, list) and len(loc) == 2):
                raise FactoryError("location must be [x, y] in metres")
            cfp = cls(str(d["product"]), int(d["step"]), str(d["process"]), _num(d, "issued"), _num(d, "deadline"),
                      _num(d, "reply_by"), dict(d["requirements"]), (_num({"x": loc[0]}, "x", -1e6),
                                                                    _num({"y": loc[1]}, "y", -1e6)),
                      _num(d, "cost_ref", 1e-9), _num(d, "distance_ref", 1e-9), Weights.from_dict(d["weights"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FactoryError(f"malformed call for proposals: {exc}") from exc
        if cfp.deadline <= cfp.issued:
            raise FactoryError("call for proposals: deadline must be after issue time")
        return cfp


@dataclass(frozen=True)
class Proposal:
    """A bid: cost (currency units), finish time (POSIX s), distance (m) and the bidder's own WI."""

    cost: float
    finish: float
    distance: float
    wi: float = float("nan")

    def to_content(self) -> dict[str, Any]:
        return {"cost": self.cost, "finish": self.finish, "distance": self.distance, "wi": self.wi}

    @classmethod
    def from_content(cls, d: dict[str, Any]) -> Proposal:
        return cls(_num(d, "cost"), _num(d, "finish"), _num(d, "distance"), _num(d, "wi", -1e9))


@dataclass(frozen=True)
class Refusal:
    """A refusal with its reason (busy in the window, wrong equipment, size out of range, ...)."""

    reason: str


def weighted_index(cfp: CallForProposals, p: Proposal) -> float:
    """WI of a proposal against its call (lower is better); ``inf`` when it misses the deadline."""
    if p.finish > cfp.deadline:
        return math.inf
    w = cfp.weights
    return (w.cost * p.cost / cfp.cost_ref
            + w.deadline * max(p.finish - cfp.issued, 0.0) / (cfp.deadline - cfp.issued)
            + w.distance * p.distance / cfp.distance_ref)


def choose(cfp: CallForProposals, bids: dict[str, Proposal]) -> tuple[str, float] | None:
    """The winning node and its WI (recomputed here, never trusted from the bid); None if no valid bid."""
    scored = sorted((weighted_index(cfp, p), node) for node, p in bids.items())
    scored = [(wi, node) for wi, node in scored if math.isfinite(wi)]
    return (scored[0][1], scored[0][0]) if scored else None
