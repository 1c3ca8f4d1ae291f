"""Root of every error gluecell raises.

Each package adds its own subclasses in its ``errors.py``; all of them derive from
:class:`GlueCellError`, so a caller can catch one type and still read the diagnostics
(stage, item id, partial result) that tell an operator what to do.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GlueCellError",
    "ValidationError",
    "FormatError",
    "VersionError",
    "ConfigError",
    "DeviceError",
    "DeviceTimeoutError",
]


class GlueCellError(Exception):
    """Base error. ``diagnostics`` holds whatever helps to act on it."""

    def __init__(
        self,
        message: str,
        *,
        stage: str | None = None,
        item_id: str | None = None,
        partial: Any = None,
        **diagnostics: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.item_id = item_id
        self.partial = partial
        self.diagnostics = diagnostics

    def __str__(self) -> str:
        where = []
        if self.stage:
            where.append(f"stage={self.stage}")
        if self.item_id:
            where.append(f"item={self.item_id}")
        return f"{self.message} [{', '.join(where)}]" if where else self.message


class ValidationError(GlueCellError, ValueError):
    """A value has the wrong shape, dtype, range, or contains NaN/inf."""


class FormatError(GlueCellError, ValueError):
    """A file or message could not be parsed (corrupt, truncated, wrong schema)."""


class VersionError(FormatError):
    """A file was written by an incompatible format version."""


class ConfigError(GlueCellError, ValueError):
    """A configuration key is unknown or its value is outside the allowed set."""


class DeviceError(GlueCellError):
    """A device (camera, robot, bus) is missing or failed."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A blocking device call did not finish within its timeout."""
