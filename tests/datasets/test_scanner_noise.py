"""Virtual scanner: stereo noise, flying pixels, dropouts, hand-eye error, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from gluecell.datasets.world.scanner import D4xxCamera, Material, SensorArtifacts, render_scene
from gluecell.datasets.world.scanner_camera import draw_pose_error, look_at

CAM = D4xxCamera(width=424, height=240)
WHITE = Material(rgb=(0.8, 0.8, 0.8), texture=0.0, grain=0.12)  # a well-textured matte reference: noise gain 1
#: Fitted exponent of σz(z) must be 2 within this.
EXPONENT_TOL = 0.1
#: Measured σz vs the model (formula · noise_factor, plus the correlated part) within this fraction.
SIGMA_REL_TOL = 0.1
#: Per-axis std of 4000 drawn hand-eye errors vs the configured std.
HANDEYE_REL_TOL = 0.06
#: A pixel more than this many σ from the true depth is an outlier (flying) pixel.
OUTLIER_SIGMAS = 6.0


def _quad(normal: np.ndarray, centre: np.ndarray, half: float = 1.0) -> trimesh.Trimesh:
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    a = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(n, a)
    v = [centre + half * (sa * a + sb * b) for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    return trimesh.Trimesh(np.array(v), [[0, 1, 2], [0, 2, 3]], process=False)


def _down(height: float) -> np.ndarray:
    return look_at(np.array([0.55, -0.2, height]), np.array([0.55, -0.2, 0.0]))


def _render(meshes, T, rng_seed=0, cam=CAM, mats=None, art=None):
    mats = mats or [WHITE] * len(meshes)
    return render_scene(meshes, T, T, cam, np.random.default_rng(rng_seed), materials=mats, artifacts=art)


def _band_px(cam: D4xxCamera, z: float) -> int:
    """Width of the left border the right imager cannot see at depth z (plus a pixel)."""
    return math.ceil(cam.fx * cam.baseline_m / z) + 1


def test_noise_grows_with_square_of_range() -> None:
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    zs = np.array([0.10, 0.16, 0.25, 0.40])
    sig = []
    for i, z in enumerate(zs):
        f = _render([floor], _down(z), rng_seed=i)
        d = f.depth[:, _band_px(CAM, z) :].astype(np.float64) * f.depth_scale
        assert np.all(d > 0)  # a frontal matte plane has no dropouts
        sig.append(np.std(d - z))
    slope = np.polyfit(np.log(zs), np.log(sig), 1)[0]
    assert abs(slope - 2.0) < EXPONENT_TOL
    model = CAM.sigma_z(zs) * math.sqrt(1.0 + CAM.correlated_fraction**2)
    assert np.all(np.abs(np.array(sig) / model - 1.0) < SIGMA_REL_TOL)


def test_flat_frontal_surface_has_no_dropouts_or_flying_pixels() -> None:
    z = 0.22
    f = _render([_quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))], _down(z), rng_seed=3)
    d = f.depth[:, _band_px(CAM, z) :].astype(np.float64) * f.depth_scale
    assert np.count_nonzero(d == 0) == 0
    assert np.max(np.abs(d - z)) < OUTLIER_SIGMAS * CAM.sigma_z(z) * 1.1
    # the left border band (seen by the left imager only) has no depth, as on a real D4xx
    assert np.all(f.depth[:, : _band_px(CAM, z) - 2] == 0)


def test_edges_get_flying_pixels_and_dropouts() -> None:
    box = trimesh.creation.box((0.10, 0.08, 0.06))
    box.apply_translation((0.55, -0.2, 0.03))
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    T = _down(0.25)
    ideal_cam = D4xxCamera(width=424, height=240, noise_factor=0.0)
    truth = _render([box, floor], T, cam=ideal_cam, art=SensorArtifacts.ideal()).depth.astype(np.float64) * 1e-4
    f = _render([box, floor], T, rng_seed=5)
    d = f.depth.astype(np.float64) * 1e-4
    jump = np.zeros_like(truth)
    jump[:, 1:] = np.abs(np.diff(truth, axis=1))
    jump[:, :-1] = np.maximum(jump[:, :-1], np.abs(np.diff(truth, axis=1)))
    jump[1:, :] = np.maximum(jump[1:, :], np.abs(np.diff(truth, axis=0)))
    jump[:-1, :] = np.maximum(jump[:-1, :], np.abs(np.diff(truth, axis=0)))
    edge = (jump > 0.01) & (truth > 0)
    edge[:, : _band_px(CAM, 0.25)] = False
    assert edge.sum() > 200
    sigma = CAM.sigma_z(truth)
    flying = edge & (d > 0) & (np.abs(d - truth) > OUTLIER_SIGMAS * sigma)
    dropped = edge & (d == 0)
    assert flying.sum() > 0.15 * edge.sum()
    assert dropped.sum() > 0.15 * edge.sum()
    # a flying pixel lies between the fore- and background depth (0.19 m top, 0.25 m floor)
    assert np.all((d[flying] > 0.19 - 0.005) & (d[flying] < 0.25 + 0.005))
    # away from edges the box top and floor are clean
    from scipy.ndimage import binary_dilation

    near = binary_dilation(jump > 0, iterations=SensorArtifacts().flying_width_px)  # flying pixels reach 3 px
    far = ~near & (truth > 0)
    far[:, : _band_px(CAM, 0.19) + 12] = False
    inner = far & (np.abs(truth - 0.19) < 1e-6)
    assert inner.sum() > 1000 and np.count_nonzero(d[inner] == 0) == 0


def _tilted_plane_render(tilt_deg: float, height: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth of a plane tilted about x through the optical axis; its true depth and incidence (deg)."""
    tilt = math.radians(tilt_deg)
    n = np.array([0.0, math.sin(tilt), math.cos(tilt)])
    plane = _quad(n, np.array([0.55, -0.2, 0.0]))
    T = _down(height)
    f = _render([plane], T, rng_seed=seed)
    k = CAM.intrinsics
    u, v = np.meshgrid(np.arange(k.width), np.arange(k.height))
    rays = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u, dtype=float)], -1) @ T[:3, :3].T
    inc = np.degrees(np.arccos(np.abs(rays @ n) / np.linalg.norm(rays, axis=-1)))
    ideal_cam = D4xxCamera(width=424, height=240, noise_factor=0.0, max_range_m=5.0)
    truth = _render([plane], T, cam=ideal_cam, art=SensorArtifacts.ideal()).depth * 1e-4
    ok = (truth > CAM.min_range_m + 0.01) & (truth < CAM.max_range_m - 0.02)
    ok[:, : _band_px(CAM, CAM.min_range_m) + 2] = False
    return f.depth, inc, ok


