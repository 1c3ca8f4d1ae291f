"""points_in_polygon (made faster for planning latency: each edge tests only the points whose y it spans) gives
exactly the all-points-per-edge even-odd test, ties with vertex heights and NaN included."""

from __future__ import annotations

import numpy as np

from gluecell.pathplan.geom import points_in_polygon


def _every_point_per_edge(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a = np.asarray(poly, dtype=np.float64)[:, :2]
    b = np.roll(a, -1, axis=0)
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    for (x0, y0), (x1, y1) in zip(a, b):
        if y0 == y1:
            continue
        inside ^= ((y0 > y) != (y1 > y)) & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0))
    return inside


def test_points_in_polygon_equals_the_every_point_test():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    for wobble in (0.0, 0.2, 0.45):  # convex, wavy, strongly non-convex
        poly = np.column_stack([0.14 * np.cos(t) * (1 + wobble * np.sin(5 * t)), 0.05 * np.sin(t)])
        poly[10:14, 1] = poly[10, 1]  # a horizontal stretch
        xy = rng.uniform([-0.2, -0.07], [0.2, 0.07], (8000, 2))
        xy[:200, 1] = poly[rng.integers(0, len(poly), 200), 1]  # heights of vertices exactly
        xy[200:210, 0] = poly[:10, 0]
        xy[200:210, 1] = poly[:10, 1]  # the vertices themselves
        xy[300, 1] = np.nan
        got = points_in_polygon(xy, poly)
        assert np.array_equal(got, _every_point_per_edge(xy, poly))
        assert 0 < got.sum() < len(got)
