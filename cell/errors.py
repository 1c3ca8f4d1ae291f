"""Errors of ``gluecell.cell``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["CellError"]


class CellError(GlueCellError):
    """Base of every error raised by ``gluecell.cell``."""
