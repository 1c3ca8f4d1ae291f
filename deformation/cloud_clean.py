"""Clean a raw point cloud from another scanner before the deformation step (issue 14, item 5).

A laser line profiler or a third-party scanner hands over one raw cloud: the part, the support it stands on
(a tray, the floor), and a few outliers (spurious returns a few millimetres off the surface). The cell's own
scans are cleaned by :mod:`gluecell.perception.clean` from depth frames; this is the equivalent for a bare cloud:

1. **Support**: the lowest horizontal layer of points is the support when it reaches out beyond the part on
   at least two sides (a sole's footbed, which is also flat, lies inside the part's outline and is kept).
2. **Outliers**: points whose distance to their ``k``-th neighbour is far above the cloud's typical spacing.
3. **Stray pieces**: pieces (neighbours within a few millimetres) holding under 0.5 % of the points go.

Every step reports how many points it removed; a cloud that is already clean passes through unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["clean_cloud", "SUPPORT_BAND_M", "SUPPORT_REACH_M"]

#: Half-thickness of the support layer (m): laser noise and the tray's flatness.
SUPPORT_BAND_M = 1.5e-3
#: How far the support must reach beyond the part's outline, on at least two sides, to be taken as support (m).
SUPPORT_REACH_M = 10e-3
#: Neighbour distance (m) that links points into one piece.
LINK_M = 4e-3


def _support_mask(pts: np.ndarray) -> np.ndarray:
    """True for points of the support layer (none when the lowest layer does not reach beyond the part)."""
    z = pts[:, 2]
    lo = np.percentile(z, 1.0)
    hist, edges = np.histogram(z[z < lo + 0.02], bins=np.arange(lo - 1e-3, lo + 0.021, 1e-3))
    if hist.sum() == 0:
        return np.zeros(len(pts), bool)
    big = np.flatnonzero(hist >= 0.02 * len(pts))  # the lowest well-filled layer (a footbed above it may be fuller)
    z0 = edges[int(big[0] if len(big) else np.argmax(hist))] + 0.5e-3
    layer = np.abs(z - z0) <= SUPPORT_BAND_M
    rest = z > z0 + SUPPORT_BAND_M
    if rest.sum() < 100 or layer.sum() < 100:
        return np.zeros(len(pts), bool)
    lmin, lmax = np.percentile(pts[layer, :2], 0.5, axis=0), np.percentile(pts[layer, :2], 99.5, axis=0)
    rmin, rmax = np.percentile(pts[rest, :2], 2.0, axis=0), np.percentile(pts[rest, :2], 98.0, axis=0)  # outliers
    sides = np.concatenate([rmin - lmin, lmax - rmax]) > SUPPORT_REACH_M
    return (z <= z0 + SUPPORT_BAND_M) if sides.sum() >= 2 else np.zeros(len(pts), bool)


def _outlier_mask(pts: np.ndarray, k: int = 6, factor: float = 4.0) -> np.ndarray:
    """True for points whose ``k``-th neighbour is more than ``factor`` times the median such distance away."""
    from scipy.spatial import cKDTree

    if len(pts) <= k:
        return np.zeros(len(pts), bool)
    d, _ = cKDTree(pts).query(pts, k=k + 1)
    dk = d[:, -1]
    return dk > factor * max(float(np.median(dk)), 1e-5)


def _large_pieces(pts: np.ndarray, share: float = 0.005) -> np.ndarray:
    """Boolean mask of the pieces of points (linked by :data:`LINK_M`) holding at least ``share`` of the points
    (a cup sole's rim and footbed are separate pieces to a camera above: its inner wall is not seen)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(pts).query_pairs(LINK_M, output_type="ndarray")
    from scipy.sparse import coo_matrix

    n = len(pts)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    counts = np.bincount(lab)
    return counts[lab] >= share * n


def clean_cloud(points: np.ndarray, normals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None,
                                                                                  dict[str, int]]:  # fmt: skip
    """(points, normals or None, counts removed per step) of the part in a raw cloud (base_link, metres)."""
    pts = np.asarray(points, dtype=np.float64)
    keep = np.ones(len(pts), bool)
    report = {"support": 0, "outliers": 0, "pieces": 0}
    if len(pts) < 200:
        return pts, normals, report
    sup = _support_mask(pts)
    keep &= ~sup
    report["support"] = int(sup.sum())
    idx = np.flatnonzero(keep)
    out = _outlier_mask(pts[idx])
    keep[idx[out]] = False
    report["outliers"] = int(out.sum())
    idx = np.flatnonzero(keep)
    if len(idx) > 1:
        big = _large_pieces(pts[idx])
        keep[idx[~big]] = False
        report["pieces"] = int((~big).sum())
    nrm = None if normals is None else np.asarray(normals, dtype=np.float64)[keep]
    return pts[keep], nrm, report
