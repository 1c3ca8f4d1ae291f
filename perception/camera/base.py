"""The one camera interface: live RealSense, recorded ``.bag``/``.db3`` and simulated sources share it.

A :class:`Camera` has a device lifecycle (``connect``/``disconnect``/``is_connected``, context
manager) and one blocking call, :meth:`Camera.grab`, that takes a timeout and raises a
:class:`~gluecell.perception.errors.FrameTimeoutError` (a ``TimeoutError``) instead of hanging.
Downstream code only ever sees :class:`~gluecell.core.types.DepthFrame` values.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import numpy as np

from gluecell.core.errors import FormatError, ValidationError
from gluecell.core.fileio import read_json
from gluecell.core.types import DepthFrame
from gluecell.core.validate import as_pose

from ..errors import CameraError

__all__ = ["Camera", "CameraBase", "grab_all", "load_camera_pose", "DEFAULT_TIMEOUT_S"]

log = logging.getLogger(__name__)

#: Default frame wait. A D4xx at 6-30 fps delivers a frame every 33-167 ms; 2 s covers the first
#: frame after start (auto exposure) without letting an unplugged camera stall the cell for long.
DEFAULT_TIMEOUT_S = 2.0


@runtime_checkable
class Camera(Protocol):
    """A source of depth frames in the robot's frame (``T_base_cam`` is filled in by the source)."""

    @property
    def serial(self) -> str:
        """Serial number (live), recording serial (bag) or simulated id."""
        ...

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        ...

    def connect(self) -> None:
        """Open the device or file; raises a :class:`~gluecell.perception.errors.CameraError` subclass."""
        ...

    def disconnect(self) -> None:
        """Release the device; safe to call twice."""
        ...

    def grab(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> DepthFrame:
        """Wait at most ``timeout_s`` seconds for the next frame.

        Raises:
            FrameTimeoutError: no frame within the timeout.
            EndOfStreamError: a recording or frame folder is exhausted.
        """
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class CameraBase:
    """Lifecycle helpers shared by the implementations (context manager, connected checks)."""

    _connected: bool = False

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._connected

    def connect(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def disconnect(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _require_connected(self) -> None:
        if not self._connected:
            raise CameraError(f"{type(self).__name__}: not connected; call connect() first", stage="perception")

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()


def grab_all(cameras: Sequence[Camera], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[DepthFrame]:
    """One frame from each camera, in order (several fixed cameras looking at one station)."""
    return [cam.grab(timeout_s) for cam in cameras]


def _pose_from_entry(entry: object, where: str) -> np.ndarray:
    if isinstance(entry, dict):
        entry = entry.get("T_base_cam")
    try:
        return as_pose(where, entry)
    except ValidationError as exc:
        raise FormatError(f"{where}: not a valid camera pose ({exc})") from exc


def load_camera_pose(path: str | Path | None, serial: str = "") -> np.ndarray:
    """Camera pose ``T_base_cam`` (4, 4) float64 (metres, ``base_link`` <- optical frame) from a JSON file.

    Accepted shapes (the calibration file of ``gluecell calibrate`` and hand-written files):
    ``{"T_base_cam": [[...] x4]}`` or ``{"cameras": {"<serial>": {"T_base_cam": ...}, ...}}``.
    With ``path=None`` the identity is returned with a warning: points then stay in the camera's
    optical frame, which is only right for inspecting a recording, never for spraying.

    Raises:
        FormatError: unreadable file, no entry for ``serial``, or a malformed pose.
    """
    if path is None:
        warnings.warn(
            f"camera {serial or '?'}: no calibration file given; using the identity pose "
            "(points stay in the camera frame, not base_link)",
            stacklevel=2,
        )
        return np.eye(4)
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a JSON object with 'T_base_cam' or 'cameras'")
    cams = data.get("cameras")
    if isinstance(cams, dict) and cams:
        if serial in cams:
            return _pose_from_entry(cams[serial], f"{path}: cameras[{serial}]")
        if len(cams) == 1 and not serial:
            return _pose_from_entry(next(iter(cams.values())), f"{path}: cameras")
        raise FormatError(f"{path}: no pose for camera {serial!r}; file has {sorted(cams)}")
    if "T_base_cam" in data:
        return _pose_from_entry(data, str(path))
    raise FormatError(f"{path}: no 'T_base_cam' or 'cameras' entry")
