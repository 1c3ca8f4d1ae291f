"""The fast paths of the deposition model give the same film as the plain computation (latency work)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from gluecell.core.types import SprayPath
from gluecell.pathplan.deposition import DepositionParams, coalesce, film_thickness, path_samples, standoffs
from gluecell.pathplan.geom import points_in_polygon
from gluecell.pathplan.tuning import cross_profile, design_rings

P = DepositionParams()
#: Merged samples may change the film by at most this fraction of its peak (spacing <= 0.7 footprint sigma).
COALESCE_TOL = 0.01
#: float32 pair arithmetic: film within this fraction of the peak of a float64 reference.
F32_TOL = 1e-4


def _curved_path(standoff: float) -> SprayPath:
    """A sprayed arc over a plate (nozzle straight down), with a gun-off gap and a slow stretch."""
    a = np.linspace(0, np.pi, 200)
    xyz = np.column_stack([0.04 * np.cos(a), 0.04 * np.sin(a) - 0.02, np.full(len(a), standoff)])
    speed = np.where(np.arange(len(a)) < 120, 0.25, 0.08)
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1) / speed[:-1])]
    spray = np.ones(len(a), bool)
    spray[90:100] = False
    q = np.tile([1.0, 0.0, 0.0, 0.0], (len(a), 1))  # nozzle +z down
    return SprayPath("upper", t=t, xyz=xyz, quat_xyzw=q, spray=spray)


def _plate(half=0.07, step=7e-4):
    g = np.arange(-half, half, step)
    x, y = np.meshgrid(g, g, indexing="ij")
    pts = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    return pts, np.tile([0.0, 0.0, 1.0], (len(pts), 1))


def _marched(tip, axis, tree, max_standoff, radius=2.5e-3):
    steps = np.arange(1e-3, max_standoff, 1e-3)
    q = tip[:, None, :] + steps[None, :, None] * axis[:, None, :]
    d, _ = tree.query(q.reshape(-1, 3), distance_upper_bound=radius)
    hit = np.isfinite(d).reshape(len(tip), len(steps))
    return np.where(hit.any(axis=1), steps[np.argmax(hit, axis=1)], max_standoff)


def test_sphere_traced_standoffs_equal_millimetre_marching():
    pts, _ = _plate()
    pts[:, 2] = 0.01 * np.sin(pts[:, 0] * 60)  # a wavy surface
    rng = np.random.default_rng(0)
    tip = np.column_stack([rng.uniform(-0.05, 0.05, (300, 2)), rng.uniform(0.02, 0.06, 300)])
    axis = rng.normal([0, 0, -1], 0.3, (300, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    tree = cKDTree(pts)
    assert np.allclose(standoffs(tip, axis, tree, 0.08), _marched(tip, axis, tree, 0.08), atol=1e-9)


@pytest.mark.parametrize("standoff", [0.008, 0.035])
def test_coalesced_samples_give_the_same_film(standoff):
    pts, nrm = _plate()
    s = path_samples(_curved_path(standoff), 1e-3)
    exact = film_thickness(s, pts, nrm, P, max_standoff=0.08)  # merged internally
    h = np.full(len(s.tip), standoff)
    merged, _ = coalesce(s, h, 0.0, 1e-3)  # spacing 0: nothing merged
    assert len(merged.tip) == len(s.tip)
    merged, _ = coalesce(s, h, 0.7 * np.tan(np.deg2rad(4.0)), 1e-3)
    assert merged.dwell.sum() == pytest.approx(s.dwell.sum())
    if standoff > 0.02:
        assert len(merged.tip) < 0.7 * len(s.tip)  # far from the part: fewer, longer pieces
    # the plain sum over every 1 mm piece, no merging, float64
    ref = _plain_film(s, pts, nrm)
    assert np.abs(exact - ref).max() <= COALESCE_TOL * ref.max()


def _plain_film(s, pts, nrm):
    """Film by brute force over all (sample, point) pairs (float64, no merging, no neighbourhood cut)."""
    sig = np.tan(np.deg2rad(np.array([P.core_sigma_deg, P.halo_sigma_deg])))
    out = np.zeros(len(pts))
    across = np.cross(s.axis, s.along)
    for k in range(len(s.tip)):
        r = pts - s.tip[k]
        h = r @ s.axis[k]
        dist = np.linalg.norm(r, axis=1)
        ci = -(r * nrm).sum(axis=1) / dist
        u, w = r @ across[k] / h, r @ s.along[k] / h
        g = sum(wk / (2 * np.pi * a * b) * np.exp(-0.5 * ((u / a) ** 2 + (w / b) ** 2))
                for wk, (a, b) in zip((1 - P.halo_weight, P.halo_weight), sig))  # fmt: skip
        ok = (h > 1e-3) & (ci > 0) & (np.hypot(u, w) < np.tan(np.deg2rad(8.0 * P.reach_sigmas)))
        out += np.where(ok, P.flow_ml_s * 1e-6 * g * ci * dist / h**3 * s.dwell[k], 0.0)
    return out


def test_films_by_label_add_up_to_the_whole_film():
    pts, nrm = _plate()
    path = _curved_path(0.02)
    labels = (np.arange(len(path)) // 50) % 3
    whole = film_thickness(path_samples(path, 1e-3), pts, nrm, P)
    parts = film_thickness(path_samples(path, 1e-3, labels), pts, nrm, P, n_labels=3)
    assert parts.shape == (3, len(pts)) and np.all(parts.max(axis=1) > 0)
    assert np.abs(parts.sum(axis=0) - whole).max() <= COALESCE_TOL * whole.max()


def test_points_in_polygon_matches_a_disc():
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    poly = np.column_stack([np.cos(t), np.sin(t)])
    xy = np.random.default_rng(1).uniform(-1.2, 1.2, (5000, 2))
    r = np.linalg.norm(xy, axis=1)
    inside = points_in_polygon(xy, poly)
    clear = np.abs(r - 1.0) > 1e-3  # the polygon is a 400-gon: skip the sliver at the circle
    assert np.array_equal(inside[clear], (r < 1.0)[clear])


def test_edge_target_puts_the_covered_edge_at_the_target():
    edge, main = (0.008, 0.25), (0.035, 0.25)
    d = design_rings(edge, main, P, 0.3e-3, 0.012, edge_target=0.7e-3)
    e = cross_profile(edge[0], 0.0, edge[1], P)
    assert d.offsets[0] == pytest.approx(e.reach(P.covered_mm * 1e-3) + 0.7e-3)
    old = design_rings(edge, main, P, 0.3e-3, 0.012)
    assert d.offsets[0] < old.offsets[0]  # closer to the line than the trace-margin design


def test_voxel_downsample_matches_row_unique():
    from gluecell.pathplan.geom import row_keys, voxel_downsample

    rng = np.random.default_rng(3)
    pts = rng.normal(0.3, 0.02, (5000, 3))
    nrm = rng.normal(size=(5000, 3))
    keys = np.floor(pts / 2e-3).astype(np.int64)
    uk, inv = np.unique(keys, axis=0, return_inverse=True)
    assert np.array_equal(np.unique(row_keys(keys), return_inverse=True)[1].ravel(), inv.ravel())
    ref = np.array([pts[inv.ravel() == k].mean(axis=0) for k in range(len(uk))])
    got, gn = voxel_downsample(pts, 2e-3, nrm)
    assert np.allclose(got, ref, atol=1e-12) and np.allclose(np.linalg.norm(gn, axis=1), 1.0)
