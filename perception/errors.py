"""Errors of ``gluecell.perception``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["PerceptionError"]


class PerceptionError(GlueCellError):
    """Base of every error raised by ``gluecell.perception``."""
