"""Errors of ``gluecell.perception``, rooted at :class:`gluecell.core.errors.GlueCellError`.

Every error says what was wrong and what an operator can do about it; the scan errors carry
counts (``diagnostics``) so that a rejected scan can be understood without re-running it.
"""

from gluecell.core.errors import DeviceError, DeviceTimeoutError, FormatError, GlueCellError

__all__ = [
    "PerceptionError",
    "CameraError",
    "CameraNotFoundError",
    "FrameTimeoutError",
    "EndOfStreamError",
    "RecordingError",
    "ScanError",
    "EmptyDepthError",
    "PartNotFoundError",
    "PartCutError",
    "MultiplePartsError",
    "TooFewPointsError",
]


class PerceptionError(GlueCellError):
    """Base of every error raised by ``gluecell.perception``."""


class CameraError(PerceptionError, DeviceError):
    """A camera (live, recorded or simulated) failed or is not usable."""


class CameraNotFoundError(CameraError):
    """No camera, or not the requested serial number; ``diagnostics['found']`` lists what is connected."""


class FrameTimeoutError(CameraError, DeviceTimeoutError):
    """No frame arrived within the timeout (camera unplugged, cable, USB bandwidth)."""


class EndOfStreamError(CameraError):
    """A recording or a frame folder has no more frames."""


class RecordingError(CameraError, FormatError):
    """A ``.bag``/``.db3`` recording is missing, corrupt, truncated or holds no depth stream."""


class ScanError(PerceptionError):
    """The frames do not give a usable scan of one part (``stage='perception'``)."""


class EmptyDepthError(ScanError):
    """A depth image holds no valid pixel (all zero, NaN or out of range)."""


class PartNotFoundError(ScanError):
    """Nothing part-like is inside the station's workspace box (part missing, or camera looks elsewhere)."""


class PartCutError(ScanError):
    """The part touches the image border: part of it is outside the camera's view."""


class MultiplePartsError(ScanError):
    """Two or more part-sized objects are in the workspace box."""


class TooFewPointsError(ScanError):
    """After cleaning, too few points are left for the downstream stages."""
