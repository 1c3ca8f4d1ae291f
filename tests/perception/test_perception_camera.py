"""Camera sources: the real D435 recording end to end, bad recordings, missing devices, timeouts, sim files."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from gluecell.core.errors import ConfigError, DeviceError, DeviceTimeoutError, FormatError
from gluecell.core.frames import save_frame
from gluecell.core.types import CameraIntrinsics, DepthFrame
from gluecell.perception.camera import (
    BagSource,
    Camera,
    FilterConfig,
    RealSenseConfig,
    RealSenseSource,
    SimSource,
    load_camera_pose,
    open_sources,
    record_frames,
)
from gluecell.perception.camera import realsense as rs_mod
from gluecell.perception.cloud import DepthConfig, frame_to_points, frame_to_surface
from gluecell.perception.errors import (
    CameraError,
    CameraNotFoundError,
    EndOfStreamError,
    FrameTimeoutError,
    RecordingError,
)

EXTERNAL = Path(__file__).resolve().parents[2] / "../shared/data/external"
BAG = EXTERNAL / "realsense" / "single_depth_color_640x480.bag"
needs_bag = pytest.mark.skipif(not BAG.is_file(), reason=f"real RealSense recording not found at {BAG}")

#: Recorded D435 depth intrinsics (the file's stream profile, as pyrealsense2 2.59 reports it).
BAG_FX, BAG_PPX, BAG_PPY = 390.431, 331.388, 242.187
#: Intrinsics agree to this many pixels.
INTR_TOL_PX = 0.01
#: The recording is an indoor scene with a median depth of about 1.5 m (README).
BAG_MEDIAN_DEPTH_M, BAG_MEDIAN_TOL_M = 1.5, 0.2
#: Raw pixels with valid depth in the recording (93 % of 640x480); a point cloud must keep most.
BAG_MIN_POINTS = 200_000
K = CameraIntrinsics(64, 48, 50.0, 50.0, 31.5, 23.5)


def _pose() -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = [0.5, -0.2, 0.6]
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    return T


def _frame(value: int, serial: str = "cam") -> DepthFrame:
    depth = np.full((K.height, K.width), value, dtype=np.uint16)
    depth[::7, ::5] = value + 100
    return DepthFrame(depth, 1e-4, K, _pose(), serial=serial)


# -- the real recording ---------------------------------------------------------------------------


@needs_bag
@pytest.mark.external
def test_real_bag_plays_end_to_end():
    loose = FilterConfig(max_depth_m=8.0)
    with BagSource(BAG, loose, T_base_cam=np.eye(4)) as src:
        assert isinstance(src, Camera)
        assert src.serial == "728612070259"
        assert src.filter_names == ["threshold", "depth_to_disparity", "spatial", "temporal", "disparity_to_depth"]
        frame = src.grab(timeout_s=5.0)
        with pytest.raises(EndOfStreamError):
            src.grab(timeout_s=5.0)
    k = frame.intrinsics
    assert (k.width, k.height) == (640, 480)
    assert abs(k.fx - BAG_FX) < INTR_TOL_PX and abs(k.fy - BAG_FX) < INTR_TOL_PX
    assert abs(k.cx - BAG_PPX) < INTR_TOL_PX and abs(k.cy - BAG_PPY) < INTR_TOL_PX
    assert frame.depth_scale == pytest.approx(0.001, rel=1e-6)
    assert frame.color is not None and frame.color.shape == (480, 640, 3)
    assert frame.color.std() > 5.0, "the aligned colour image should not be blank"
    cloud = frame_to_points(frame)
    assert len(cloud) > BAG_MIN_POINTS
    assert abs(np.median(cloud.points[:, 2]) - BAG_MEDIAN_DEPTH_M) < BAG_MEDIAN_TOL_M
    assert np.all(np.isfinite(cloud.points))
    # the scan stage's own path on real bytes: smoothed points with normals facing the camera
    surf = frame_to_surface(frame, DepthConfig(max_depth_m=8.0))
    assert len(surf) > BAG_MIN_POINTS // 8  # stride 2 keeps a quarter, minus edges and grazing pixels
    assert np.allclose(np.linalg.norm(surf.normals, axis=1), 1.0, atol=1e-6)
    assert np.all(np.einsum("ij,ij->i", surf.normals, -surf.points) > 0)  # identity pose: camera at 0


@needs_bag
@pytest.mark.external
def test_real_bag_filters_change_the_frame():
    # threshold at 1.2 m: every surviving pixel is nearer; decimation 2 halves size and focal length
    cfg = FilterConfig(decimation=2, max_depth_m=1.2, temporal=False)
    with BagSource(BAG, cfg, T_base_cam=np.eye(4)) as src:
        frame = src.grab(timeout_s=5.0)
    k = frame.intrinsics
    assert (k.width, k.height) == (320, 240)
    assert abs(k.fx - BAG_FX / 2) < 0.5
    d = frame.depth[frame.depth > 0].astype(float) * frame.depth_scale
    assert d.size > 1000 and d.max() <= 1.2 + 1e-3
    assert frame.color is not None and frame.color.shape == (240, 320, 3)


@needs_bag
@pytest.mark.external
def test_real_bag_pose_from_calibration_file(tmp_path):
    T = _pose()
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"cameras": {"728612070259": {"T_base_cam": T.tolist()}}}))
    with BagSource(BAG, FilterConfig(max_depth_m=8.0), calibration=calib) as src:
        frame = src.grab(timeout_s=5.0)
    assert np.allclose(frame.T_base_cam, T)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with BagSource(BAG, FilterConfig(max_depth_m=8.0)) as src:
            assert np.allclose(src.grab(timeout_s=5.0).T_base_cam, np.eye(4))
    assert any("identity" in str(w.message) for w in caught)


@needs_bag
@pytest.mark.external
def test_truncated_and_corrupt_recordings(tmp_path):
    raw = BAG.read_bytes()
    cases = {
        "half.bag": raw[: len(raw) // 2],
        "tail_cut.bag": raw[:-64],
        "header_only.bag": raw[:2000],
        "garbage.bag": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "empty.bag": b"",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(RecordingError) as ei:
            BagSource(p).connect()
        assert isinstance(ei.value, FormatError) and str(p) in str(ei.value)
    with pytest.raises(RecordingError, match="not found"):
        BagSource(tmp_path / "missing.bag").connect()
    renamed = tmp_path / "real.mp4"
    shutil.copy(BAG, renamed)
    with pytest.raises(RecordingError, match="not a RealSense recording"):
        BagSource(renamed).connect()


# -- recordings we write ourselves -------------------------------------------------------------------


def test_db3_roundtrip_keeps_depth_and_intrinsics(tmp_path):
    frames = [_frame(4000 + 10 * i, serial="SIM42") for i in range(3)]
    path = record_frames(frames, tmp_path / "sim.db3")
    off = FilterConfig(threshold=False, spatial=False, temporal=False)
    got = []
    with BagSource(path, off, T_base_cam=_pose()) as src:
        assert src.serial == "SIM42" and src.filter_names == []
        while True:
            try:
                got.append(src.grab(timeout_s=2.0))
            except EndOfStreamError:
                break
    assert len(got) == len(frames)
    for a, b in zip(got, frames):
        assert np.array_equal(a.depth, b.depth)
        assert a.intrinsics == b.intrinsics
        assert a.depth_scale == pytest.approx(b.depth_scale, rel=1e-6)
        assert a.color is None
    with pytest.raises(RecordingError):
        record_frames(frames, tmp_path / "sim.bag")


def test_recording_without_depth_is_refused(tmp_path):
    import pyrealsense2 as rs

    w, h = 32, 24
    dev = rs.software_device()
    sensor = dev.add_sensor("Color")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.ppx, intr.ppy, intr.fx, intr.fy = w, h, 16.0, 12.0, 30.0, 30.0
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp = rs.stream.color, 0, 0, w, h, 30, 3
    vs.fmt, vs.intrinsics = rs.format.rgb8, intr
    profile = sensor.add_video_stream(vs)
    dev.register_info(rs.camera_info.serial_number, "COLORONLY")
    path = tmp_path / "colour_only.db3"
    recorder = rs.recorder(str(path), dev)
    sensor.open(profile)
    sensor.start(rs.frame_queue(4))
    frame = rs.software_video_frame()
    frame.pixels, frame.bpp, frame.stride = np.zeros((h, w, 3), np.uint8), 3, 3 * w
    frame.timestamp, frame.domain, frame.frame_number = 0.0, rs.timestamp_domain.hardware_clock, 0
    frame.profile = profile.as_video_stream_profile()
    sensor.on_video_frame(frame)
    sensor.stop()
    sensor.close()
    del recorder
    src = BagSource(path)
    with pytest.raises(RecordingError, match="no depth stream"):
        src.connect()
    assert not src.is_connected


# -- live cameras ---------------------------------------------------------------------------------


def test_no_device_is_a_clear_device_error(monkeypatch):
    monkeypatch.setattr(rs_mod, "list_devices", lambda: [])
    with pytest.raises(CameraNotFoundError, match="found: none") as ei:
        RealSenseSource().connect()
    assert isinstance(ei.value, DeviceError) and ei.value.diagnostics["found"] == []
    fake = [{"serial": "111", "name": "Intel RealSense D405", "firmware": "", "usb": "3.2"}]
    monkeypatch.setattr(rs_mod, "list_devices", lambda: fake)
    with pytest.raises(CameraNotFoundError, match="D405 111"):
        RealSenseSource(RealSenseConfig(serial="222")).connect()


def test_unknown_serial_on_this_machine():
    # goes through pyrealsense2's real device query; no camera has this serial
    with pytest.raises(CameraNotFoundError, match=r"not connected|found: none"):
        RealSenseSource(RealSenseConfig(serial="000000000000")).connect()


class _DeadPipeline:
    """A pipeline whose camera was unplugged: no frame ever arrives."""

    def __init__(self) -> None:
        self.waits: list[int] = []

    def try_wait_for_frames(self, timeout_ms: int):
        self.waits.append(timeout_ms)
        return False, None

    def stop(self) -> None:
        pass


def test_unplugged_mid_stream_times_out():
    src = RealSenseSource(RealSenseConfig(serial="123"), T_base_cam=np.eye(4))
    src._pipeline, src._connected = _DeadPipeline(), True  # state after a successful connect()
    with pytest.raises(FrameTimeoutError) as ei:
        src.grab(timeout_s=0.25)
    assert isinstance(ei.value, DeviceTimeoutError) and isinstance(ei.value, TimeoutError)
    assert src._pipeline.waits == [250]
    src.disconnect()
    with pytest.raises(CameraError, match="not connected"):
        src.grab()


def test_filter_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="decimation"):
        FilterConfig(decimation=0)
    with pytest.raises(ConfigError, match="min_depth_m"):
        FilterConfig(min_depth_m=2.0, max_depth_m=1.0)
    assert FilterConfig(decimation=2, hole_filling=True).enabled() == [
        "decimation",
        "threshold",
        "spatial",
        "temporal",
        "hole_filling",
    ]


# -- simulated frames, source strings, poses -----------------------------------------------------


def test_sim_source_reads_a_sample_folder(tmp_path):
    for i in range(2):
        save_frame(tmp_path / f"upper_cam{i}.npz", _frame(3000 + i, serial=f"up{i}"))
    save_frame(tmp_path / "sole_cam0.npz", _frame(5000, serial="sole0"))
    with SimSource(tmp_path, part="upper") as src:
        assert isinstance(src, Camera) and len(src) == 2
        a, b = src.grab(), src.grab()
        with pytest.raises(EndOfStreamError):
            src.grab()
    assert (a.serial, b.serial) == ("up0", "up1") and a.depth[1, 1] == 3000
    with SimSource(tmp_path) as every:
        assert len(every) == 3
    with SimSource(str(tmp_path / "*cam0.npz"), loop=True) as looped:
        serials = [looped.grab().serial for _ in range(3)]
    assert serials == ["sole0", "up0", "sole0"]
    with pytest.raises(CameraError, match="no frame files"), SimSource(tmp_path / "nothing"):
        pass
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "upper_cam0.npz").write_bytes(b"not an npz")
    with SimSource(tmp_path / "bad") as broken, pytest.raises(FormatError):
        broken.grab()


def test_open_sources_parses_source_strings(tmp_path):
    assert [type(s).__name__ for s in open_sources(f"sim:{tmp_path}")] == ["SimSource"]
    bags = open_sources("bag:/a.bag,/b.db3")
    assert [type(s).__name__ for s in bags] == ["BagSource", "BagSource"]
    cams = open_sources("realsense:111,222")
    assert [c.serial for c in cams] == ["111", "222"]
    assert [c.serial for c in open_sources("realsense")] == [""]
    for bad in ("kinect:0", "bag:", "sim"):
        with pytest.raises(ConfigError):
            open_sources(bad)


def test_load_camera_pose_forms(tmp_path):
    T = _pose()
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"T_base_cam": T.tolist()}))
    assert np.allclose(load_camera_pose(single), T)
    multi = tmp_path / "multi.json"
    multi.write_text(
        json.dumps({"cameras": {"A": {"T_base_cam": T.tolist()}, "B": {"T_base_cam": np.eye(4).tolist()}}})
    )
    assert np.allclose(load_camera_pose(multi, "A"), T)
    with pytest.raises(FormatError, match="no pose for camera"):
        load_camera_pose(multi, "C")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"T_base_cam": (2 * T).tolist()}))
    with pytest.raises(FormatError, match="not a valid camera pose"):
        load_camera_pose(bad)
    with pytest.warns(UserWarning, match="identity"):
        assert np.allclose(load_camera_pose(None, "X"), np.eye(4))
