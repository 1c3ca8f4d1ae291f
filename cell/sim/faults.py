"""Faults the simulated cell can be told to have: from configuration (``[[fault]]`` tables) or its service.

| kind | effect | how it comes back |
|---|---|---|
| ``robot_error`` | protective stop: motion stops, gun closes, the goal aborts (PATH_TOLERANCE_VIOLATED) | unlock |
| ``estop`` | e-stop pressed: as above, ``e_stopped`` | the button released: the fault service with ``clear`` |
| ``link_drop`` | every websocket connection is cut (no close handshake); new ones refused ``value`` s | by itself |
| ``link_stall`` | sockets open, nothing goes through for ``value`` s (default 2): only a heartbeat sees it | itself |
| ``camera_timeout`` | the pair's camera frames never appear | the next pair |
| ``clogged_nozzle`` | the gun delivers ``value`` (default 0.2) of its flow | the fault service with ``clear`` |
| ``part_off_station`` | the pair lands ``value`` m (default 15 mm, in x) off its fixtures; seat sensor off | next |

("unlock": the dashboard's ``/dashboard_client/unlock_protective_stop``.)

A fault with ``item`` (an item id, or the 0-based arrival index as an int) waits for that pair: ``during``
"upper" / "sole" fires when the robot has done ``at_fraction`` of a goal over that station while the pair
is there; "arrive" when the pair reaches its station (scan station for ``camera_timeout``, spray station
otherwise). Without ``item`` it fires at once (``camera_timeout`` / ``part_off_station``: the next pair).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from typing import Any

from gluecell.core.errors import ConfigError

__all__ = ["FAULT_KINDS", "FaultSpec", "load_faults", "parse_fault"]

FAULT_KINDS = ("robot_error", "estop", "link_drop", "link_stall", "camera_timeout", "clogged_nozzle",
               "part_off_station")
_DURING = ("arrive", "upper", "sole", "any")
_DEFAULT_VALUE = {"clogged_nozzle": 0.2, "part_off_station": 0.015, "link_drop": 0.0, "link_stall": 2.0}


@dataclass(frozen=True)
class FaultSpec:
    """One fault (see the module table). ``value``: flow fraction, offset in metres, or refusal seconds."""

    kind: str
    item: str | int | None = None
    during: str = "any"
    at_fraction: float = 0.5
    value: float = 0.0

    def matches_item(self, item_id: str | None, index: int | None) -> bool:
        """True when this fault waits for this pair (or for none)."""
        if self.item is None:
            return True
        return self.item == item_id if isinstance(self.item, str) else self.item == index


def parse_fault(data: dict[str, Any]) -> FaultSpec:
    """A :class:`FaultSpec` from a table or service args (strict: unknown keys and bad values are refused).

    Raises:
        ConfigError: naming the key and the allowed values.
    """
    allowed = {"kind", "item", "during", "at_fraction", "value", "clear"}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"fault: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}", key="fault")
    kind = data.get("kind")
    if kind not in FAULT_KINDS:
        raise ConfigError(f"fault.kind: {kind!r} is not one of {list(FAULT_KINDS)}", key="fault.kind")
    item = data.get("item")
    if item is not None and not (isinstance(item, int) and not isinstance(item, bool) and item >= 0) and not (
            isinstance(item, str) and 0 < len(item) <= 128):  # fmt: skip
        raise ConfigError("fault.item: an item id or a 0-based arrival index", key="fault.item")
    if item == "":
        item = None
    during = data.get("during", "arrive" if kind in ("camera_timeout", "part_off_station") else "any")
    if during not in _DURING:
        raise ConfigError(f"fault.during: {during!r} is not one of {list(_DURING)}", key="fault.during")
    frac = data.get("at_fraction", 0.5)
    value = data.get("value", _DEFAULT_VALUE.get(kind, 0.0))
    for key, v, lo, hi in (("at_fraction", frac, 0.0, 1.0), ("value", value, 0.0, 60.0)):
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(f"fault.{key}: a number in [{lo}, {hi}]", key=f"fault.{key}")
    return FaultSpec(kind, item, during, float(frac), float(value))


def load_faults(path: str | os.PathLike[str]) -> list[FaultSpec]:
    """The ``[[fault]]`` tables of a TOML file."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    extra = set(data) - {"fault"}
    if extra:
        raise ConfigError(f"{path}: unknown table(s) {sorted(extra)}; only [[fault]]", key="fault")
    return [parse_fault(d) for d in data.get("fault", [])]
