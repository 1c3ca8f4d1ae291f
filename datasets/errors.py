"""Errors of ``gluecell.datasets``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError

__all__ = ["DatasetsError", "WorldParamError"]


class DatasetsError(GlueCellError):
    """Base of every error raised by ``gluecell.datasets``."""


class WorldParamError(DatasetsError, ValueError):
    """A parameter of the synthetic world is out of range or unknown (style, size, side, config).

    ``diagnostics`` carries ``key`` (the parameter) and ``value`` (what was given).
    """
