"""Errors of ``gluecell.deformation``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["DeformationError"]


class DeformationError(GlueCellError):
    """Base of every error raised by ``gluecell.deformation``."""
