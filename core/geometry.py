"""The one geometry module: unit vectors, kNN, voxel down-sampling, PCA normals, closed-curve resampling,
point-to-polyline distance, look-at frames, and the project's one definition of bite-line error.

Points are (n, 3) float64 metres in one frame. Every stage package uses these (``pathplan.geom`` and
``deformation.attach_pose`` re-export the ones they always had), so a distance or a resampling means the same
thing in the planner, the predictor, the bench and the tests.

**Bite-line error** (:func:`bite_line_error`), the one measuring stick of the project: for one pair, the
distance from every point of the predicted line to the true line *and* from every point of the true line to
the predicted line (both closed polylines; distance to the nearest point of the other line's segments, not
its vertices), pooled; the pair's error is the **p95** and the **max** of these distances (metres inside,
millimetres in reports). Both directions, so a stretch of the true line that the prediction misses counts as
much as a predicted stretch where there is no line. Unsigned: whether the glue lands above or below the line
is judged by the spray metrics, not by this figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ValidationError

__all__ = [
    "unit",
    "knn",
    "row_keys",
    "voxel_downsample",
    "pca_normals",
    "closed_resample",
    "resample_polyline",
    "polyline_distance",
    "BiteLineError",
    "bite_line_error",
    "look_at",
]


def unit(v: np.ndarray, *, what: str = "vector", allow_zero: bool = False) -> np.ndarray:
    """Rows of ``v`` (..., 3) scaled to unit length.

    Args:
        v: (..., d) float array.
        what: name used in the error message.
        allow_zero: zero-length rows stay zero instead of raising (for callers that mask them themselves).

    Raises:
        ValidationError: ``v`` holds NaN or inf, or (unless ``allow_zero``) a row of zero length, which has
            no direction: a silent zero vector downstream reads as "no offset" or "no normal".
    """
    v = np.asarray(v, dtype=np.float64)
    n = np.sqrt(np.add.reduce(v * v, axis=-1, keepdims=True))  # np.linalg.norm's own sum, without its overhead
    # a NaN/inf in v makes its row's length NaN/inf, so v itself is scanned only then (and on an overflow)
    if not np.all(np.isfinite(n)) and not np.all(np.isfinite(v)):
        raise ValidationError(f"{what}: {int(np.sum(~np.isfinite(v)))} non-finite values (NaN/inf) have no "
                              "direction", what=what)  # fmt: skip
    zero = n <= 1e-15
    if np.any(zero) and not allow_zero:
        raise ValidationError(f"{what}: {int(zero.sum())} zero-length rows have no direction", what=what)
    return np.divide(v, n, out=np.zeros_like(v), where=~zero)


def knn(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest neighbours of every point (self excluded): (n, k) each."""
    from scipy.spatial import cKDTree

    p = np.asarray(points, dtype=np.float64)
    k = max(1, min(k, len(p) - 1))
    d, i = cKDTree(p).query(p, k=k + 1, workers=2)  # the same neighbours whatever the worker count
    return d[:, 1:], i[:, 1:]


def row_keys(keys: np.ndarray) -> np.ndarray:
    """One int64 per row of integer grid ``keys`` (n, 3), ordered as the rows are lexicographically (so
    ``np.unique`` on it gives the same order as ``np.unique(keys, axis=0)``, much faster)."""
    k = np.asarray(keys, dtype=np.int64)
    if len(k) == 0:
        return np.zeros(0, dtype=np.int64)
    k = k - k.min(axis=0)
    span = k.max(axis=0) + 1
    return (k[:, 0] * span[1] + k[:, 1]) * span[2] + k[:, 2]


