"""Errors of the factory protocol, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from __future__ import annotations

from gluecell.cell.errors import CellError

__all__ = [
    "AuthError",
    "BusError",
    "FactoryError",
    "LedgerError",
    "MessageRefused",
]


class FactoryError(CellError):
    """Base of every error of :mod:`gluecell.cell.factory`."""


class AuthError(FactoryError):
    """Authentication or authorisation failed (unknown key, wrong role, process not allowed)."""


class MessageRefused(FactoryError):
    """A message was refused; ``reason`` is one of forged, replayed, expired, malformed, unauthorised."""

    def __init__(self, reason: str, message: str, **kw: object) -> None:
        super().__init__(f"{reason}: {message}", stage="factory.message", **kw)
        self.reason = reason


class LedgerError(FactoryError):
    """A ledger is inconsistent; ``index`` names the first bad line (0-based), ``seq`` its record number."""

    def __init__(self, message: str, *, index: int | None = None, seq: int | None = None, **kw: object) -> None:
        super().__init__(message, stage="factory.ledger", **kw)
        self.index = index
        self.seq = seq


class BusError(FactoryError):
    """The message bus (MQTT broker or in-process hub) refused or lost a connection."""
