"""Errors of ``gluecell.datasets``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["DatasetsError"]


class DatasetsError(GlueCellError):
    """Base of every error raised by ``gluecell.datasets``."""
