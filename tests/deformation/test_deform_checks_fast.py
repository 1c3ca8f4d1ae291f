"""The scan checks' faster arithmetic gives the former values (issue 14's deformation latency)."""

from __future__ import annotations

import numpy as np

from gluecell.deformation import inputs


def _covered_sets(sub: np.ndarray, full: np.ndarray, cell: float = 0.005) -> float:
    """The former ``_covered_fraction``: occupied plan cells as sorted sets."""
    if len(sub) == 0:
        return 0.0
    lo = full[:, :2].min(axis=0)
    key = lambda p: np.unique(np.floor((p[:, :2] - lo) / cell).astype(np.int64) @ np.array([1, 1 << 20]))  # noqa: E731
    cf, cs = key(full), key(sub)
    return len(np.intersect1d(cs, cf)) / max(len(cf), 1)


def _extent_two_calls(points: np.ndarray) -> tuple[float, float]:
    """The former ``_plan_extent`` (two percentile calls over both columns)."""
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov(xy.T))
    proj = xy @ vecs
    ext = np.percentile(proj, 99.5, axis=0) - np.percentile(proj, 0.5, axis=0)
    return float(ext.max()), float(ext.min())


def test_covered_fraction_counts_the_same_cells(flat_pair) -> None:
    rng = np.random.default_rng(2)
    up = flat_pair[0].points
    top = up[up[:, 2] > np.percentile(up[:, 2], 60)]
    stray = np.vstack([up, [[5.0, -3.0, 0.0]]])  # a point metres away: a large, still small enough grid
    cases = [(top, up), (up, up), (top[:1], up), (up[:0], up), (top, stray),
             (top + np.array([0.4, 0.0, 0.0]), up),  # cells outside the full cloud's grid: the set path
             (rng.uniform(0, 0.3, (500, 3)), rng.uniform(0, 0.3, (4000, 3)))]  # fmt: skip
    for sub, full in cases:
        assert inputs._covered_fraction(sub, full) == _covered_sets(sub, full)
    assert 0.3 < inputs._covered_fraction(top, up) < 1.0


def test_plan_extent_is_the_two_percentile_calls(flat_pair) -> None:
    for part in flat_pair[:2]:
        assert inputs._plan_extent(part.points) == _extent_two_calls(part.points)
    P = np.random.default_rng(4).normal(size=(3001, 3)) * [0.1, 0.03, 0.01]
    assert inputs._plan_extent(P) == _extent_two_calls(P)


def test_column_min_max_are_numpys() -> None:
    from gluecell.deformation.icpkernel import col_max, col_min

    rng = np.random.default_rng(5)
    for a in (rng.normal(size=(2000, 3)), rng.integers(-50, 50, size=(300, 2)), rng.normal(size=(1, 3)),
              np.array([[0.0, np.nan, 1.0], [2.0, 3.0, -1.0]])):  # fmt: skip
        for fast, ref in ((col_min(a), a.min(axis=0)), (col_max(a), a.max(axis=0))):
            assert fast.dtype == ref.dtype and np.array_equal(fast, ref, equal_nan=True)


def test_icp_stop_distance_is_numpys() -> None:
    """The ICP's largest point move, compiled: bit-equal to numpy's row sums (no fused multiply-add)."""
    from gluecell.deformation.icpkernel import max_move

    rng = np.random.default_rng(6)
    for n in (1, 7, 9000):
        for scale in (1e-9, 1e-6, 1e-3, 1.0):
            a = rng.normal(size=(n, 3)) * 0.1
            b = a + rng.normal(size=(n, 3)) * scale
            assert max_move(b, a) == float(np.sqrt(np.max(np.sum((b - a) ** 2, axis=1))))
