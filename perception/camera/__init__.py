"""Camera sources: live RealSense, recorded ``.bag``/``.db3``, simulated frame files.

All of them satisfy :class:`Camera`; :func:`open_sources` builds them from a source string
(``sim:PATH``, ``bag:PATH[,PATH...]``, ``realsense[:SERIAL[,SERIAL...]]``). ``pyrealsense2`` is
imported only when a RealSense or bag source connects.
"""

from __future__ import annotations

from pathlib import Path

from gluecell.core.errors import ConfigError

from .bag import BagSource, record_frames
from .base import DEFAULT_TIMEOUT_S, Camera, CameraBase, grab_all, load_camera_pose
from .filters import FilterConfig
from .realsense import RealSenseConfig, RealSenseSource, list_devices
from .sim import SimSource, find_frame_files

__all__ = [
    "Camera",
    "CameraBase",
    "DEFAULT_TIMEOUT_S",
    "BagSource",
    "FilterConfig",
    "RealSenseConfig",
    "RealSenseSource",
    "SimSource",
    "find_frame_files",
    "grab_all",
    "list_devices",
    "load_camera_pose",
    "open_sources",
    "record_frames",
    "SOURCE_KINDS",
]

SOURCE_KINDS = ("sim", "bag", "realsense")


def open_sources(
    spec: str,
    *,
    part: str = "",
    filters: FilterConfig | None = None,
    calibration: str | Path | None = None,
) -> list[Camera]:
    """Unconnected sources for a source string.

    Args:
        spec: ``sim:PATH`` (folder of frame files, a dataset sample's ``inputs/<id>`` folder, or a
            glob), ``bag:PATH[,PATH...]`` or ``realsense[:SERIAL[,SERIAL...]]``.
        part: "upper"/"sole", picks ``<part>_cam*.npz`` in a sim folder.
        filters: post-processing filters for RealSense and bag sources.
        calibration: JSON file with camera poses (RealSense and bag sources).

    Raises:
        ConfigError: unknown kind or a missing path.
    """
    kind, _, arg = spec.partition(":")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"source {spec!r}: kind must be one of {', '.join(SOURCE_KINDS)}", key="source")
    if kind == "realsense":
        serials = [s for s in arg.split(",") if s] or [""]
        return [
            RealSenseSource(RealSenseConfig(serial=s, filters=filters or FilterConfig()), calibration=calibration)
            for s in serials
        ]
    if not arg:
        raise ConfigError(f"source {spec!r}: give a path, e.g. {kind}:PATH", key="source")
    if kind == "bag":
        return [BagSource(p, filters, calibration=calibration) for p in arg.split(",") if p]
    return [SimSource(arg, part)]
