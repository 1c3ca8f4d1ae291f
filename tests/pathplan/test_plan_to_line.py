"""Issue 15 items 1-2: glue to the line (dry strip <= 1 mm, nothing > 0.5 mm over it) with the true line, per-point
margins end to end, and soles that used to be refused ("glue would land 13.9 mm beyond the boundary").

Judged with the planner's deposition model on fresh dense samples of the synthetic meshes (pathplan/synthetic.py),
not on the scan the plan was made from.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from gluecell.core.geometry import polyline_distance
from gluecell.pathplan.deposition import DepositionParams, film_thickness, path_samples
from gluecell.pathplan.filmcheck import film_limit, stray_points
from gluecell.pathplan.geom import resample_polyline
from gluecell.pathplan.pipeline import PathplanConfig, plan_part
from gluecell.pathplan.region import RegionParams, sole_region
from gluecell.pathplan.synthetic import SyntheticPair, _grid_mesh, _profile_rows, footprint, make_synthetic_pair


@pytest.fixture(scope="module")
def pair() -> SyntheticPair:
    return make_synthetic_pair()


@pytest.fixture(scope="module")
def judged(pair):
    """Fresh dense samples of the true upper within 12 mm of the line: points, normals, straight distance to the
    line, beyond (above the line: the upper lies bottom-up, the bond side is towards +z), arc index (2 mm bins)."""
    pts, nrm = pair.sample("upper", 400_000, seed=11)
    d = polyline_distance(pts, pair.bite_line)
    near = d < 12e-3
    pts, nrm, d = pts[near], nrm[near], d[near]
    line = resample_polyline(pair.bite_line, 0.25e-3)
    _, i = cKDTree(line).query(pts)
    beyond = pts[:, 2] < line[i, 2]  # the line runs round the vertical side wall
    seg = np.linalg.norm(np.diff(np.r_[line, line[:1]], axis=0), axis=1)
    s = np.r_[0.0, np.cumsum(seg)[:-1]][i]
    nb = int(seg.sum() / 2e-3)
    return pts, nrm, d, beyond, np.minimum((s / seg.sum() * nb).astype(int), nb - 1), nb


def _strip(film: np.ndarray, judged) -> tuple[np.ndarray, float]:
    """Dry strip per 2 mm stretch of the line (mm) and the farthest visible glue beyond the line (mm)."""
    _, _, d, beyond, key, nb = judged
    dep = DepositionParams()
    wet = ~beyond & (film >= dep.covered_mm * 1e-3)
    width = np.full(nb, 10.0)
    np.minimum.at(width, key[wet], d[wet] * 1e3)
    over = beyond & (film >= dep.visible_mm * 1e-3)
    return width, float(d[over].max() * 1e3) if np.any(over) else 0.0


def _film(path, judged) -> np.ndarray:
    pts, nrm = judged[0], judged[1]
    return film_thickness(path_samples(path), pts, nrm, surface=pts)


def test_true_line_dry_strip_within_1mm_nothing_over_half_mm(pair, judged):
    pts, nrm = pair.sample("upper", 30_000, seed=1, noise_mm=0.1)
    pp = plan_part("upper", pts, PathplanConfig(), bite_line=pair.bite_line, normals=nrm, robot=False)
    width, over = _strip(_film(pp.path, judged), judged)
    assert np.percentile(width, 95) <= 1.0, np.percentile(width, [50, 95, 100])
    assert over <= 0.5
    # the old design (covered edge 0.8 mm inside, 72 stretches, 0.25 mm extra per move) kept it wider
    assert pp.metrics["first_offset_mm"] < 1.7


def test_per_point_margin_widens_the_dry_strip_only_where_sigma_is_larger(pair, judged):
    pts, nrm = pair.sample("upper", 30_000, seed=1, noise_mm=0.1)
    line = pair.bite_line
    low = line[:, 0] < np.median(line[:, 0])
    margin = np.where(low, 0.2e-3, 2.0e-3)  # 2 sigma of 0.1 mm vs 1 mm
    pp = plan_part("upper", pts, PathplanConfig(), bite_line=line, normals=nrm, robot=False, margin_m=margin)
    width, over = _strip(_film(pp.path, judged), judged)
    # which 2 mm stretches belong to each half: by the x of their points
    x_mid = np.median(line[:, 0])
    key = judged[4]
    x_of = np.bincount(key, judged[0][:, 0], len(width)) / np.maximum(np.bincount(key, minlength=len(width)), 1)
    lo_w, hi_w = np.median(width[x_of < x_mid - 0.02]), np.median(width[x_of > x_mid + 0.02])
    assert hi_w - lo_w > 1.2, (lo_w, hi_w)  # 1.8 mm more margin on the uncertain half
    assert lo_w < 1.0
    assert over <= 0.5


def _curled_sole(n_around: int = 360) -> SyntheticPair:
    """A cup sole whose rim curls in: below the rim the inner wall bulges 3-4 mm outwards (outside the rim in plan
    view) and turns down to the footbed at ~45 deg, as on the demo's pair 00000 (seed 7)."""
    th = np.linspace(-np.pi, np.pi, n_around, endpoint=False)
    xy, nxy = footprint(th, 0.14, 0.05)
    cs = np.array([0.55, 0.20])
    xys = xy * 1.1 + cs
    lev = [(lam, 0.02, "tread") for lam in np.linspace(1, 0, 25)[:-1]]
    lev += [(0.0, z, "offset") for z in np.linspace(0.02, 0.040, 8)]
    lev += [(0.003 * (z - 0.040) / 0.012, z, "offset") for z in np.linspace(0.040, 0.052, 7)[1:]]
    lev += [(i, 0.052, "offset") for i in (0.0055, 0.007, 0.0085)]
    inner = [(0.050, 0.006), (0.048, 0.004), (0.046, 0.003), (0.044, 0.005), (0.042, 0.007), (0.040, 0.0085),
             (0.036, 0.0095), (0.032, 0.01)]  # fmt: skip
    lev += [(i, z, "offset") for z, i in inner]
    lev += [(lam, 0.032, "scale") for lam in np.linspace(0, 1, 30)[1:]]
    rows = _profile_rows(xys, nxy, cs, lev)
    rows[len(lev) - 29 :, :, :2] = cs + (1 - np.linspace(0, 1, 30)[1:, None, None]) * (xys - 0.01 * nxy - cs)
    v, f = _grid_mesh(rows)
    return SyntheticPair(v[:3], f[:1], v, f, v[:3], v[:3])