def test_grazing_incidence_drops_out() -> None:
    depth, inc, ok = _tilted_plane_render(45.0, 0.2, seed=7)  # incidence ~10-75° over the image
    mild = ok & (inc < 65.0)
    assert mild.sum() > 10000 and np.count_nonzero(depth[mild] == 0) == 0
    depth, inc, ok = _tilted_plane_render(80.0, 0.12, seed=8)  # incidence ~50-90°
    steep = ok & (inc > 85.0)
    assert steep.sum() > 500 and np.all(depth[steep] == 0)
    mid = ok & (inc > 76.0) & (inc < 79.0)  # dropout probability 0.45-0.7 (linear in cosine)
    assert 0.3 < np.mean(depth[mid] == 0) < 0.85


def test_dark_surfaces_drop_out() -> None:
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    black = Material(rgb=(0.02, 0.02, 0.02), texture=0.0)
    f = _render([floor], _down(0.2), rng_seed=2, mats=[black])
    frac = np.mean(f.depth[:, _band_px(CAM, 0.2) :] == 0)
    assert 0.8 < frac < 0.98  # dark_max_dropout = 0.9


def test_glossy_highlight_drops_out_where_it_shines() -> None:
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    gloss = Material(rgb=(0.5, 0.5, 0.5), texture=0.0, gloss=1.0, shininess=20.0)
    f = _render([floor], _down(0.2), rng_seed=4, mats=[gloss])
    frac = np.mean(f.depth == 0)
    matte = _render([floor], _down(0.2), rng_seed=4)
    assert frac > np.mean(matte.depth == 0) + 0.02


