"""The plan file, schema ``gluecell.plan/1`` (DESIGN.md, "Interfaces")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import FormatError, ValidationError
from .fileio import atomic_write_json, check_version, read_json
from .types import SprayPath
from .validate import as_points

__all__ = ["PLAN_FORMAT", "Plan", "read_plan", "write_plan", "plan_to_dict", "plan_from_dict"]

PLAN_FORMAT = "gluecell.plan/1"


@dataclass(frozen=True)
class Plan:
    """Bite line + spray paths for one pair, in ``base_link``, metres.

    Attributes:
        bite_line: (m, 3) float64 closed polyline on the upper (last point not repeated).
        paths: one :class:`SprayPath` per part.
        timing_ms: stage name -> milliseconds.
        extra: further keys, kept verbatim.
    """

    bite_line: np.ndarray
    paths: tuple[SprayPath, ...]
    timing_ms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bite_line", as_points("bite_line", self.bite_line, min_rows=3))
        for k, v in self.timing_ms.items():
            if not np.isfinite(v) or v < 0:
                raise ValidationError(f"timing_ms[{k}]: must be finite and >= 0")


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """Plain-JSON form of ``plan``."""
    out: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "frame": "base_link",
        "units": "m",
        "bite_line": np.round(plan.bite_line, 7).tolist(),
        "paths": [],
        "timing_ms": {k: round(float(v), 3) for k, v in plan.timing_ms.items()},
    }
    for p in plan.paths:
        wps = [
            {"t": round(float(t), 6), "xyz": np.round(x, 7).tolist(), "quat_xyzw": np.round(q, 7).tolist(),
             "spray": bool(s)}
            for t, x, q, s in zip(p.t, p.xyz, p.quat_xyzw, p.spray)
        ]  # fmt: skip
        out["paths"].append({"part": p.part, "waypoints": wps})
    for k, v in plan.extra.items():
        if k in out:
            raise ValidationError(f"plan extra key {k!r} would overwrite a schema key")
        out[k] = v
    return out


def plan_from_dict(d: Any, *, what: str = "plan") -> Plan:
    """Validate and parse the JSON form; raise :class:`FormatError` naming what is wrong."""
    if not isinstance(d, dict):
        raise FormatError(f"{what}: top level must be an object")
    check_version(d.get("format"), PLAN_FORMAT, what=what)
    if d.get("frame") != "base_link" or d.get("units") != "m":
        raise FormatError(f"{what}: frame must be 'base_link' and units 'm'")
    try:
        paths = []
        for p in d["paths"]:
            wps = p["waypoints"]
            paths.append(
                SprayPath(
                    part=p["part"],
                    t=[w["t"] for w in wps],
                    xyz=[w["xyz"] for w in wps],
                    quat_xyzw=[w["quat_xyzw"] for w in wps],
                    spray=[bool(w["spray"]) for w in wps],
                )
            )
        known = {"format", "frame", "units", "bite_line", "paths", "timing_ms"}
        return Plan(
            bite_line=d["bite_line"],
            paths=tuple(paths),
            timing_ms={str(k): float(v) for k, v in d.get("timing_ms", {}).items()},
            extra={k: v for k, v in d.items() if k not in known},
        )
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{what}: missing or malformed field ({exc!r})") from exc
    except ValidationError as exc:
        raise FormatError(f"{what}: {exc}") from exc


def write_plan(path: str | os.PathLike[str], plan: Plan) -> None:
    """Write ``plan`` atomically as JSON."""
    atomic_write_json(path, plan_to_dict(plan))


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and validate a plan file."""
    return plan_from_dict(read_json(path), what=str(path))
