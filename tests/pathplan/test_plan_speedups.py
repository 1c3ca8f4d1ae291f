"""The latency work keeps the physics: merged spray samples give the plain film even where the nozzle pivots on
a spot, IK of a subset of branches equals those branches of the full solution, a warm-started path solve
finds a valid program, and the tuning loop's line probes lie just beyond the line with the right distance."""

from __future__ import annotations

import numpy as np
import pytest

import gluecell.pathplan.deposition as dep_mod
from gluecell.pathplan.deposition import DepositionParams, SpraySamples, film_thickness
from gluecell.pathplan.evalpoints import line_probes
from gluecell.pathplan.kinematics import RobotConfig, fk, ik, solve_path
from gluecell.pathplan.region import upper_region
from gluecell.pathplan.synthetic import make_synthetic_pair

P = DepositionParams()
#: Merged samples may change the film by at most this fraction of its peak (as for straight paths).
MERGE_TOL = 0.01
#: Joint angles of a branch solved alone vs. the same branch of the full solution (rad).
IK_TOL = 1e-12
#: Probe distance from the line vs. the true (straight) distance to the synthetic bite line (m).
PROBE_TOL = 0.05e-3


def _pivot_samples(standoff: float = 0.035, sweep_deg: float = 30.0, n: int = 300) -> SpraySamples:
    """A nozzle turning about a point on the plate below it while its tip moves only 0.3 mm (a tight corner):
    the sprayed spot sweeps ~18 mm across the plate."""
    a = np.deg2rad(np.linspace(-sweep_deg / 2, sweep_deg / 2, n))
    axis = np.column_stack([np.sin(a), np.zeros(n), -np.cos(a)])
    tip = np.column_stack([np.linspace(0, 3e-4, n), np.zeros(n), np.full(n, standoff)])
    along = np.tile([1.0, 0.0, 0.0], (n, 1))
    along -= np.einsum("ij,ij->i", along, axis)[:, None] * axis
    along /= np.linalg.norm(along, axis=1, keepdims=True)
    return SpraySamples(tip, axis, along, np.full(n, 2e-3))


def _plate(half: float = 0.04, step: float = 5e-4) -> tuple[np.ndarray, np.ndarray]:
    g = np.arange(-half, half, step)
    x, y = np.meshgrid(g, g, indexing="ij")
    pts = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    return pts, np.tile([0.0, 0.0, 1.0], (len(pts), 1))


def test_merged_samples_keep_the_film_where_the_nozzle_pivots(monkeypatch):
    pts, nrm = _plate()
    s = _pivot_samples()
    merged = film_thickness(s, pts, nrm, P)
    monkeypatch.setattr(dep_mod, "coalesce", lambda samples, h, *a, **k: (samples, h))  # the plain sum
    plain = film_thickness(s, pts, nrm, P)
    assert plain.max() > 0
    assert np.abs(merged - plain).max() <= MERGE_TOL * plain.max()


def test_ik_of_one_branch_equals_that_branch_of_all():
    q = np.random.default_rng(4).uniform(-np.pi, np.pi, (500, 6))
    T = fk(q)
    full = ik(T)
    for b in (0, 3, 5, 6):
        one = ik(T, branches=(b,))
        same = np.isfinite(full[:, b]).all(axis=1)
        assert np.array_equal(np.isfinite(one[:, b]).all(axis=1), same) and same.sum() > 100
        assert np.abs(one[same, b] - full[same, b]).max() < IK_TOL
        others = [k for k in range(8) if k != b]
        assert np.all(np.isnan(one[:, others]))


