"""Fast planning (issue 15): the compiled IK and roll search give the same numbers as the array versions they
replace (the arrays stay as the fallback and the reference), so the speed-up changes no plan."""

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
