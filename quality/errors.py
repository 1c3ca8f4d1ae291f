"""Errors of ``gluecell.quality``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["QualityError"]


class QualityError(GlueCellError):
    """Base of every error raised by ``gluecell.quality``."""
