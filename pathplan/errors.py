"""Errors of ``gluecell.pathplan``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["PathplanError"]


class PathplanError(GlueCellError):
    """Base of every error raised by ``gluecell.pathplan``."""
