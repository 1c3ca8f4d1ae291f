"""Small geometry helpers on numpy arrays (points are (n, 3) float64 metres in one frame).

The shared ones (kNN, voxel down-sampling, normals, resampling) live in :mod:`gluecell.core.geometry` and are
re-exported here. :func:`unit` is the core one with zero-length rows kept zero by default (the planner's binned
means mask empty bins themselves); NaN/inf input always raises (it used to come back as a silent zero vector).
"""

from __future__ import annotations

import numpy as np

from gluecell.core import geometry as _g
from gluecell.core.geometry import knn, resample_polyline, row_keys, voxel_downsample
from gluecell.core.geometry import pca_normals as estimate_normals

__all__ = [
    "points_in_polygon",
    "row_keys",
    "voxel_downsample",
    "estimate_normals",
    "knn",
    "polyline_gaps",
    "resample_polyline",
    "polyline_tangents",
    "unit",
    "quat_from_matrix",
    "matrix_from_quat",
    "frames_from_axis",
    "interp_rows",
]


def unit(v: np.ndarray, *, what: str = "vector", allow_zero: bool = True) -> np.ndarray:
    """Rows of ``v`` scaled to unit length; zero rows stay zero unless ``allow_zero`` is False.

    Raises:
        ValidationError: NaN/inf in ``v`` (always), or a zero row with ``allow_zero=False``.
    """
    return _g.unit(v, what=what, allow_zero=allow_zero)


def polyline_gaps(line: np.ndarray, closed: bool = True) -> np.ndarray:
    """Segment lengths of a polyline, (m,) for closed (includes last -> first) or (m-1,)."""
    line = np.asarray(line, dtype=np.float64)
    nxt = np.roll(line, -1, axis=0) if closed else line[1:]
    seg = np.linalg.norm(nxt - (line if closed else line[:-1]), axis=1)
    return seg


def polyline_tangents(line: np.ndarray, closed: bool = True) -> np.ndarray:
    """Unit tangents by central differences, (m, 3)."""
    line = np.asarray(line, dtype=np.float64)
    if closed:
        return unit(np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0))
    return unit(np.gradient(line, axis=0))


def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) -> unit quaternions (n, 4) x y z w, w >= 0."""
    from scipy.spatial.transform import Rotation

    q = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    q = np.atleast_2d(q)
    q[q[:, 3] < 0] *= -1
    return q


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (n, 4) x y z w -> rotation matrices (n, 3, 3)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(np.atleast_2d(np.asarray(q, dtype=np.float64))).as_matrix()


def frames_from_axis(z: np.ndarray, x_hint: np.ndarray) -> np.ndarray:
    """Right-handed frames with +z = ``z`` and +x as close as possible to ``x_hint``: (n, 3, 3), columns x y z."""
    z = unit(z)
    x = x_hint - np.einsum("ij,ij->i", x_hint, z)[:, None] * z
    bad = np.linalg.norm(x, axis=1) < 1e-6
    if np.any(bad):  # hint parallel to the axis: any perpendicular will do
        alt = np.where(np.abs(z[bad, 0:1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        x[bad] = alt - np.einsum("ij,ij->i", alt, z[bad])[:, None] * z[bad]
    x = unit(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=2)


def points_in_polygon(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd test (n,) bool: which points ``xy`` (n, 2) lie inside the closed polygon ``poly`` (m, 2).

    One pass over the polygon's edges (no matplotlib import on the hot path); an edge is tested only against the
    points whose y it spans (found by bisection in the points sorted by y), not against all of them.
    """
    xy = np.asarray(xy, dtype=np.float64)
    a = np.asarray(poly, dtype=np.float64)[:, :2]
    b = np.roll(a, -1, axis=0)
    x, y = xy[:, 0], xy[:, 1]
    order = np.argsort(y, kind="stable")
    ys = y[order]
    inside = np.zeros(len(xy), dtype=bool)
    for (x0, y0), (x1, y1) in zip(a, b):
        if y0 == y1:
            continue
        # (y0 > y) != (y1 > y)  <=>  min(y0, y1) <= y < max(y0, y1)
        i0, i1 = np.searchsorted(ys, (min(y0, y1), max(y0, y1)), side="left")
        idx = order[i0:i1]
        inside[idx] ^= x[idx] < x0 + (y[idx] - y0) * (x1 - x0) / (y1 - y0)
    return inside


def interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, fp[:, j])`` for every column j of ``fp`` (k, c) at once: (len(x), c).

    The same arithmetic as numpy's own loop, number for number (its segment search, its slope and its rules at
    the ends, at sample points and across zero-length segments), so a path resampled with it is the same as one
    resampled a column at a time (tests/pathplan/test_planlat_split.py); one search instead of one per column.
    ``xp`` must be increasing (equal neighbours allowed) and ``x`` free of NaN.
    """
    x, xp, fp = np.asarray(x, np.float64), np.asarray(xp, np.float64), np.asarray(fp, np.float64)
    k = len(xp)
    if k == 1:
        return np.repeat(fp[:1], len(x), axis=0)
    j = np.searchsorted(xp, x, side="right") - 1  # the last sample at or before x, as numpy's search finds it
    inner = (j >= 0) & (j < k - 1)
    jj = np.clip(j, 0, k - 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (fp[jj + 1] - fp[jj]) / (xp[jj + 1] - xp[jj])[:, None]
        out = slope * (x - xp[jj])[:, None] + fp[jj]
        bad = np.isnan(out)
        if bad.any():  # numpy tries the other end of the segment, then a flat segment's value
            alt = slope * (x - xp[jj + 1])[:, None] + fp[jj + 1]
            alt = np.where(np.isnan(alt) & (fp[jj] == fp[jj + 1]), fp[jj], alt)
            out = np.where(bad, alt, out)
    exact = (inner & (xp[jj] == x))[:, None]  # at a sample: its value
    out = np.where(exact, fp[jj], out)
    out = np.where((j < 0)[:, None], fp[:1], out)
    out = np.where((j >= k - 1)[:, None] & (x > xp[-1])[:, None], fp[-1:], out)
    return np.where(((j == k - 1) & (x <= xp[-1]))[:, None], fp[-1:], out)
