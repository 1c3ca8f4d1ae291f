"""Live Intel RealSense D4xx cameras through ``pyrealsense2`` (the only module family that imports it).

:class:`RsPipelineSource` holds what live cameras and recordings share: the pipeline, colour
alignment to the depth image (``rs.align``), the post-processing filter chain and the conversion
to :class:`~gluecell.core.types.DepthFrame` with the stream's own intrinsics and depth scale.
:class:`RealSenseSource` adds device discovery and serial-number selection.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import ConfigError
from gluecell.core.types import CameraIntrinsics, DepthFrame
from gluecell.core.validate import as_pose

from ..errors import CameraError, CameraNotFoundError, FrameTimeoutError
from .base import DEFAULT_TIMEOUT_S, CameraBase, load_camera_pose
from .filters import FilterChain, FilterConfig, build_filters

__all__ = ["RealSenseConfig", "RealSenseSource", "RsPipelineSource", "list_devices", "import_rs"]

log = logging.getLogger(__name__)


def import_rs() -> Any:
    """Import ``pyrealsense2`` or raise a :class:`CameraError` that says how to install it."""
    try:
        import pyrealsense2 as rs
    except ImportError as exc:  # pragma: no cover - installed with gluecell
        raise CameraError("pyrealsense2 is not installed: pip install pyrealsense2") from exc
    return rs


@dataclass(frozen=True)
class RealSenseConfig:
    """Stream settings of one live camera.

    Attributes:
        serial: serial number; "" takes the only connected camera.
        width / height / fps: depth and colour stream mode. 640x480 @ 30 fps is offered by every
            D4xx model (D405, D415, D435) for both streams.
        color: also stream RGB colour (aligned to depth).
        warmup_frames: frames dropped after start while auto exposure settles (0.5 s at 30 fps).
        filters: post-processing filter settings.
    """

    serial: str = ""
    width: int = 640
    height: int = 480
    fps: int = 30
    color: bool = True
    warmup_frames: int = 15
    filters: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fps <= 0 or self.warmup_frames < 0:
            raise ConfigError(f"realsense: bad stream mode {self.width}x{self.height}@{self.fps}, warmup >= 0")


def list_devices() -> list[dict[str, str]]:
    """Connected RealSense devices: ``[{"serial", "name", "firmware", "usb"}, ...]``."""
    rs = import_rs()
    out = []
    for dev in rs.context().query_devices():
        info = {}
        for key, ci in (("serial", "serial_number"), ("name", "name"), ("firmware", "firmware_version")):
            info[key] = dev.get_info(getattr(rs.camera_info, ci)) if dev.supports(getattr(rs.camera_info, ci)) else ""
        usb = rs.camera_info.usb_type_descriptor
        info["usb"] = dev.get_info(usb) if dev.supports(usb) else ""
        out.append(info)
    return out


def _resample_color(color: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an aligned colour image to the (decimated) depth size."""
    h, w = shape
    rows = np.minimum((np.arange(h) * color.shape[0]) // h, color.shape[0] - 1)
    cols = np.minimum((np.arange(w) * color.shape[1]) // w, color.shape[1] - 1)
    return color[rows[:, None], cols[None, :]]


class RsPipelineSource(CameraBase):
    """Shared pipeline logic of live and recorded RealSense sources (not used directly)."""

    def __init__(
        self,
        filters: FilterConfig | None = None,
        *,
        T_base_cam: np.ndarray | None = None,
        calibration: str | Path | None = None,
        align: bool = True,
    ) -> None:
        self.filter_config = filters or FilterConfig()
        self._pose_given = None if T_base_cam is None else as_pose("T_base_cam", T_base_cam)
        self._calibration = calibration
        self._align_enabled = align
        self._pipeline: Any = None
        self._align: Any = None
        self._chain: FilterChain | None = None
        self._depth_scale = 0.0
        self._serial = ""
        self.T_base_cam: np.ndarray = np.eye(4)

    @property
    def serial(self) -> str:
        """Serial number of the device (or of the recording's device)."""
        return self._serial

    @property
    def filter_names(self) -> list[str]:
        """SDK filters run on every frame, in order (empty before connect)."""
        return self._chain.names if self._chain else []

    def _after_start(self, profile: Any) -> None:
        """Read device facts, build alignment and filters, resolve the camera pose."""
        try:
            self._read_device(profile)
        except BaseException:
            self.disconnect()
            raise
        self._connected = True

    def _read_device(self, profile: Any) -> None:
        rs = import_rs()
        dev = profile.get_device()
        self._serial = dev.get_info(rs.camera_info.serial_number) if dev.supports(rs.camera_info.serial_number) else ""
        self._depth_scale = float(dev.first_depth_sensor().get_depth_scale())
        has_color = any(s.stream_type() == rs.stream.color for s in profile.get_streams())
        self._align = rs.align(rs.stream.depth) if self._align_enabled and has_color else None
        self._chain = build_filters(self.filter_config)
        if self._pose_given is not None:
            self.T_base_cam = self._pose_given
        else:
            self.T_base_cam = load_camera_pose(self._calibration, self._serial)

    def disconnect(self) -> None:
        """Stop the pipeline; safe to call twice."""
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError as exc:  # already stopped or device gone
                log.debug("pipeline.stop: %s", exc)
        self._pipeline = None
        self._connected = False

    def _wait(self, timeout_s: float) -> Any:
        """Wait for a frameset; subclasses turn a miss into the right error."""
        ok, frames = self._pipeline.try_wait_for_frames(max(1, int(timeout_s * 1000)))
        if not ok:
            raise FrameTimeoutError(
                f"camera {self._serial or '?'}: no frame within {timeout_s:.2f} s (unplugged? USB bandwidth?)",
                stage="perception",
                serial=self._serial,
            )
        return frames

    def grab(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> DepthFrame:
        """Next frame: aligned, filtered, in the recorded/streamed intrinsics and depth scale."""
        self._require_connected()
        try:
            frames = self._wait(timeout_s)
            return self._convert(frames)
        except RuntimeError as exc:
            raise CameraError(f"camera {self._serial or '?'}: {exc}", stage="perception") from exc

    def _convert(self, frames: Any) -> DepthFrame:
        rs = import_rs()
        if self._align is not None:
            frames = self._align.process(frames)
        depth = frames.get_depth_frame()
        if not depth:
            raise CameraError(f"camera {self._serial or '?'}: frameset has no depth frame", stage="perception")
        if self._chain is not None:
            depth = self._chain.process(depth)
        vp = depth.get_profile().as_video_stream_profile()
        k = vp.get_intrinsics()
        arr = np.asanyarray(depth.get_data()).astype(np.uint16, copy=True)
        color = None
        cframe = frames.get_color_frame() if self._align is not None else None
        if cframe:
            fmt = cframe.get_profile().format()
            c = np.asanyarray(cframe.get_data())
            if fmt in (rs.format.rgb8, rs.format.bgr8) and c.ndim == 3:
                c = c if fmt == rs.format.rgb8 else c[..., ::-1]
                color = np.ascontiguousarray(_resample_color(c, arr.shape), dtype=np.uint8)
            else:
                log.debug("colour format %s is not converted", fmt)
        return DepthFrame(
            depth=arr,
            depth_scale=self._depth_scale,
            intrinsics=CameraIntrinsics(
                int(k.width), int(k.height), float(k.fx), float(k.fy), float(k.ppx), float(k.ppy)
            ),
            T_base_cam=self.T_base_cam,
            color=color,
            stamp=float(depth.get_timestamp()) / 1000.0,
            serial=self._serial,
        )


class RealSenseSource(RsPipelineSource):
    """A live D4xx camera, selected by serial number.

    Several cameras: make one source per serial (:func:`list_devices` tells which are connected).
    The pose comes from ``T_base_cam``, else from the ``calibration`` JSON file (by serial), else
    it is the identity with a warning.
    """

    def __init__(
        self,
        config: RealSenseConfig | None = None,
        *,
        T_base_cam: np.ndarray | None = None,
        calibration: str | Path | None = None,
    ) -> None:
        self.config = config or RealSenseConfig()
        super().__init__(self.config.filters, T_base_cam=T_base_cam, calibration=calibration)
        self._serial = self.config.serial

    def _pick_serial(self) -> str:
        found = list_devices()
        serials = [d["serial"] for d in found]
        listing = ", ".join(f"{d['name']} {d['serial']}" for d in found) or "none"
        want = self.config.serial
        if not found:
            raise CameraNotFoundError(
                "no RealSense camera connected (found: none); check the USB 3 cable and udev rules",
                stage="perception",
                found=[],
            )
        if want and want not in serials:
            raise CameraNotFoundError(
                f"RealSense {want} is not connected (found: {listing})", stage="perception", found=serials
            )
        if not want and len(serials) > 1:
            raise CameraNotFoundError(
                f"several RealSense cameras connected ({listing}); name one by serial",
                stage="perception",
                found=serials,
            )
        return want or serials[0]

    def connect(self) -> None:
        """Start depth (+ colour) streaming on the selected camera and let auto exposure settle."""
        if self._connected:
            return
        rs = import_rs()
        serial = self._pick_serial()
        c = self.config
        cfg = rs.config()
        cfg.enable_device(serial)
        cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        if c.color:
            cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            raise CameraError(
                f"RealSense {serial}: cannot start {c.width}x{c.height}@{c.fps} ({exc})", stage="perception"
            ) from exc
        self._pipeline = pipeline
        self._after_start(profile)
        deadline = time.monotonic() + DEFAULT_TIMEOUT_S + c.warmup_frames / c.fps
        for _ in range(c.warmup_frames):
            if time.monotonic() > deadline:
                break
            self._pipeline.try_wait_for_frames(int(DEFAULT_TIMEOUT_S * 1000))
