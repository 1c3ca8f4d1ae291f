"""Errors of ``gluecell.quality``, rooted at :class:`gluecell.core.errors.GlueCellError`."""

from gluecell.core.errors import FormatError, GlueCellError, ValidationError, VersionError

__all__ = ["QualityError", "InspectionInputError", "ModelError", "ModelVersionError", "RegistryError",
           "TrainingError"]  # fmt: skip


class QualityError(GlueCellError):
    """Base of every error raised by ``gluecell.quality``."""


class InspectionInputError(QualityError, ValidationError):
    """An image, depth map, calibration or plan given to the inspector is unusable (``field`` says which)."""


class ModelError(QualityError, FormatError):
    """A model file is missing, corrupt or not a QA model."""


class ModelVersionError(ModelError, VersionError):
    """A model was written by another model format / code version, or expects another dataset format."""


class RegistryError(QualityError):
    """A registry operation is impossible (unknown model or alias, nothing to roll back to)."""


class TrainingError(QualityError):
    """Training cannot start or continue (empty dataset, bad config, diverged)."""
