"""Errors of ``gluecell.deformation``, rooted at :class:`gluecell.core.errors.GlueCellError`.

Every bad-input case has its own class so that the cell can route the pair (rescan, swap the sole,
send to a human) without parsing messages. None of them ever comes with a bite line.
"""

from gluecell.core.errors import GlueCellError, ValidationError

__all__ = [
    "DeformationError",
    "ScanInputError",
    "NonFiniteScanError",
    "TooFewPointsError",
    "NotASoleError",
    "NotAnUpperError",
    "SoleUpsideDownError",
    "SizeMismatchError",
    "AttachPoseError",
    "LowConfidenceError",
    "SolverError",
    "JunctionError",
]


class DeformationError(GlueCellError):
    """Base of every error raised by ``gluecell.deformation``."""


class ScanInputError(DeformationError, ValidationError):
    """A scan given to the deformation stage cannot be used (see the subclasses)."""


class NonFiniteScanError(ScanInputError):
    """A scan holds NaN or inf coordinates or normals."""


class TooFewPointsError(ScanInputError):
    """A scan has too few points (or too few in some region) for a reliable prediction."""


class NotASoleError(ScanInputError):
    """The 'sole' scan does not have the shape of a cup sole (extents, cavity, rim)."""


class NotAnUpperError(ScanInputError):
    """The 'upper' scan does not have the shape of a lasted upper standing bottom up."""


class SoleUpsideDownError(ScanInputError):
    """The sole lies tread up on its tray: its footbed cavity cannot be seen."""


class SizeMismatchError(ScanInputError):
    """The sole is far too small or too large for the upper (wrong size or wrong pair)."""


class AttachPoseError(DeformationError):
    """The sole's outline could not be aligned to the upper's bottom outline."""


class LowConfidenceError(DeformationError):
    """The prediction exists but its uncertainty is over the limit; the pair goes to a human.

    ``partial`` holds the :class:`~gluecell.core.types.AttachPrediction` for display only.
    """


class SolverError(DeformationError):
    """The attach solver failed (singular system, no contact found)."""


class JunctionError(DeformationError):
    """The sole/upper junction of an attached pair could not be found all round."""


class RegistrationError(DeformationError):
    """The free sole's scan could not be registered onto the attached pair's scan (no overlap, no fit)."""


class MeasureError(DeformationError):
    """The attached pair's bite line or deformation could not be measured from its scan."""


__all__ += ["RegistrationError", "MeasureError"]
