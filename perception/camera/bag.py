"""Recorded RealSense streams (``.bag``, and rosbag2 ``.db3`` as written by ``rs.recorder``).

Playback goes through the same ``pyrealsense2`` pipeline as a live camera (alignment, filters,
conversion), so a recording exercises the real code path: frames carry the recorded intrinsics
and depth scale. Playback is not real-time (every recorded frame is delivered, none dropped) and
does not repeat: after the last frame :meth:`BagSource.grab` raises ``EndOfStreamError``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.types import DepthFrame

from ..errors import EndOfStreamError, FrameTimeoutError, RecordingError
from .filters import FilterConfig
from .realsense import RsPipelineSource, import_rs

__all__ = ["BagSource", "RECORDING_SUFFIXES", "record_frames"]

#: File types librealsense plays back (ROS1 bag; rosbag2 sqlite).
RECORDING_SUFFIXES = (".bag", ".db3")
#: Poll interval while waiting for playback frames, seconds (lets end-of-file be seen early).
_POLL_S = 0.05
#: After the reader stops, frames still in the pipeline get the rest of the timeout to come out,
#: but at least / at most this long (seconds): a loaded machine can hold a frame for a while.
_DRAIN_MIN_S = 0.5
_DRAIN_MAX_S = 1.5


class BagSource(RsPipelineSource):
    """Plays a recording as if it were a camera.

    Args:
        path: ``.bag`` or ``.db3`` file.
        filters: post-processing filters (the same chain as the live camera).
        T_base_cam: (4, 4) camera pose in ``base_link``; else ``calibration`` (JSON, by the
            recording's serial); else the identity with a warning.
        align: align colour to depth.
    """

    def __init__(
        self,
        path: str | Path,
        filters: FilterConfig | None = None,
        *,
        T_base_cam: np.ndarray | None = None,
        calibration: str | Path | None = None,
        align: bool = True,
    ) -> None:
        super().__init__(filters, T_base_cam=T_base_cam, calibration=calibration, align=align)
        self.path = Path(path)
        self._playback: Any = None

    def connect(self) -> None:
        """Open the recording; raises :class:`RecordingError` when it is missing, corrupt or truncated."""
        if self._connected:
            return
        rs = import_rs()
        p = self.path
        if not p.is_file():
            raise RecordingError(f"{p}: recording not found", stage="perception", path=str(p))
        if p.suffix.lower() not in RECORDING_SUFFIXES:
            raise RecordingError(f"{p}: not a RealSense recording (expected {', '.join(RECORDING_SUFFIXES)})")
        cfg = rs.config()
        pipeline = rs.pipeline()
        try:
            cfg.enable_device_from_file(str(p), repeat_playback=False)
            # non-real-time must be set before streaming starts, or the first frames can be dropped
            cfg.resolve(pipeline).get_device().as_playback().set_real_time(False)
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            raise RecordingError(
                f"{p}: cannot play the recording; it is corrupt or truncated ({exc})", stage="perception", path=str(p)
            ) from exc
        self._pipeline = pipeline
        try:
            self._playback = profile.get_device().as_playback()
            self._playback.set_real_time(False)
            streams = [s.stream_type() for s in profile.get_streams()]
            if rs.stream.depth not in streams:
                raise RecordingError(f"{p}: the recording has no depth stream (streams: {streams})")
        except BaseException:
            self.disconnect()
            raise
        self._after_start(profile)

    def _stopped(self) -> bool:
        rs = import_rs()
        return self._playback is None or self._playback.current_status() == rs.playback_status.stopped

    def _wait(self, timeout_s: float) -> Any:
        deadline = time.monotonic() + max(timeout_s, 0.001)
        while True:
            left = deadline - time.monotonic()
            ok, frames = self._pipeline.try_wait_for_frames(max(1, int(min(_POLL_S, max(left, 0)) * 1000)))
            if ok:
                return frames
            if self._stopped():
                # the reader can reach the end while frames are still in the pipeline: drain them first
                drain = min(max(deadline - time.monotonic(), _DRAIN_MIN_S), _DRAIN_MAX_S)
                ok, frames = self._pipeline.try_wait_for_frames(max(1, int(drain * 1000)))
                if ok:
                    return frames
                raise EndOfStreamError(f"{self.path}: end of recording", stage="perception", path=str(self.path))
            if time.monotonic() >= deadline:
                raise FrameTimeoutError(
                    f"{self.path}: no frame within {timeout_s:.2f} s", stage="perception", path=str(self.path)
                )

    def disconnect(self) -> None:
        """Stop playback; safe to call twice."""
        super().disconnect()
        self._playback = None


def record_frames(frames: Sequence[DepthFrame], path: str | Path, *, fps: int = 30) -> Path:
    """Write depth frames (one camera, same size) as a RealSense rosbag2 recording (``.db3``).

    The frames are pushed through a ``pyrealsense2`` software device into ``rs.recorder``, so the
    file is what librealsense itself writes and plays back: simulated scans can then be replayed
    through :class:`BagSource` and exercise the real SDK path (filters, alignment, intrinsics).
    Colour and camera poses are not recorded (poses come from calibration on playback).

    Args:
        frames: depth frames of one camera. path: output, must end in ``.db3``. fps: nominal rate.

    Returns:
        The path written (the recorder writes it directly; a failed recording is removed).
    """
    rs = import_rs()
    path = Path(path)
    if path.suffix != ".db3" or not frames:
        raise RecordingError(f"{path}: record_frames writes .db3 files from at least one frame")
    k, scale = frames[0].intrinsics, frames[0].depth_scale
    dev = rs.software_device()
    sensor = dev.add_sensor("Depth")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.ppx, intr.ppy, intr.fx, intr.fy = k.width, k.height, k.cx, k.cy, k.fx, k.fy
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height = rs.stream.depth, 0, 0, k.width, k.height
    vs.fps, vs.bpp, vs.fmt, vs.intrinsics = fps, 2, rs.format.z16, intr
    profile = sensor.add_video_stream(vs)
    sensor.add_read_only_option(rs.option.depth_units, float(scale))
    dev.register_info(rs.camera_info.serial_number, frames[0].serial or "gluecell-sim")
    dev.register_info(rs.camera_info.name, "gluecell software camera")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        recorder = rs.recorder(str(path), dev)
        queue = rs.frame_queue(len(frames) + 1)
        sensor.open(profile)
        sensor.start(queue)
        for i, f in enumerate(frames):
            if f.intrinsics != k or f.depth_scale != scale:
                raise RecordingError(f"{path}: frame {i} differs in intrinsics or depth scale from frame 0")
            sf = rs.software_video_frame()
            sf.pixels, sf.bpp, sf.stride = np.ascontiguousarray(f.depth), 2, 2 * k.width
            sf.timestamp, sf.domain, sf.frame_number = 1000.0 * i / fps, rs.timestamp_domain.hardware_clock, i
            sf.profile = profile.as_video_stream_profile()
            sensor.on_video_frame(sf)
        sensor.stop()
        sensor.close()
        del recorder  # flushes and closes the file
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
