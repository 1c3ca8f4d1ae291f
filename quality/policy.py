"""The verdict policy: pass, fail or uncertain (-> a human), from per-defect scores, with thresholds an engineer sets.

For each defect type, a score at or above ``fail[type]`` fails the part (it goes to the rework bin with the
defect's type, location and crop); a score at or above ``uncertain[type]`` (but below ``fail``) sends it to the
human; otherwise it passes. When the classical measurement disagrees strongly with the network (its score at
least ``cross_check`` while the network would pass), the part goes to the human as well. Thresholds are stored
with every model (chosen on its validation split by ``gluecell qa train``) and can be overridden from a TOML
file (``[policy]`` table with ``fail``, ``uncertain`` and ``cross_check``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from gluecell.core.errors import ConfigError
from gluecell.core.types import DEFECT_TYPES

__all__ = ["VerdictPolicy", "decide", "load_policy"]


def _default(v: float) -> dict[str, float]:
    return dict.fromkeys(DEFECT_TYPES, v)


@dataclass(frozen=True)
class VerdictPolicy:
    """Per-type thresholds on 0..1 scores; ``cross_check`` on the classical score (>1 switches it off)."""

    fail: dict[str, float] = field(default_factory=lambda: _default(0.5))
    uncertain: dict[str, float] = field(default_factory=lambda: _default(0.2))
    cross_check: float = 0.95

    def __post_init__(self) -> None:
        for name in ("fail", "uncertain"):
            d = getattr(self, name)
            if set(d) != set(DEFECT_TYPES):
                raise ConfigError(f"policy.{name}: needs exactly the keys {', '.join(DEFECT_TYPES)}", key=name)
            if any(not 0.0 <= float(v) <= 1.0 for v in d.values()):
                raise ConfigError(f"policy.{name}: thresholds must be within 0..1", key=name)
        if any(self.uncertain[k] > self.fail[k] for k in DEFECT_TYPES):
            raise ConfigError("policy: every 'uncertain' threshold must be <= its 'fail' threshold", key="uncertain")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"fail": dict(self.fail), "uncertain": dict(self.uncertain), "cross_check": self.cross_check}

    @classmethod
    def from_dict(cls, d: Any) -> VerdictPolicy:
        """Parse; unknown keys are an error."""
        if not isinstance(d, dict) or set(d) - {"fail", "uncertain", "cross_check"}:
            raise ConfigError("policy: expected a table with fail, uncertain, cross_check", key="policy")
        try:
            return cls(fail={k: float(v) for k, v in d.get("fail", _default(0.5)).items()},
                       uncertain={k: float(v) for k, v in d.get("uncertain", _default(0.2)).items()},
                       cross_check=float(d.get("cross_check", 0.95)))  # fmt: skip
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"policy: bad value ({exc})", key="policy") from exc


def decide(scores: dict[str, float], policy: VerdictPolicy,
           classical: dict[str, float] | None = None) -> tuple[str, list[str]]:  # fmt: skip
    """(verdict, defect types at or above their 'uncertain' threshold) for one part."""
    failing = [k for k in DEFECT_TYPES if scores.get(k, 0.0) >= policy.fail[k]]
    doubtful = [k for k in DEFECT_TYPES if policy.uncertain[k] <= scores.get(k, 0.0) < policy.fail[k]]
    if failing:
        return "fail", failing + doubtful
    if doubtful:
        return "uncertain", doubtful
    if classical and any(v >= policy.cross_check for v in classical.values()):
        return "uncertain", [k for k, v in classical.items() if v >= policy.cross_check]
    return "pass", []


def load_policy(path: str | os.PathLike[str]) -> VerdictPolicy:
    """A policy from the ``[policy]`` table of a TOML file."""
    from gluecell.core.config import read_toml

    raw = read_toml(path, tables=("policy",))
    return VerdictPolicy.from_dict(raw.get("policy", {}))
