"""The compiled film sum (planning latency, issue 15 item 4) gives the film of a naive loop over every (sample,
point) pair and of the numpy array version, on a curved path over a wavy plate, per pass class."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.types import SprayPath
from gluecell.pathplan import filmkernel
from gluecell.pathplan.deposition import DepositionParams, _footprints, film_thickness, path_samples, sig_max_deg

P = DepositionParams()
#: The compiled sum vs the naive loop / the array version, as a fraction of the film's peak (float32 steps: one
#: rounding of a single term differs, ~1e-7).
SAME_TOL = 1e-6

pytestmark = pytest.mark.skipif(not filmkernel.available(), reason="numba is a dependency; this checks its kernel")


def _scene(n_pts: int = 2500, seed: int = 0) -> tuple[SprayPath, np.ndarray, np.ndarray, np.ndarray]:
    """A sprayed arc (a gun-off gap, a slow stretch) 20 mm over a wavy plate; labels per waypoint."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.06, 0.06, (n_pts, 2))
    z = 0.004 * np.sin(xy[:, 0] * 80)
    origin = np.array([0.5, -0.2, 0.15])
    pts = np.column_stack([xy, z]) + origin  # base_link-like magnitudes: float32 rounding as in the cell
    nrm = np.column_stack([-0.32 * np.cos(xy[:, 0] * 80), np.zeros(n_pts), np.ones(n_pts)])
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    a = np.linspace(0, np.pi, 120)
    xyz = np.column_stack([0.04 * np.cos(a), 0.04 * np.sin(a) - 0.02, np.full(len(a), 0.02)]) + origin
    speed = np.where(np.arange(len(a)) < 80, 0.25, 0.08)
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1) / speed[:-1])]
    spray = np.ones(len(a), bool)
    spray[50:58] = False
    tilt = np.deg2rad(10.0)
    # (x, y, z, w): a half turn about a horizontal axis 5 deg off x: nozzle +z straight down, frame turned
    q = np.tile([np.cos(tilt / 2), np.sin(tilt / 2), 0.0, 0.0], (len(a), 1))
    labels = (np.arange(len(a)) // 40) % 3
    return SprayPath("upper", t=t, xyz=xyz, quat_xyzw=q / np.linalg.norm(q, axis=1, keepdims=True),
                     spray=spray), pts, nrm, labels  # fmt: skip


def _naive(samples, aim, radius, pts, nrm, n_labels):
    """Every merged sample against every point, in a plain loop with the deposition model's float32 steps."""
    f32 = np.float32
    sig = np.tan(np.deg2rad(np.array([P.core_sigma_deg, P.halo_sigma_deg])))
    out = np.zeros((n_labels, len(pts)))
    across = np.cross(samples.axis, samples.along)
    for k in range(len(samples.tip)):
        inball = np.linalg.norm(pts - aim[k], axis=1) <= radius[k]
        r = pts.astype(f32) - samples.tip[k].astype(f32)
        h = r @ samples.axis[k].astype(f32)
        rn = (r * nrm.astype(f32)).sum(axis=1)
        ok = inball & (h > f32(1e-3)) & (rn < 0)
        inv_h = f32(1) / np.where(ok, h, f32(1))
        u, w = (r @ across[k].astype(f32)) * inv_h, (r @ samples.along[k].astype(f32)) * inv_h
        g = sum(f32(wk / (2 * np.pi * a * b)) * np.exp(f32(-0.5) * ((u * f32(1 / a)) ** 2 + (w * f32(1 / b)) ** 2))
                for wk, (a, b) in zip((1 - P.halo_weight, P.halo_weight), sig))  # fmt: skip
        rate = (g * -rn * inv_h**3).astype(np.float64) * (P.flow_ml_s * 1e-6)
        out[samples.label[k]] += np.where(ok, rate * samples.dwell[k], 0.0)
    return out


def test_compiled_film_equals_a_naive_loop_over_every_pair():
    path, pts, nrm, labels = _scene()
    s = path_samples(path, 1e-3, labels)
    fast = film_thickness(s, pts, nrm, P, n_labels=3, kernel="compiled")
    tan_max = float(np.tan(min(np.deg2rad(sig_max_deg(P)) * P.reach_sigmas, 1.3)))
    step = float(np.median(np.linalg.norm(np.diff(s.tip, axis=0), axis=1)))
    merged, aim, radius, _ = _footprints(s, pts, tan_max, 0.08, pts, 0.7 * np.tan(np.deg2rad(4.0)), step)
    ref = _naive(merged, aim, radius, pts, nrm, 3)
    assert fast.shape == (3, len(pts)) and np.all(ref.max(axis=1) > 0)
    assert np.abs(fast - ref).max() <= SAME_TOL * ref.max()


def test_compiled_film_equals_the_array_version_with_a_stray_far_point():
    path, pts, nrm, labels = _scene(seed=1)
    pts = np.vstack([pts, [[3.0, 2.0, -1.0]]])  # a stray point 3 m away: the grid gets coarser, not huge
    nrm = np.vstack([nrm, [[0.0, 0.0, 1.0]]])
    for lab, n in ((labels, 3), (None, 0)):
        s = path_samples(path, 1e-3, lab)
        fast = film_thickness(s, pts, nrm, P, n_labels=n, kernel="compiled")
        arrays = film_thickness(s, pts, nrm, P, n_labels=n, kernel="arrays")
        assert fast.shape == arrays.shape and arrays.max() > 0
        assert np.abs(fast - arrays).max() <= SAME_TOL * arrays.max()
    grid = filmkernel.cell_grid(pts, 1e-3)
    assert int(np.prod(grid.dims)) <= filmkernel.MAX_CELLS
    assert np.array_equal(np.sort(grid.order), np.arange(len(pts)))


def test_compiled_standoffs_equal_the_k_d_tree_ray_cast():
    from scipy.spatial import cKDTree

    from gluecell.pathplan.deposition import STANDOFF_RADIUS, standoffs

    _, pts, _, _ = _scene(n_pts=6000, seed=2)
    rng = np.random.default_rng(3)
    tip = pts.mean(axis=0) + np.column_stack([rng.uniform(-0.09, 0.09, (400, 2)), rng.uniform(0.005, 0.06, 400)])
    axis = rng.normal([0, 0, -1], 0.4, (400, 3))  # some rays miss the plate or graze it
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    ref = standoffs(tip, axis, cKDTree(pts), 0.08)
    for cell in (4e-3, 10e-3):
        got = filmkernel.standoffs(filmkernel.cell_grid(pts, cell), pts, tip, axis, 0.08, STANDOFF_RADIUS)
        assert np.array_equal(got, ref)
    assert 0 < np.count_nonzero(ref < 0.08) < len(ref)  # hits and misses both checked
