"""Configuration: frozen dataclasses loaded from ``cell.toml`` with strict keys.

Unknown keys are an error that names the key and the allowed ones; values are type
checked. Secrets and ports come from environment variables (``GLUECELL_<SECTION>_<KEY>``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["StationConfig", "CellConfig", "from_dict", "to_dict", "load_config", "read_toml"]

T = TypeVar("T")


@dataclass(frozen=True)
class StationConfig:
    """One part station in ``base_link`` (metres).

    ``centre`` is the nominal footprint centre of the part on the floor plane z = 0;
    ``half_extent`` is the workspace box half-size around it (z from ``z_min`` to ``z_max``).
    """

    centre: tuple[float, float] = (0.55, -0.20)
    half_extent: tuple[float, float] = (0.20, 0.12)
    z_min: float = 0.0
    z_max: float = 0.30
    #: Height of the fixture/tray surface the part rests on.
    support_z: float = 0.0


@dataclass(frozen=True)
class CellConfig:
    """Default cell layout of DESIGN.md ("Interfaces")."""

    upper: StationConfig = field(default_factory=lambda: StationConfig(centre=(0.55, -0.20), support_z=0.0))
    sole: StationConfig = field(default_factory=lambda: StationConfig(centre=(0.55, 0.20), support_z=0.0))
    #: Toe direction tolerance around +x (degrees) and placement tolerance (metres).
    max_yaw_deg: float = 15.0
    max_placement_m: float = 0.010


def _check_type(path: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}", key=path)
        return from_dict(tp, value, path=path)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}", key=path)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(f"{path}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}", key=path)
        return tuple(_check_type(f"{path}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            try:
                return _check_type(path, value, a)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {value!r} does not match {tp}", key=path)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {list(allowed)}", key=path)
        return value
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{path}: expected nothing", key=path)
        return None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}", key=path)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{path}: must be finite", key=path)
        return float(value)
    if tp in (int, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}", key=path)
        return value
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table", key=path)
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f" in [{path}]" if path else ""
        raise ConfigError(f"unknown key(s) {unknown}{where}; allowed: {names}", key=path, unknown=unknown)
    kwargs = {k: _check_type(f"{path}.{k}" if path else k, v, hints[k]) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}", key=path) from exc


def to_dict(obj: Any) -> Any:
    """Plain dict/list form of a (nested) dataclass, for saving next to results."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def read_toml(path: str | os.PathLike[str], *, tables: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Parse a TOML file; a missing file, bad TOML or (with ``tables``) an unknown table is a :class:`ConfigError`."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: config file not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
    if tables is not None:
        unknown = sorted(set(raw) - set(tables))
        if unknown:
            raise ConfigError(f"{p}: unknown table(s) {unknown}; allowed: {list(tables)}", unknown=unknown)
    return raw


def load_config(cls: type[T], path: str | os.PathLike[str] | None = None, *, section: str | None = None) -> T:
    """Load ``cls`` from a TOML file (or defaults when ``path`` is None).

    Args:
        section: top-level table to read; None reads the whole file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(path)
        data = raw.get(section, {}) if section else raw
    return from_dict(cls, data, path=section or "")
