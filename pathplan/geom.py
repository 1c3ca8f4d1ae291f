"""Small geometry helpers on numpy arrays (points are (n, 3) float64 metres in one frame)."""

from __future__ import annotations

import numpy as np

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
]


def unit(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` scaled to unit length (zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-15)


def knn(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest neighbours of every point (self excluded): (n, k) each."""
    from scipy.spatial import cKDTree

    k = min(k, len(points) - 1)
    d, i = cKDTree(points).query(points, k=k + 1)
    return d[:, 1:], i[:, 1:]


def voxel_downsample(
    points: np.ndarray, voxel: float, normals: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean point (and renormalised mean normal) per cubic voxel of edge ``voxel`` metres.

    Returns points (m, 3) sorted by voxel key (deterministic) and normals (m, 3) or None.
    """
    pts = np.asarray(points, dtype=np.float64)
    _, inv, counts = np.unique(row_keys(np.floor(pts / voxel).astype(np.int64)), return_inverse=True,
                               return_counts=True)  # fmt: skip
    inv = inv.ravel()

    def sums(x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.bincount(inv, weights=x[:, c], minlength=len(counts)) for c in range(3)])

    out = sums(pts) / counts[:, None]
    nrm = None if normals is None else unit(sums(np.asarray(normals, dtype=np.float64)))
    return out, nrm


def row_keys(keys: np.ndarray) -> np.ndarray:
    """One int64 per row of integer grid ``keys`` (n, 3), ordered as the rows are lexicographically (so
    ``np.unique`` on it gives the same order as ``np.unique(keys, axis=0)``, much faster)."""
    k = np.asarray(keys, dtype=np.int64)
    if len(k) == 0:
        return np.zeros(0, dtype=np.int64)
    k = k - k.min(axis=0)
    span = k.max(axis=0) + 1
    return (k[:, 0] * span[1] + k[:, 1]) * span[2] + k[:, 2]


def estimate_normals(points: np.ndarray, k: int = 12, orient_to: np.ndarray | None = None) -> np.ndarray:
    """PCA normals from ``k`` neighbours, oriented away from ``orient_to`` (default: the centroid).

    Args:
        points: (n, 3) float64.
        orient_to: (3,) point the normals must point away from.
    Returns:
        (n, 3) float64 unit normals.
    """
    pts = np.asarray(points, dtype=np.float64)
    _, idx = knn(pts, k)
    nb = pts[idx] - pts[idx].mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", nb, nb)
    _, vecs = np.linalg.eigh(cov)
    n = vecs[:, :, 0]
    ref = pts.mean(axis=0) if orient_to is None else np.asarray(orient_to, dtype=np.float64)
    flip = np.einsum("ij,ij->i", n, pts - ref) < 0
    n[flip] *= -1
    return unit(n)


def polyline_gaps(line: np.ndarray, closed: bool = True) -> np.ndarray:
    """Segment lengths of a polyline, (m,) for closed (includes last -> first) or (m-1,)."""
    line = np.asarray(line, dtype=np.float64)
    nxt = np.roll(line, -1, axis=0) if closed else line[1:]
    seg = np.linalg.norm(nxt - (line if closed else line[:-1]), axis=1)
    return seg


def resample_polyline(line: np.ndarray, spacing: float, closed: bool = True) -> np.ndarray:
    """Points at uniform arc-length ``spacing`` (metres) along a polyline; (k, 3), k >= 2."""
    line = np.asarray(line, dtype=np.float64)
    pts = np.vstack([line, line[:1]]) if closed else line
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-12])
    pts = pts[keep]
    s = np.concatenate([[0.0], np.cumsum(seg[seg > 1e-12])])
    total = s[-1]
    if total <= 0:
        return line[:2].copy() if len(line) >= 2 else np.repeat(line, 2, axis=0)
    n = max(round(total / spacing), 2 if not closed else 3)
    si = np.linspace(0.0, total, n, endpoint=not closed)
    return np.column_stack([np.interp(si, s, pts[:, j]) for j in range(3)])


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

    One pass over the polygon's edges, vectorised over the points (no matplotlib import on the hot path).
    """
    xy = np.asarray(xy, dtype=np.float64)
    a = np.asarray(poly, dtype=np.float64)[:, :2]
    b = np.roll(a, -1, axis=0)
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    for (x0, y0), (x1, y1) in zip(a, b):
        if y0 == y1:
            continue
        cross = (y0 > y) != (y1 > y)
        inside ^= cross & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0))
    return inside
