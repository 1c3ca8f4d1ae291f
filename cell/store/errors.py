"""Errors of the cell's storage."""

from gluecell.cell.errors import CellError

__all__ = ["StoreError", "UnknownItemError", "SchemaVersionError"]


class StoreError(CellError):
    """The store refused a write or a read (bad value, unknown key, wrong state)."""


class UnknownItemError(StoreError, KeyError):
    """A work item, job or plan id that nobody ordered or stored."""

    def __str__(self) -> str:  # KeyError quotes its message; keep the plain one
        return StoreError.__str__(self)


class SchemaVersionError(StoreError):
    """The database was written by a newer gluecell (its schema version is unknown here)."""