@pytest.fixture(scope="module")
def curled():
    pts, nrm = _curled_sole().sample("sole", 40_000, seed=3, noise_mm=0.1)
    xy, nxy = footprint(np.array([0.0]), 0.14, 0.05)
    stray = np.r_[xy[0] * 1.1 + np.array([0.55, 0.20]) - 0.0035 * nxy[0], 0.0425]  # inside the toe's wall
    return np.vstack([pts, stray]), np.vstack([nrm, [0.0, 0.0, 1.0]])


def test_curled_sole_inner_wall_is_bond_side(curled):
    pts, nrm = curled
    c = pts[:, :2].mean(axis=0)

    def inner_bulge_inside(p: RegionParams) -> float:
        reg = sole_region(pts, nrm, p)
        sel = (reg.points[:, 2] > 0.0415) & (reg.points[:, 2] < 0.0455)
        sel &= np.einsum("ij,ij->i", reg.normals[:, :2], reg.points[:, :2] - c) < 0  # faces the cavity
        return float(np.mean(reg.signed[sel] > 0))

    assert inner_bulge_inside(RegionParams(wall_deep_normal_xy=1.0)) < 0.9  # the old rule: refused the sole
    assert inner_bulge_inside(RegionParams()) > 0.99


def test_curled_sole_with_a_stray_point_plans(curled):
    pts, nrm = curled
    pp = plan_part("sole", pts, PathplanConfig(), normals=nrm, robot=False)
    assert pp.metrics["above_visible_mm"] <= film_limit(PathplanConfig())[1]
    assert pp.metrics["coverage_1mm"] > 0.95


