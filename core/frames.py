"""Depth frames on disk: ``gluecell.frame/1`` deterministic npz (one camera, one shot)."""

from __future__ import annotations

import os

import numpy as np

from .arrays import load_npz, npz_bytes
from .errors import FormatError, ValidationError
from .fileio import atomic_write_bytes, check_version
from .types import CameraIntrinsics, DepthFrame

__all__ = ["FRAME_FORMAT", "save_frame", "load_frame", "frame_to_arrays", "frame_from_arrays"]

FRAME_FORMAT = "gluecell.frame/1"


def frame_to_arrays(frame: DepthFrame) -> dict[str, np.ndarray]:
    """Array dict of ``frame`` (the npz members)."""
    k = frame.intrinsics
    out = {
        "format": np.array(FRAME_FORMAT),
        "depth": frame.depth,
        "depth_scale": np.array(frame.depth_scale, dtype=np.float64),
        "intrinsics": np.array([k.width, k.height, k.fx, k.fy, k.cx, k.cy], dtype=np.float64),
        "T_base_cam": frame.T_base_cam,
        "stamp": np.array(frame.stamp, dtype=np.float64),
        "serial": np.array(frame.serial),
    }
    if frame.color is not None:
        out["color"] = frame.color
    return out


def frame_from_arrays(a: dict[str, np.ndarray], *, what: str = "frame") -> DepthFrame:
    """Inverse of :func:`frame_to_arrays`, validating everything."""
    check_version(str(a.get("format", "")), FRAME_FORMAT, what=what)
    try:
        w, h, fx, fy, cx, cy = (float(v) for v in a["intrinsics"])
        return DepthFrame(
            depth=a["depth"],
            depth_scale=float(a["depth_scale"]),
            intrinsics=CameraIntrinsics(int(w), int(h), fx, fy, cx, cy),
            T_base_cam=a["T_base_cam"],
            color=a.get("color"),
            stamp=float(a.get("stamp", 0.0)),
            serial=str(a.get("serial", "")),
        )
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            raise FormatError(f"{what}: {exc}") from exc
        raise FormatError(f"{what}: malformed frame ({exc!r})") from exc


def save_frame(path: str | os.PathLike[str], frame: DepthFrame) -> None:
    """Write ``frame`` atomically and deterministically."""
    atomic_write_bytes(path, npz_bytes(frame_to_arrays(frame)))


def load_frame(path: str | os.PathLike[str]) -> DepthFrame:
    """Read a frame file."""
    return frame_from_arrays(load_npz(path, required=("format", "depth")), what=str(path))
