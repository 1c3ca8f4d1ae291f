"""Record synthetic depth frames as a RealSense recording, so real playback code can replay them.

The frames are pushed through a ``pyrealsense2`` software device into ``rs.recorder``. pyrealsense2
2.59 records only to the rosbag2 ``.db3`` format (it refuses other extensions); the result plays
back through the ordinary path::

    cfg = rs.config(); cfg.enable_device_from_file(str(path), repeat_playback=False)
    pipe = rs.pipeline(); pipe.start(cfg); ok, frameset = pipe.try_wait_for_frames(1000)

The recorder stamps every message with the wall-clock time it arrived and playback replays that
timing, so frames are pushed ``pace_s`` apart (default one frame period): pushed back to back, they
would reach a pipeline at once and its one-frame queue would keep only the last.
Depth (z16) and colour (rgb8) are two streams of one "Stereo Module" sensor, as on a D405 (its
colour comes from the depth module); in our trials (before pacing was added) two separate software
sensors lost frame sets in pipeline playback more often than one.
Camera poses (``T_base_cam``) have no place in the recording; keep them in gluecell.frame/1 files.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gluecell.core.errors import ValidationError
from gluecell.core.types import CameraIntrinsics, DepthFrame

__all__ = ["RECORDING_SUFFIX", "record_frames"]

#: The only extension ``rs.recorder`` of pyrealsense2 2.59 accepts.
RECORDING_SUFFIX = ".db3"


def _check_frames(frames: Sequence[DepthFrame]) -> tuple[CameraIntrinsics, float, bool]:
    """Common intrinsics, depth scale and colour presence of ``frames`` (one stream must fit all)."""
    if not frames:
        raise ValidationError("record_frames: at least one frame is needed")
    k, scale, has_color = frames[0].intrinsics, frames[0].depth_scale, frames[0].color is not None
    for i, f in enumerate(frames):
        if not isinstance(f, DepthFrame):
            raise ValidationError(f"record_frames: frame {i} is a {type(f).__name__}, not a DepthFrame")
        if f.intrinsics != k or f.depth_scale != scale or (f.color is not None) != has_color:
            raise ValidationError(
                f"record_frames: frame {i} differs from frame 0 in intrinsics, depth scale or colour; "
                "one recording holds one depth stream (record each camera separately)"
            )
    return k, scale, has_color


def _rs_intrinsics(rs: object, k: CameraIntrinsics) -> object:
    intr = rs.intrinsics()  # type: ignore[attr-defined]
    intr.width, intr.height = k.width, k.height
    intr.fx, intr.fy, intr.ppx, intr.ppy = k.fx, k.fy, k.cx, k.cy
    intr.model = rs.distortion.brown_conrady  # type: ignore[attr-defined]
    intr.coeffs = [0.0] * 5
    return intr


def _add_stream(rs: object, sensor: object, kind: str, k: CameraIntrinsics, fps: int) -> object:
    vs = rs.video_stream()  # type: ignore[attr-defined]
    depth = kind == "depth"
    vs.type = rs.stream.depth if depth else rs.stream.color  # type: ignore[attr-defined]
    vs.index, vs.uid = 0, 0 if depth else 1
    vs.width, vs.height, vs.fps = k.width, k.height, fps
    vs.bpp = 2 if depth else 3
    vs.fmt = rs.format.z16 if depth else rs.format.rgb8  # type: ignore[attr-defined]
    vs.intrinsics = _rs_intrinsics(rs, k)
    return sensor.add_video_stream(vs).as_video_stream_profile()  # type: ignore[attr-defined]


def _push(rs: object, sensor: object, profile: object, pixels: np.ndarray, ts_ms: float, number: int) -> None:
    f = rs.software_video_frame()  # type: ignore[attr-defined]
    f.pixels = pixels
    f.bpp = pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    f.stride = f.bpp * pixels.shape[1]
    f.timestamp = ts_ms
    f.domain = rs.timestamp_domain.hardware_clock  # type: ignore[attr-defined]
    f.frame_number = number
    f.profile = profile
    sensor.on_video_frame(f)  # type: ignore[attr-defined]


def _timestamps_ms(frames: Sequence[DepthFrame], fps: int) -> list[float]:
    """Frame stamps in ms, made strictly increasing by at least one frame period."""
    out: list[float] = []
    for f in frames:
        t = 1000.0 * float(f.stamp)
        out.append(t if not out else max(t, out[-1] + 1000.0 / fps))
    return out


def record_frames(
    frames: Sequence[DepthFrame],
    path: str | os.PathLike[str],
    *,
    fps: int = 30,
    device_name: str = "Intel RealSense D405 (virtual)",
    baseline_m: float | None = None,
    pace_s: float | None = None,
) -> Path:
    """Record ``frames`` (one camera) as a RealSense rosbag2 recording.

    Args:
        frames: frames of one camera: same intrinsics, depth scale and colour presence.
        path: output file; must end with ``.db3``. Written to a temporary name, then renamed.
        fps: nominal stream rate written into the stream profiles.
        device_name: ``camera_info.name`` of the recorded device.
        baseline_m: stereo baseline to record as the ``stereo_baseline`` option (mm in the file).
        pace_s: wall-clock time between pushed frames (default ``1 / fps``). The recorder stamps
            each message with its arrival time and playback replays that timing, so frames pushed
            back to back would reach a pipeline at once and all but the last would be dropped.

    Returns:
        the path written.
    """
    import pyrealsense2 as rs

    out = Path(path)
    if out.suffix != RECORDING_SUFFIX:
        raise ValidationError(f"record_frames: {out} must end with {RECORDING_SUFFIX} (pyrealsense2 records rosbag2)")
    k, scale, has_color = _check_frames(frames)
    pace_s = 1.0 / fps if pace_s is None else float(pace_s)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{RECORDING_SUFFIX}")
    tmp.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    dev = rs.software_device()
    dev.register_info(rs.camera_info.name, device_name)
    dev.register_info(rs.camera_info.serial_number, frames[0].serial or "sim-0")
    sensor = dev.add_sensor("Stereo Module")
    sensor.add_read_only_option(rs.option.depth_units, float(scale))
    if baseline_m is not None:
        sensor.add_read_only_option(rs.option.stereo_baseline, float(baseline_m) * 1000.0)
    profiles = [_add_stream(rs, sensor, "depth", k, fps)]
    if has_color:
        profiles.append(_add_stream(rs, sensor, "color", k, fps))
    recorder = rs.recorder(str(tmp), dev, False)
    sensor.open(profiles)
    sensor.start(rs.frame_queue(2 * len(frames) + 2))
    keep = []  # pixel buffers must outlive the frames that point at them
    t_start = time.monotonic()
    stamps = _timestamps_ms(frames, fps)
    for i, (f, ts) in enumerate(zip(frames, stamps)):
        # the recorder stamps messages with their arrival time, and playback replays that timing
        time.sleep(max(0.0, t_start + pace_s * i - time.monotonic()))
        keep.append(np.ascontiguousarray(f.depth))
        _push(rs, sensor, profiles[0], keep[-1], ts, i)
        if has_color:
            keep.append(np.ascontiguousarray(f.color))
            _push(rs, sensor, profiles[1], keep[-1], ts, i)
    sensor.stop()
    sensor.close()
    recorder.pause()
    del recorder, sensor, dev  # the writer closes the file when the last reference goes
    gc.collect()
    os.replace(tmp, out)
    return out