def _ring_path(n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """Nozzle tips on a ring 35 mm above the upper station's floor of spray, pointing down (base_link)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    xyz = np.column_stack([0.55 + 0.12 * np.cos(t), -0.20 + 0.05 * np.sin(t), np.full(n, 0.215)])
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))  # 180 deg about x: nozzle +z down
    return xyz, quat


@pytest.mark.parametrize("prefer", [None, 0, 7])
def test_warm_started_path_solve_is_valid(prefer):
    xyz, quat = _ring_path()
    cfg = RobotConfig()
    cold = solve_path(xyz, quat, cfg)
    got = solve_path(xyz, quat, cfg, prefer=cold.branch if prefer is None else prefer)
    T = fk(got.q) @ cfg.T_flange_tool
    assert np.abs(T[:, :3, 3] - xyz).max() < 1e-9
    assert np.abs(T[:, :3, 2] - np.array([0.0, 0.0, -1.0])).max() < 1e-9
    assert got.min_sin_q5 >= cfg.min_sin_q5
    if prefer is None:  # its own branch preferred: the same solution
        assert got.branch == cold.branch and np.allclose(got.q, cold.q)


def test_line_probes_lie_just_beyond_the_bite_line():
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 40000, seed=21, noise_mm=0.0)
    region = upper_region(pts, pair.bite_line, nrm)
    probes = line_probes(region, pts, nrm, (0.25e-3, 2e-3), 0.5e-3)
    assert len(probes.points) > 200
    assert np.all(probes.signed <= -0.25e-3) and np.all(probes.signed >= -2e-3)
    from scipy.spatial import cKDTree

    from gluecell.pathplan.geom import resample_polyline

    true_d = cKDTree(resample_polyline(pair.bite_line, 0.05e-3)).query(probes.points)[0]
    assert np.abs(-probes.signed - true_d).max() < PROBE_TOL
    # beyond the line is below it in base_link (the upper lies bottom-up): the nearest line point is higher
    j = cKDTree(pair.bite_line).query(probes.points)[1]
    assert np.mean(probes.points[:, 2] < pair.bite_line[j, 2]) > 0.95
    assert np.all(np.einsum("ij,ij->i", probes.normals, nrm[cKDTree(pts).query(probes.points)[1]]) > 0.9)


def test_line_probes_follow_the_regions_bite_margin():
    from gluecell.pathplan.region import RegionParams

    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 40000, seed=21, noise_mm=0.0)
    region = upper_region(pts, pair.bite_line, nrm, RegionParams(bite_margin_mm=1.0))
    probes = line_probes(region, pts, nrm, (0.25e-3, 2e-3), 0.5e-3)
    assert np.all(probes.signed <= -0.25e-3) and np.all(probes.signed >= -2e-3)
    from scipy.spatial import cKDTree

    j = cKDTree(pair.bite_line).query(probes.points)[1]
    inside = probes.points[:, 2] > pair.bite_line[j, 2]  # between the line and the margin: probed too
    assert inside.sum() > 100 and np.mean(probes.signed[inside] >= -1.0e-3 - PROBE_TOL) > 0.95


def test_first_ring_is_filled_across_a_scan_hole_beside_the_line():
    from scipy.spatial import cKDTree

    from gluecell.pathplan.geom import resample_polyline
    from gluecell.pathplan.planners import ring_at

    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 40000, seed=21, noise_mm=0.0)
    centre = pair.bite_line[90]  # on a long side: a 30 mm hole in the scan beside the line
    hole = np.linalg.norm(pts - centre, axis=1) < 0.015
    region = upper_region(pts[~hole], pair.bite_line, nrm[~hole])
    gap = ring_at(region, 2e-3, 3e-3, 2e-3)[0]
    filled = ring_at(region, 2e-3, 3e-3, 2e-3, fill=0.04)[0]

    def largest_step(c):
        return np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1).max()

    whole = ring_at(upper_region(pts, pair.bite_line, nrm), 2e-3, 3e-3, 2e-3)[0]  # no hole: the ring's own steps
    assert largest_step(gap) > 0.02 and largest_step(filled) <= 1.2 * largest_step(whole)
    d = cKDTree(resample_polyline(pair.bite_line, 0.1e-3)).query(filled)[0]
    near_hole = np.linalg.norm(filled - centre, axis=1) < 0.012
    assert near_hole.sum() >= 5 and np.abs(d[near_hole] - 2e-3).max() < 0.5e-3  # on the ring's offset


def test_line_probes_reach_the_line_where_the_scan_has_no_points_there():
    """A scan with no point in the first 1.5 mm beyond the line (its random points leave such holes: on the real
    boot the worst glue lay 2.4 mm from any) still gets probes there, on the surface, with the surface's normal."""
    from scipy.spatial import cKDTree

    from gluecell.pathplan.geom import resample_polyline

    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 40000, seed=21, noise_mm=0.0)
    fine = resample_polyline(pair.bite_line, 0.05e-3)
    d = cKDTree(fine).query(pts)[0]
    j = cKDTree(pair.bite_line).query(pts)[1]
    hole = (pts[:, 2] < pair.bite_line[j, 2]) & (d < 1.5e-3)  # beyond the line (below it), within 1.5 mm
    pts, nrm = pts[~hole], nrm[~hole]
    region = upper_region(pts, pair.bite_line, nrm)
    probes = line_probes(region, pts, nrm, (0.25e-3, 2e-3), 0.5e-3)
    close = probes.signed > -1.25e-3
    assert close.sum() > 100
    dense, dense_n = pair.sample("upper", 400_000, seed=22, noise_mm=0.0)
    k = cKDTree(dense).query(probes.points[close])[1]
    off_surface = np.abs(np.einsum("ij,ij->i", probes.points[close] - dense[k], dense_n[k]))
    assert np.percentile(off_surface, 95) < 0.1e-3
    assert np.all(np.einsum("ij,ij->i", probes.normals[close], dense_n[k]) > 0.9)
    true_d = cKDTree(fine).query(probes.points[close])[0]
    assert np.abs(-probes.signed[close] - true_d).max() < PROBE_TOL