def test_stray_points_are_points_off_every_surface():
    rng = np.random.default_rng(0)
    g = np.stack(np.meshgrid(np.arange(0, 0.03, 2e-3), np.arange(0, 0.03, 2e-3)), -1).reshape(-1, 2)
    floor = np.column_stack([g, np.zeros(len(g))])
    wall = np.column_stack([np.full(len(g), 0.04), g[:, 0], g[:, 1]])  # a vertical face beside the floor
    cloud = np.vstack([floor, wall]) + rng.normal(0, 1e-4, (2 * len(g), 3))
    normals = np.vstack([np.tile([0, 0, 1.0], (len(g), 1)), np.tile([-1.0, 0, 0], (len(g), 1))])
    lone = np.array([[0.038, 0.015, 0.006]])  # 2 mm from the wall, 6 mm above the floor, facing up
    pts = np.vstack([cloud, lone])
    tree = cKDTree(pts)
    nrm = np.vstack([normals, [[0, 0, 1.0]]])
    got = stray_points(tree, nrm, np.vstack([floor[100], wall[100], lone[0]]), np.vstack([normals[100],
                                                                                      normals[len(g) + 100], nrm[-1]]))
    assert got.tolist() == [False, False, True]


def test_edge_moves_grow_each_round_so_the_tuner_settles():
    """A spot still over the line round after round moves out by more each round (a fixed 0.05 mm left two
    pairs of world 1 0.05-0.10 mm over after 6 rounds: refused)."""
    from gluecell.pathplan.pipeline import TuningConfig
    from gluecell.pathplan.toolpath import BondRegion
    from gluecell.pathplan.tuning import next_moves

    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    ring = np.column_stack([0.1 * np.cos(th), 0.1 * np.sin(th), np.zeros_like(th)])
    signed = np.array([-0.3e-3, 2e-3])  # one glued spot 0.3 mm beyond the line, one bond point
    region = BondRegion("upper", ring[:2], np.tile([0, 0, 1.0], (2, 1)), signed, np.array([0.01, 0.01]), ring,
                        np.tile([0, 0, 1.0], (200, 1)), np.zeros((200, 3)))  # fmt: skip
    films = np.array([[1e-4, 1e-4], [0.0, 0.0], [0.0, 0.0]])  # the edge passes' film
    tun = TuningConfig()
    moved = [next_moves(region, films, 1e-5, 0.0, 0.3, None, tun, r, np.zeros(tun.local_bins), (0.0, 0.0))[0].max()
             for r in (0, 2)]  # fmt: skip
    assert moved[0] == pytest.approx(0.3e-3 + tun.bump_extra_mm * 1e-3)
    assert moved[1] == pytest.approx(0.3e-3 + 3 * tun.bump_extra_mm * 1e-3)


def test_refusal_says_where_the_glue_lands():
    from gluecell.pathplan.filmcheck import worst_beyond
    from gluecell.pathplan.toolpath import BondRegion

    pts = np.array([[0.5, 0.1, 0.04], [0.5, 0.2, 0.05], [0.6, 0.1, 0.04]])
    nrm = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 0, 1.0]])
    region = BondRegion("sole", pts, nrm, np.array([-2e-3, -13e-3, 3e-3]), np.zeros(3), pts, nrm, nrm)
    got = worst_beyond(region, np.array([1e-4, 1e-4, 1e-4]), 1e-5, 0.0)
    assert "500.0, 200.0, 50.0 mm" in got and "facing sideways" in got
    assert worst_beyond(region, np.array([1e-4, 0.0, 1e-4]), 1e-5, 0.0).startswith(" (worst at 500.0, 100.0, 40.0")
    assert worst_beyond(region, np.zeros(3), 1e-5, 0.0) == ""
