"""Virtual scanner: camera geometry and exact (noise-free) ray-cast depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from gluecell.datasets.world.scanner import (
    D4xxCamera,
    Material,
    SensorArtifacts,
    render_mesh_depth,
    render_scene,
)
from gluecell.datasets.world.scanner_camera import ViewSpec, look_at, se3_exp, view_pose

#: Float32 ray casting of geometry ~0.5 m from the origin: depth error well below a micrometre.
EXACT_DEPTH_TOL_M = 1e-6
#: Deprojected noise-free pixels must lie on the mesh within this (the brief's 0.05 mm).
ON_MESH_TOL_M = 0.05e-3
#: Quantised to 0.1 mm depth units, a point moves at most half a unit along its ray.
QUANTISED_ON_MESH_TOL_M = 0.05e-3 + 1e-6
SMALL = D4xxCamera(width=424, height=240)
IDEAL = D4xxCamera(width=424, height=240, noise_factor=0.0)


def _floor(half: float = 1.0) -> trimesh.Trimesh:
    v = np.array([[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]])
    return trimesh.Trimesh(v + np.array([0.55, -0.2, 0.0]), [[0, 1, 2], [0, 2, 3]], process=False)


def _down(height: float) -> np.ndarray:
    return look_at(np.array([0.55, -0.2, height]), np.array([0.55, -0.2, 0.0]))


def _deproject(depth: np.ndarray, cam: D4xxCamera, T: np.ndarray) -> np.ndarray:
    k = cam.intrinsics
    v, u = np.nonzero(depth > 0)
    z = depth[v, u]
    p = np.column_stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z])
    return p @ T[:3, :3].T + T[:3, 3]


def test_intrinsics_follow_fov() -> None:
    cam = D4xxCamera()
    k = cam.intrinsics
    assert (k.width, k.height) == (848, 480)
    assert math.degrees(2 * math.atan(0.5 * k.width / k.fx)) == pytest.approx(87.0, abs=1e-9)
    assert math.degrees(2 * math.atan(0.5 * k.height / k.fy)) == pytest.approx(58.0, abs=1e-9)
    # FACTS.md: D405 formula noise at 200 mm with s = 0.08 is about 0.40 mm (before noise_factor)
    assert cam.sigma_z(0.2) / cam.noise_factor == pytest.approx(0.40e-3, rel=0.05)


def test_look_at_points_optical_axis_at_target() -> None:
    target = np.array([0.55, 0.2, 0.03])
    for view in (ViewSpec(0.0, 62.0, 0.24), ViewSpec(115.0, 38.0, 0.27), ViewSpec(-70.0, 90.0, 0.3)):
        T = view_pose(target, view)
        R = T[:3, :3]
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-12) and np.linalg.det(R) == pytest.approx(1.0)
        assert np.linalg.norm(T[:3, 3] - target) == pytest.approx(view.distance_m)
        to_target = (target - T[:3, 3]) / view.distance_m
        assert np.allclose(R[:, 2], to_target, atol=1e-12)
        assert R[2, 1] <= 1e-12  # image "down" points down in the world


def test_frontal_plane_depth_is_exact() -> None:
    for h in (0.12, 0.3):
        depth = render_mesh_depth([_floor()], _down(h), SMALL)
        assert np.all(depth > 0)
        assert np.max(np.abs(depth - h)) < EXACT_DEPTH_TOL_M


def test_box_top_and_floor_depths_are_exact() -> None:
    box = trimesh.creation.box((0.10, 0.06, 0.08))
    box.apply_translation((0.55, -0.2, 0.04))
    T = _down(0.3)
    depth = render_mesh_depth([box, _floor()], T, SMALL)
    p = _deproject(depth, SMALL, T)
    on_top = (np.abs(p[:, 0] - 0.55) < 0.049) & (np.abs(p[:, 1] + 0.2) < 0.029) & (p[:, 2] > 0.04)
    zs = depth[depth > 0]
    assert on_top.sum() > 1000
    assert np.max(np.abs(zs[on_top] - 0.22)) < EXACT_DEPTH_TOL_M
    far = (np.abs(p[:, 0] - 0.55) > 0.12) | (np.abs(p[:, 1] + 0.2) > 0.10)  # floor beyond the box's shadow
    assert np.max(np.abs(zs[far] - 0.3)) < EXACT_DEPTH_TOL_M


def _sphere() -> trimesh.Trimesh:
    s = trimesh.creation.icosphere(subdivisions=3, radius=0.06)
    s.apply_translation((0.55, -0.2, 0.12))
    return s


def test_deprojected_noise_free_render_lies_on_mesh() -> None:
    mesh = _sphere()
    T = view_pose(np.array([0.55, -0.2, 0.12]), ViewSpec(30.0, 50.0, 0.25))
    depth = render_mesh_depth([mesh], T, SMALL)
    pts = _deproject(depth, SMALL, T)
    assert len(pts) > 2000
    sub = pts[np.random.default_rng(0).choice(len(pts), 1500, replace=False)]
    _, dist, _ = trimesh.proximity.closest_point(mesh, sub)
    assert dist.max() < ON_MESH_TOL_M


def test_ideal_sensor_frame_deprojects_onto_mesh() -> None:
    mesh = _sphere()
    T = view_pose(np.array([0.55, -0.2, 0.12]), ViewSpec(-40.0, 70.0, 0.22))
    frame = render_scene([mesh], T, T, IDEAL, np.random.default_rng(1), artifacts=SensorArtifacts.ideal())
    assert frame.depth.dtype == np.uint16 and frame.color is not None
    pts = _deproject(frame.depth.astype(np.float64) * frame.depth_scale, IDEAL, T)
    assert len(pts) > 2000
    _, dist, _ = trimesh.proximity.closest_point(mesh, pts[:: max(1, len(pts) // 1500)])
    assert dist.max() < QUANTISED_ON_MESH_TOL_M


def test_believed_pose_is_written_and_truth_is_used_for_rays() -> None:
    mesh = _floor()
    T_true = _down(0.25)
    T_bel = T_true @ se3_exp(np.array([0.0, 0.0, 0.01]), np.array([0.001, 0.0, 0.0]))
    cam = IDEAL
    frame = render_scene([mesh], T_true, T_bel, cam, np.random.default_rng(0), artifacts=SensorArtifacts.ideal())
    assert np.array_equal(frame.T_base_cam, T_bel)
    # depth is that of the true pose: exactly the camera height everywhere in range
    assert np.all(np.abs(frame.depth[frame.depth > 0].astype(np.float64) * 1e-4 - 0.25) < 0.6e-4)


def test_range_cut_and_colour_shading() -> None:
    cam = D4xxCamera(width=424, height=240, noise_factor=0.0, max_range_m=0.2)
    white, dark = Material(rgb=(0.8, 0.8, 0.8), texture=0.0), Material(rgb=(0.1, 0.1, 0.1), texture=0.0)
    f_far = render_scene([_floor()], _down(0.25), _down(0.25), cam, np.random.default_rng(0), materials=[white])
    assert np.count_nonzero(f_far.depth) == 0  # beyond max range: no data
    f_white = render_scene([_floor()], _down(0.15), _down(0.15), cam, np.random.default_rng(0), materials=[white])
    f_dark = render_scene([_floor()], _down(0.15), _down(0.15), cam, np.random.default_rng(0), materials=[dark])
    assert f_white.color.mean() > 3 * f_dark.color.mean()
