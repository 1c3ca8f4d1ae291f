"""Synthetic frames recorded through a pyrealsense2 software device replay through a plain pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from gluecell.core.errors import ValidationError
from gluecell.datasets.world.bagrec import record_frames
from gluecell.datasets.world.scanner import D4xxCamera, Material, render_scene
from gluecell.datasets.world.scanner_camera import look_at

#: librealsense stores intrinsics as float32.
INTRINSICS_TOL = 1e-3
#: Depth units come back as a float32 option.
DEPTH_UNITS_REL_TOL = 1e-6
PLAYBACK_TIMEOUT_MS = 3000


def _frames(n: int = 2) -> list:
    box = trimesh.creation.box((0.1, 0.08, 0.06))
    box.apply_translation((0.55, -0.2, 0.03))
    floor = trimesh.Trimesh([[-1, -1, 0], [2, -1, 0], [2, 1, 0], [-1, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    cam = D4xxCamera(width=424, height=240)
    T = look_at(np.array([0.55, -0.2, 0.25]), np.array([0.55, -0.2, 0.0]))
    mats = [Material(rgb=(0.6, 0.4, 0.3)), Material(rgb=(0.4, 0.4, 0.4))]
    rng = np.random.default_rng(0)
    return [
        render_scene([box, floor], T, T, cam, rng, materials=mats, stamp=0.1 * i, serial="sim-d405-test")
        for i in range(n)
    ]


def _play(path) -> list[tuple[np.ndarray, np.ndarray, object, float]]:
    import pyrealsense2 as rs

    pipe = rs.pipeline()
    cfg = rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    pipe.start(cfg)
    try:
        out = []
        while True:
            ok, fs = pipe.try_wait_for_frames(PLAYBACK_TIMEOUT_MS)
            if not ok:
                break
            d, c = fs.get_depth_frame(), fs.get_color_frame()
            intr = d.profile.as_video_stream_profile().get_intrinsics()
            out.append((np.asanyarray(d.get_data()).copy(), np.asanyarray(c.get_data()).copy(), intr, d.get_units()))
            if len(out) == 2:
                break
        return out
    finally:
        pipe.stop()


def test_recorded_frames_play_back_identically(tmp_path) -> None:
    frames = _frames(2)
    assert frames[0].depth.tobytes() != frames[1].depth.tobytes()  # noise differs between shots
    path = record_frames(frames, tmp_path / "scan.db3", baseline_m=0.018)
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["scan.db3"]
    got = _play(path)
    assert len(got) == 2
    for (depth, color, intr, units), f in zip(got, frames):
        assert np.array_equal(depth, f.depth)
        assert np.array_equal(color, f.color)
        k = f.intrinsics
        assert (intr.width, intr.height) == (k.width, k.height)
        assert np.allclose([intr.fx, intr.fy, intr.ppx, intr.ppy], [k.fx, k.fy, k.cx, k.cy], atol=INTRINSICS_TOL)
        assert units == pytest.approx(f.depth_scale, rel=DEPTH_UNITS_REL_TOL)


def test_record_rejects_bad_input(tmp_path) -> None:
    frames = _frames(1)
    with pytest.raises(ValidationError):
        record_frames(frames, tmp_path / "scan.bag")
    with pytest.raises(ValidationError):
        record_frames([], tmp_path / "scan.db3")
    other = D4xxCamera(width=320, height=240)
    T = np.eye(4)
    f2 = render_scene([trimesh.creation.box((0.1, 0.1, 0.1))], T, T, other, np.random.default_rng(0))
    with pytest.raises(ValidationError):
        record_frames([frames[0], f2], tmp_path / "scan.db3")
    assert not any(tmp_path.iterdir())