def voxel_downsample(
    points: np.ndarray, voxel: float, normals: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean point (and renormalised mean normal) per cubic voxel of edge ``voxel`` metres.

    Returns points (m, 3) sorted by voxel key (deterministic) and normals (m, 3) or None. A voxel whose
    normals cancel keeps a zero normal (the caller decides).
    """
    pts = np.asarray(points, dtype=np.float64)
    _, inv, counts = np.unique(row_keys(np.floor(pts / voxel).astype(np.int64)), return_inverse=True,
                               return_counts=True)  # fmt: skip
    inv = inv.ravel()

    def sums(x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.bincount(inv, weights=x[:, c], minlength=len(counts)) for c in range(3)])

    out = sums(pts) / counts[:, None]
    nrm = None if normals is None else unit(sums(np.asarray(normals, dtype=np.float64)), what="voxel normals",
                                            allow_zero=True)  # fmt: skip
    return out, nrm


def pca_normals(points: np.ndarray, k: int = 12, orient_to: np.ndarray | None = None) -> np.ndarray:
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
    return unit(n, what="normals")


def closed_resample(poly: np.ndarray, step: float) -> np.ndarray:
    """Resample a closed (m, d) polyline at arc-length spacing <= ``step``; the last point is not repeated."""
    poly = np.asarray(poly, dtype=np.float64)
    closed = np.vstack([poly, poly[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(np.ceil(s[-1] / step)), 8)
    q = np.linspace(0.0, s[-1], n, endpoint=False)
    return np.column_stack([np.interp(q, s, closed[:, j]) for j in range(poly.shape[1])])


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


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points ``p`` (..., 3) to segments ``a``-``b`` (..., 3), broadcast."""
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=-1) / np.maximum(np.sum(ab * ab, axis=-1), 1e-30), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def _finite_points(name: str, x: np.ndarray, min_rows: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) < min_rows:
        raise ValidationError(f"{name}: expected ({'m' if min_rows > 1 else 'n'}, 3) points with at least "
                              f"{min_rows} rows, got shape {x.shape}", what=name)  # fmt: skip
    if not np.all(np.isfinite(x)):
        raise ValidationError(f"{name}: {int(np.sum(~np.isfinite(x).all(axis=1)))} points are NaN/inf", what=name)
    return x


def polyline_distance(points: np.ndarray, line: np.ndarray, closed: bool = True, step: float = 5e-5) -> np.ndarray:
    """(n,) distance, metres, of each point to the polyline ``line`` (m, 3) (closed: last -> first too).

    Distance to the segments, not to the vertices, for any vertex spacing: the segment owning the nearest point
    of the line sampled every ``step`` metres, and its two neighbours, are measured exactly; the result is never
    more than ``step / 2`` over the true distance (and exact wherever the nearest segment is among those three).

    Raises:
        ValidationError: NaN/inf points or line, or a line of fewer than 2 points.
    """
    from scipy.spatial import cKDTree

    p = _finite_points("points", points, 0)
    ln = _finite_points("line", line, 2)
    a = ln if closed else ln[:-1]
    b = np.roll(ln, -1, axis=0) if closed else ln[1:]
    if len(p) == 0:
        return np.zeros(0)
    reps = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / step).astype(np.int64), 1)
    owner = np.repeat(np.arange(len(a)), reps)
    t = np.arange(len(owner)) - np.repeat(np.cumsum(reps) - reps, reps)
    fine = a[owner] + (t / reps[owner])[:, None] * (b[owner] - a[owner])
    _, j = cKDTree(fine).query(p)
    cand = owner[j][:, None] + np.array([-1, 0, 1])
    cand = cand % len(a) if closed else np.clip(cand, 0, len(a) - 1)
    out = np.empty(len(p))
    for c in range(0, len(p), 65536):  # bounded memory
        sl = slice(c, c + 65536)
        out[sl] = _segment_distance(p[sl, None, :], a[cand[sl]], b[cand[sl]]).min(axis=1)
    return out


@dataclass(frozen=True)
class BiteLineError:
    """The bite-line error of one pair (see the module docstring): p95 and max, metres, of the pooled
    distances ``to_true`` (each predicted point to the true line) and ``to_pred`` (each true point to the
    predicted line)."""

    p95_m: float
    max_m: float
    to_true: np.ndarray
    to_pred: np.ndarray

    @property
    def p95_mm(self) -> float:
        """p95 in millimetres (reports)."""
        return self.p95_m * 1e3

    @property
    def max_mm(self) -> float:
        """max in millimetres (reports)."""
        return self.max_m * 1e3


def bite_line_error(pred_line: np.ndarray, true_line: np.ndarray) -> BiteLineError:
    """The project's one bite-line error of a pair: both directions, closed polylines, p95 and max.

    Args:
        pred_line: (m, 3) float64 closed predicted (or marked, measured) bite line, metres.
        true_line: (k, 3) float64 closed true bite line, same frame.

    Raises:
        ValidationError: NaN/inf or fewer than 2 points in either line.
    """
    to_true = polyline_distance(pred_line, true_line)
    to_pred = polyline_distance(true_line, pred_line)
    d = np.concatenate([to_true, to_pred])
    return BiteLineError(float(np.percentile(d, 95)), float(d.max()), to_true, to_pred)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """4x4 pose (camera to world) of a camera at ``eye`` whose +z looks at ``target`` (OpenCV: +y down the
    image, +x right), with the image's "up" (-y) as close as possible to ``up``.

    Raises:
        ValidationError: ``eye`` equals ``target``, or the view direction is parallel to ``up``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = unit(np.asarray(target, dtype=np.float64) - eye, what="view direction")
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    x = unit(x, what="look_at: view direction parallel to up")
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, y, z])
    T[:3, 3] = eye
    return T