def test_handeye_error_has_configured_spread() -> None:
    rng = np.random.default_rng(11)
    errs = np.array([draw_pose_error(rng, 2e-4, 0.1) for _ in range(4000)])
    t_std = errs[:, :3, 3].std(axis=0)
    assert np.all(np.abs(t_std / 2e-4 - 1.0) < HANDEYE_REL_TOL)
    R = errs[:, :3, :3]
    rotvec_approx = np.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], -1) / 2
    r_std = np.degrees(rotvec_approx.std(axis=0))
    assert np.all(np.abs(r_std / 0.1 - 1.0) < HANDEYE_REL_TOL)
    assert np.allclose(np.einsum("nij,nkj->nik", R, R), np.eye(3), atol=1e-12)


def test_same_seed_same_bytes() -> None:
    box = trimesh.creation.box((0.1, 0.08, 0.06))
    box.apply_translation((0.55, -0.2, 0.03))
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    mats = [Material(rgb=(0.2, 0.15, 0.1), texture=0.4, gloss=0.5, gloss_cover=0.5), WHITE]
    a = _render([box, floor], _down(0.25), rng_seed=9, mats=mats)
    b = _render([box, floor], _down(0.25), rng_seed=9, mats=mats)
    c = _render([box, floor], _down(0.25), rng_seed=10, mats=mats)
    assert a.depth.tobytes() == b.depth.tobytes() and a.color.tobytes() == b.color.tobytes()
    assert a.depth.tobytes() != c.depth.tobytes()


def test_plain_surfaces_are_noisier_than_textured_ones() -> None:
    """Texture-dependent stereo noise: at a grain of ``grain_ref`` the formula (the floor); on a plain surface
    the capped texture gain (FACTS.md: white matte targets 3-5 x the formula)."""
    art = SensorArtifacts()
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    z = 0.15
    cam = D4xxCamera(width=424, height=240, correlated_fraction=0.0)
    sig = {}
    for grain in (art.grain_ref, 0.0):
        mat = Material(rgb=(0.8, 0.8, 0.8), texture=0.0, grain=grain)
        f = _render([floor], _down(z), rng_seed=7, cam=cam, mats=[mat])
        d = f.depth[:, _band_px(cam, z) :].astype(np.float64) * f.depth_scale
        sig[grain] = np.std(d - z)
    assert sig[art.grain_ref] == pytest.approx(cam.sigma_z(z), rel=SIGMA_REL_TOL)
    assert sig[0.0] == pytest.approx(art.max_texture_gain * cam.sigma_z(z), rel=SIGMA_REL_TOL)


def test_camera_depth_scale_and_bias() -> None:
    """A camera's own depth error: an ideal sensor reads z (1 + scale) + bias, to the depth unit."""
    from gluecell.datasets.world.scanner import RayScene, SceneObject, render_view

    cam = D4xxCamera(width=424, height=240, noise_factor=0.0)
    floor = _quad([0, 0, 1], np.array([0.55, -0.2, 0.0]))
    scene = RayScene([SceneObject.from_mesh(floor, WHITE)], np.random.default_rng(0))
    T = _down(0.16)
    f = render_view(scene, T, T, cam, SensorArtifacts.ideal(), np.random.default_rng(0), depth_error=(0.01, 2e-4))
    d = f.depth[f.depth > 0].astype(np.float64) * f.depth_scale
    assert d.size > 0.9 * f.depth.size
    np.testing.assert_allclose(d, 0.16 * 1.01 + 2e-4, atol=0.6 * cam.depth_scale)
