"""gluecell.perception: camera sources, depth to points, cleaning, the scan stage (see DESIGN.md).

Heavy libraries (pyrealsense2, open3d) are imported inside the functions that need them.
"""

from .clean import CleanConfig, CleanResult, clean_part
from .cloud import (
    DepthConfig,
    ViewCloud,
    deproject,
    frame_to_points,
    frame_to_surface,
    frames_to_points,
    merge_views,
    station_box_mask,
)
from .errors import PerceptionError
from .scan import ScanConfig, merge_frames, scan_part_frames, station_for

__all__ = [
    "CleanConfig",
    "CleanResult",
    "DepthConfig",
    "PerceptionError",
    "ScanConfig",
    "ViewCloud",
    "clean_part",
    "deproject",
    "frame_to_points",
    "frame_to_surface",
    "frames_to_points",
    "merge_frames",
    "merge_views",
    "scan_part_frames",
    "station_box_mask",
    "station_for",
]
