"""gluecell.deformation: predict the attach of a sole onto a lasted upper and find the bite line (see README.md)."""

from .calibration import DepthCalibration, load_calibration
from .errors import (
    AttachPoseError,
    DeformationError,
    JunctionError,
    LowConfidenceError,
    NonFiniteScanError,
    NotAnUpperError,
    NotASoleError,
    ScanInputError,
    SizeMismatchError,
    SoleUpsideDownError,
    SolverError,
    TooFewPointsError,
)
from .material import MATERIALS, Material, UpperContact, get_material
from .predict import PredictConfig, predict_attach
from .taught import TaughtPair

__all__ = [
    "MATERIALS",
    "AttachPoseError",
    "DeformationError",
    "DepthCalibration",
    "JunctionError",
    "LowConfidenceError",
    "Material",
    "NonFiniteScanError",
    "NotASoleError",
    "NotAnUpperError",
    "PredictConfig",
    "ScanInputError",
    "SizeMismatchError",
    "SoleUpsideDownError",
    "SolverError",
    "TaughtPair",
    "TooFewPointsError",
    "UpperContact",
    "get_material",
    "load_calibration",
    "predict_attach",
]
