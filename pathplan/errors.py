"""Errors of ``gluecell.pathplan``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import GlueCellError, ValidationError

__all__ = [
    "PathplanError",
    "StageError",
    "RegionError",
    "OrientationError",
    "CoverageError",
    "KinematicsError",
    "UnreachableError",
    "NonFiniteError",
]


class PathplanError(GlueCellError):
    """Base of every error raised by ``gluecell.pathplan``."""


class StageError(PathplanError):
    """A stage of a pipeline failed; ``stage`` names it as ``<index>:<name>``, ``__cause__`` is the original."""


class RegionError(PathplanError):
    """The bond region cannot be built safely (bad scan, bite line with gaps, too few points)."""


class OrientationError(RegionError):
    """The part is presented the wrong way up (the upper must lie bottom-up, the sole footbed-up)."""


class CoverageError(PathplanError):
    """No tuning of the path reaches the coverage goal without glue above the bite line."""


class KinematicsError(PathplanError):
    """Inverse kinematics or time parametrisation failed."""


class UnreachableError(KinematicsError):
    """A waypoint is outside the robot's reach, its joint limits, or too near a singularity."""


class NonFiniteError(PathplanError, ValidationError):
    """A value the safety of a plan depends on is NaN/inf (or missing); ``what`` names it. The pair stops."""
