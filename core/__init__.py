"""Shared value types, errors and file formats of gluecell (imported as ``gluecell.core``)."""

from .errors import (
    ConfigError,
    DeviceError,
    DeviceTimeoutError,
    FormatError,
    GlueCellError,
    ValidationError,
    VersionError,
)
from .types import (
    PARTS,
    SIDES,
    AttachPrediction,
    CameraIntrinsics,
    Defect,
    DepthFrame,
    Inspection,
    InspectionView,
    PartScan,
    RobotProgram,
    SprayPath,
    WorkItem,
)

__all__ = [
    "PARTS",
    "SIDES",
    "AttachPrediction",
    "CameraIntrinsics",
    "ConfigError",
    "DepthFrame",
    "DeviceError",
    "DeviceTimeoutError",
    "FormatError",
    "GlueCellError",
    "Defect",
    "Inspection",
    "InspectionView",
    "PartScan",
    "RobotProgram",
    "SprayPath",
    "ValidationError",
    "VersionError",
    "WorkItem",
]
