"""The one geometry module and the one bite-line error (issue 13, item 6).

Before, the same error was computed five ways: to the nearest *vertex* of the true line, one direction only
(the calibration), to a densified polyline (the sim, the spray scorer), or to the 6 nearest vertices' segments
(the bench). On a line with uneven vertex spacing these disagree by up to half a segment.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import ValidationError
from gluecell.core.geometry import (
    bite_line_error,
    closed_resample,
    look_at,
    polyline_distance,
    unit,
    voxel_downsample,
)

#: polyline_distance is exact to within step/2 (default 0.05 mm); on these lines it is exact to round-off.
EXACT_TOL_M = 1e-9


def _brute(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line, np.roll(line, -1, axis=0)
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = np.clip(np.sum(ap * ab, axis=2) / np.sum(ab * ab, axis=1), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=2).min(axis=1)


def _brute_open(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line[:-1], line[1:]
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = np.clip(np.sum(ap * ab, axis=2) / np.sum(ab * ab, axis=1), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=2).min(axis=1)


def _ellipse(n: int, seed: int = 0, uneven: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    th = np.sort(rng.uniform(0, 2 * np.pi, n)) if uneven else np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([0.12 * np.cos(th), 0.05 * np.sin(th), 0.003 * np.sin(3 * th)])


def test_polyline_distance_is_to_the_segments_not_the_vertices():
    line = _ellipse(120)  # sparse and uneven: segments up to ~15 mm
    rng = np.random.default_rng(1)
    pts = line[rng.integers(0, len(line), 400)] + rng.normal(scale=0.01, size=(400, 3))
    assert np.allclose(polyline_distance(pts, line), _brute(pts, line), atol=EXACT_TOL_M)
    # a point on a segment's middle is 0 away, not half a segment (the calibration's old vertex distance)
    mid = 0.5 * (line[10] + line[11])
    assert polyline_distance(mid[None], line)[0] == pytest.approx(0.0, abs=EXACT_TOL_M)
    # open polyline: the closing segment does not count
    end = 0.5 * (line[-1] + line[0])
    got = polyline_distance(end[None], line, closed=False)[0]
    assert got == pytest.approx(_brute_open(end[None], line)[0], abs=EXACT_TOL_M)
    assert got > 0.4 * np.linalg.norm(line[-1] - line[0])


def test_bite_line_error_counts_both_directions():
    true = _ellipse(700, uneven=False)
    shifted = true + np.array([0.0, 0.0, 0.8e-3])
    e = bite_line_error(shifted, true)
    assert e.p95_mm == pytest.approx(0.8, abs=1e-3) and e.max_mm == pytest.approx(0.8, abs=1e-3)  # z slope: < 0.8
    # a prediction that misses a stretch of the line: each of its points lies on the true line (one-way 0 mm),
    # but the true stretch it misses is far from it, and the error says so
    half = true[: len(true) // 2]
    e = bite_line_error(half, true)
    assert e.to_true.max() == pytest.approx(0.0, abs=EXACT_TOL_M)
    assert e.max_mm > 50.0 and e.p95_m == pytest.approx(np.percentile(np.r_[e.to_true, e.to_pred], 95))


def test_geometry_refuses_nan_and_directionless_input():
    line = _ellipse(50)
    with pytest.raises(ValidationError, match="NaN"):
        polyline_distance(np.array([[np.nan, 0.0, 0.0]]), line)
    with pytest.raises(ValidationError, match="line"):
        bite_line_error(line, line[:1])
    with pytest.raises(ValidationError, match="zero-length"):
        unit(np.array([[0.0, 0.0, 0.0]]))
    assert np.allclose(unit(np.array([[0.0, 0.0, 0.0], [0, 3.0, 4.0]]), allow_zero=True), [[0, 0, 0], [0, 0.6, 0.8]])


def test_resample_voxels_and_look_at():
    line = _ellipse(60)
    fine = closed_resample(line, 1e-3)
    assert np.linalg.norm(np.roll(fine, -1, axis=0) - fine, axis=1).max() <= 1e-3 + 1e-12
    assert polyline_distance(fine, line).max() < EXACT_TOL_M
    pts, nrm = voxel_downsample(np.array([[0.0001, 0, 0], [0.0002, 0, 0], [0.0031, 0, 0]]), 1e-3,
                                np.array([[0, 0, 1.0], [0, 0, 1.0], [1.0, 0, 0]]))  # fmt: skip
    assert len(pts) == 2 and np.allclose(pts[0], [0.00015, 0, 0]) and np.allclose(nrm, [[0, 0, 1], [1, 0, 0]])
    T = look_at([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], up=(1.0, 0.0, 0.0))
    assert np.allclose(T[:3, 2], [0, 0, -1]) and np.allclose(T[:3, 1], [-1, 0, 0])  # +z ahead, -y (image up) = up
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    with pytest.raises(ValidationError):
        look_at([0.0, 0.0, 1.0], [0.0, 0.0, 1.0])
