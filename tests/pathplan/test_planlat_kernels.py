"""Fast planning (issue 15): the compiled IK and roll search, and the k-d trees shared within a region build, give
the same numbers as what they replace (the array versions stay as the fallback and the reference): no plan changes."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan import ikkernel, rollsearch
from gluecell.pathplan.geom import frames_from_axis, quat_from_matrix
from gluecell.pathplan.kinematics import DH, RobotConfig, _ik_arrays, fk, ik, solve_path

pytestmark = pytest.mark.skipif(not ikkernel.available(), reason="numba is a dependency; without it nothing is new")

#: The compiled closed form sums the 3x3 products left to right (einsum's order may differ): radians.
IK_TOL = 1e-9


@pytest.mark.parametrize("model", sorted(DH))
def test_compiled_ik_matches_the_arrays(model):
    rng = np.random.default_rng(11)
    T = fk(rng.uniform(-np.pi, np.pi, (3000, 6)), model)
    T[:200, :3, 3] *= 2.5  # out of reach: no solution on some or all branches
    d, a, _ = DH[model]
    for branches in (None, (3,), (0, 5, 6)):
        want = set(range(8) if branches is None else branches)
        ref = _ik_arrays(T, d, a, want)
        new = ik(T, model, branches)
        assert np.array_equal(np.isnan(ref), np.isnan(new)), "no solution on the same entries"
        ok = ~np.isnan(ref)
        assert 0.02 < 1 - ok.mean() < 1.0  # both kinds of entries are compared
        diff = np.abs((new - ref + np.pi) % (2 * np.pi) - np.pi)[ok]
        assert diff.max() < IK_TOL


@pytest.mark.parametrize("wrap", [True, False])
@pytest.mark.parametrize("max_step", [1, 2])
def test_compiled_roll_search_picks_the_same_rolls(wrap, max_step):
    cfg = RobotConfig()
    rng = np.random.default_rng(5 + max_step)
    m, K, B = 300, 24, 5
    cost = rng.uniform(1.0, 3.0, (m, K, B))
    cost[rng.random(cost.shape) < 0.2] = np.inf
    cost[:, :, 0] = np.inf  # a branch with no feasible node
    cost[:, :, 1] = 2.0  # ties everywhere: the first of equals must win in both
    sol = rng.uniform(-np.pi, np.pi, (m, K, B, 6))
    sol[rng.random(sol.shape) < 0.05] = np.nan
    xyz = np.cumsum(rng.normal(0.0, 2e-3, (m, 3)), axis=0)
    trans = rollsearch.motion_costs(sol, xyz, np.arange(-max_step, max_step + 1), cfg)
    for ref, new in (
        (rollsearch.roll_dp(cost, max_step, 0.05, trans, wrap=wrap),
         ikkernel.roll_search(cost, max_step, 0.05, sol, xyz, cfg, wrap)),
        (rollsearch.roll_dp(cost, max_step, 0.05, None, wrap=wrap),
         ikkernel.roll_search(cost, max_step, 0.05, None, xyz, cfg, wrap)),
    ):  # fmt: skip
        assert np.array_equal(ref[0], new[0])
        assert np.array_equal(ref[1], new[1])
        assert np.isinf(new[0][0]) and np.isfinite(new[0][1:]).all()


def test_solve_path_is_the_same_with_and_without_the_compiled_kernels(monkeypatch):
    """A ring round a part at the upper station (a tilted nozzle, the roll search on the full circle)."""
    n = 400
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    xyz = np.column_stack([0.55 + 0.09 * np.cos(th), -0.20 + 0.09 * np.sin(th), np.full(n, 0.17)])
    a = np.deg2rad(30.0)
    axis = np.column_stack([-np.cos(th) * np.cos(a), -np.sin(th) * np.cos(a), np.full(n, -np.sin(a))])
    quat = quat_from_matrix(frames_from_axis(axis, np.tile([0.0, 0.0, 1.0], (n, 1))))
    fast = solve_path(xyz, quat, RobotConfig())
    monkeypatch.setattr(ikkernel, "available", lambda: False)
    ref = solve_path(xyz, quat, RobotConfig())
    assert fast.branch == ref.branch
    assert np.array_equal(fast.roll, ref.roll)
    assert np.abs(fast.q - ref.q).max() < IK_TOL


@pytest.mark.parametrize("part", ["upper", "sole"])
@pytest.mark.parametrize("with_normals", [True, False])
def test_regions_with_shared_trees_are_the_regions_without(monkeypatch, part, with_normals):
    """One k-d tree per cloud for a whole region build (cloud.shared_trees) changes no point, normal or distance;
    flying points (the outlier check) and estimated normals (more tree users) included."""
    import contextlib

    from gluecell.pathplan import cloud, region
    from gluecell.pathplan.synthetic import make_synthetic_pair

    pair = make_synthetic_pair()
    pts, nrm = pair.sample(part, 20000, seed=3, noise_mm=0.2)
    rng = np.random.default_rng(4)
    fly = rng.choice(len(pts), 60, replace=False)
    pts = pts.copy()
    pts[fly] += nrm[fly] * 4e-3  # 4 mm off the surface
    nrm = nrm if with_normals else None

    def build():
        if part == "upper":
            return region.upper_region(pts, pair.bite_line, nrm)
        return region.sole_region(pts, nrm)

    fast = build()
    monkeypatch.setattr(region, "shared_trees", contextlib.nullcontext)
    ref = build()
    for key in ("points", "normals", "signed", "s", "boundary", "boundary_normals", "inward"):
        assert np.array_equal(getattr(fast, key), getattr(ref, key)), key
    assert len(fast.points) > 1000
    assert getattr(cloud._shared, "entries", None) is None  # nothing kept after the build


def test_shared_trees_tell_equal_clouds_from_different_ones():
    from gluecell.pathplan import cloud

    rng = np.random.default_rng(8)
    a = rng.normal(size=(500, 3))
    with cloud.shared_trees():
        t1 = cloud.kdtree(a)
        assert cloud.kdtree(a.copy()) is t1  # equal values: the same tree
        b = a.copy()
        b[7, 2] += 1e-12
        assert cloud.kdtree(b) is not t1  # one value differs: its own tree
        d, i = cloud.knn(b, 4)
        assert np.all(d[:, 0] == 0.0)
        assert np.array_equal(i[:, 0], np.arange(500))
        assert cloud.knn(b, 4)[1] is i
    assert cloud.kdtree(a) is not t1  # outside the block: built afresh


def test_compiled_node_costs_match_the_arrays(monkeypatch):
    from gluecell.pathplan import kinematics

    cfg = RobotConfig()
    rng = np.random.default_rng(2)
    q = rng.uniform(-np.pi, np.pi, (400, 6))
    q[:40, 4] = rng.uniform(-0.05, 0.05, 40)  # near the wrist singularity
    q[40:80, 2] = rng.uniform(-0.05, 0.05, 40)  # a stretched elbow
    flange = fk(q).reshape(100, 4, 4, 4)
    flange[:10, :, :3, 3] *= 2.5  # out of reach
    sol = ik(flange.reshape(-1, 4, 4)).reshape(100, 4, 8, 6)
    fast = kinematics._costs(sol, flange, cfg)
    monkeypatch.setattr(ikkernel, "available", lambda: False)
    ref = kinematics._costs(sol, flange, cfg)
    assert np.array_equal(fast[1], ref[1])
    assert set(np.unique(ref[1])) == {0, 1, 2}  # every reason occurs
    assert np.array_equal(fast[0], ref[0])
