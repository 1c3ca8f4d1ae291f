"""An optional reference of the upper (the style's nominal model) to fill what the cameras do not see.

Cameras above a bottom-up upper do not see the overhangs at the toe and heel (the side turns under the
bottom there), which is exactly where the bite line runs. When the style's nominal upper is available,
it is registered rigidly to the scan (point-to-plane ICP) and its points are added where the scan has
none within ``gap`` metres. The scan always wins where it has data.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from gluecell.core.types import PartScan

__all__ = ["rigid_icp", "apply_T", "seen_sample", "augment_with_reference", "MAX_REFERENCE_RMS", "SEEN_NZ"]

#: Reference points whose normal's z is below this face away from the cameras above (not registered).
SEEN_NZ = -0.3
#: A reference that fits the scan worse than this (rms, metres) is not used (wrong style or size).
MAX_REFERENCE_RMS = 2.0e-3
#: ICP stops once an iteration moves no source point by more than this, metres. Point-to-plane ICP on these
#: scans often settles into a creep along a direction the surface hardly constrains (1-5 um per iteration, e.g.
#: along a sole's long axis) instead of reaching a zero step, so it ran its full 30 iterations for nothing.
ICP_MOTION_TOL = 1.0e-6
#: Threads of the KD-tree queries (the same neighbours whatever the count). One: scipy starts new threads for
#: every query (~0.1-3 ms each, 10-30 queries per ICP), and the sole's registration runs on the other core
#: beside the upper's anyway (:mod:`.parallel`).
ICP_WORKERS = 1
#: Compiled neighbour search and normal equations in the ICP (:mod:`.icpkernel`; False: KD-tree and lstsq).
COMPILED = True
#: Rings of grid cells searched round a point with no near candidate before the KD-tree is asked (4 mm cells).
GRID_RINGS = 2


def apply_T(T: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) rigid transform to (n, 3) points."""
    return x @ T[:3, :3].T + T[:3, 3]


def seen_sample(points: np.ndarray, normals: np.ndarray, max_points: int = 8000) -> np.ndarray:
    """The (m, 3) points a camera above would see (normal z over :data:`SEEN_NZ`), thinned to about ``max_points``.

    Args:
        points: (n, 3) float64, metres. normals: (n, 3) their unit normals (only the z component is read).
        max_points: every k-th seen point is kept, k = max(1, seen // max_points).
    """
    seen = normals[:, 2] > SEEN_NZ
    return points[seen][:: max(1, int(seen.sum()) // max_points)]


def rigid_icp(
    src: np.ndarray,
    dst: np.ndarray,
    dst_normals: np.ndarray,
    *,
    iters: int = 30,
    max_dist: float = 0.01,
    tree: cKDTree | None = None,
    motion_tol: float = ICP_MOTION_TOL,
    src_order: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Rigid (4, 4) transform taking ``src`` (n, 3) onto the surface ``dst`` (m, 3), and the rms residual (m).

    Point-to-plane ICP from the centroid alignment; correspondences further than ``max_dist`` are dropped
    (five times that for the first iterations). Stops after ``iters`` iterations, or once a step moves no
    point by more than ``motion_tol`` metres. ``tree``: a KD-tree of ``dst`` already built (None: built here
    when needed). With :data:`COMPILED` (and numba) the neighbours come from :mod:`.icpkernel` (the same ones);
    ``src_order``: ``icpkernel.spatial_order(src)`` already computed (a style reference's, kept between pairs).
    """
    from . import icpkernel

    T = np.eye(4)
    # Start from the plan centroids and the tops (a scan from above lacks the lower part of the part).
    T[:2, 3] = dst[:, :2].mean(axis=0) - src[:, :2].mean(axis=0)
    T[2, 3] = np.percentile(dst[:, 2], 99.5) - np.percentile(src[:, 2], 99.5)
    fast = COMPILED and icpkernel.available()
    if fast and len(src):  # the source in grid order (the same pose in any order; sums round differently, ~1e-16)
        src = src[icpkernel.spatial_order(src) if src_order is None else src_order]
    trees = _Neighbours(dst, tree, fast)
    rms = np.inf
    x = apply_T(T, src)
    for it in range(iters):
        lim = max_dist if it > 3 else 5 * max_dist
        d, j = trees.query(x, lim)
        ok = d < lim
        if ok.sum() < 10:
            break
        xi, rms = _step_compiled(x, j, dst, dst_normals, ok) if fast else _step_lstsq(x, j, dst, dst_normals, ok)
        w = xi[:3]
        th = float(np.linalg.norm(w))
        K = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        R = np.eye(3) + K if th < 1e-12 else np.eye(3) + np.sin(th) / th * K + (1 - np.cos(th)) / th**2 * K @ K
        dT = np.eye(4)
        dT[:3, :3], dT[:3, 3] = R, xi[3:]
        T = dT @ T
        x_new = apply_T(T, src)
        moved = icpkernel.max_move(x_new, x) if fast else float(np.sqrt(np.max(np.sum((x_new - x) ** 2, axis=1))))
        x = x_new
        if np.linalg.norm(xi) < 1e-7 or moved < motion_tol:
            break
    return T, rms


class _Neighbours:
    """Each ICP iteration's nearest scan point of every source point within the bound: a KD-tree query, or with
    ``fast`` the compiled grid search seeded by the previous iteration's neighbours (:mod:`.icpkernel`), the
    KD-tree answering only for the rows that had none (the first iteration, points beyond the bound)."""

    def __init__(self, dst: np.ndarray, tree: cKDTree | None, fast: bool) -> None:
        self.dst, self.tree, self.fast = dst, tree, fast
        self.prev: np.ndarray | None = None
        self.grid = None

    def _tree(self) -> cKDTree:
        if self.tree is None:
            self.tree = cKDTree(self.dst, balanced_tree=False, compact_nodes=False)
        return self.tree

    def query(self, x: np.ndarray, lim: float) -> tuple[np.ndarray, np.ndarray]:
        # beyond the bound a query returns inf (dropped anyway): the same pairs, found faster
        if not self.fast:
            d, j = self._tree().query(x, distance_upper_bound=lim, workers=ICP_WORKERS)
        else:
            from .icpkernel import MAX_CELL, build_grid, nearest

            self.grid = build_grid(self.dst) if self.grid is None else self.grid
            if self.grid.cell > MAX_CELL:  # a scan metres wide (stray points): the grid's cells hold too much
                self.fast = False
                return self.query(x, lim)
            d, j = nearest(self.grid, x, lim, self.prev, rings=GRID_RINGS)
            miss = np.flatnonzero(j < 0)
            if len(miss):
                d[miss], j[miss] = self._tree().query(x[miss], distance_upper_bound=lim, workers=ICP_WORKERS)
        self.prev = j
        return d, j


def _step_lstsq(x: np.ndarray, j: np.ndarray, dst: np.ndarray, nrm: np.ndarray, ok: np.ndarray) -> tuple:
    """The point-to-plane step (6,) (rotation vector, translation) by least squares on the pairs ``ok``, and
    the rms of their plane distances before it."""
    p, q, n = x[ok], dst[j[ok]], nrm[j[ok]]
    b = np.sum((q - p) * n, axis=1)
    xi, *_ = np.linalg.lstsq(np.column_stack([np.cross(p, n), n]), b, rcond=None)
    return xi, float(np.sqrt(np.mean(b**2)))


def _step_compiled(x: np.ndarray, j: np.ndarray, dst: np.ndarray, nrm: np.ndarray, ok: np.ndarray) -> tuple:
    """:func:`_step_lstsq` from the normal equations summed by :mod:`.icpkernel` (the same step to ~1e-12)."""
    from .icpkernel import normal_equations

    AtA, Atb, ss = normal_equations(x, j, dst, nrm, ok)
    try:
        xi = np.linalg.solve(AtA, Atb)
    except np.linalg.LinAlgError:  # a degenerate set of pairs: the minimum-norm step, as lstsq takes
        return _step_lstsq(x, j, dst, nrm, ok)
    return xi, float(np.sqrt(ss / ok.sum()))


def augment_with_reference(
    scan: PartScan, ref_points: np.ndarray, ref_normals: np.ndarray, *, gap: float = 3.0e-3, replace: bool = False
) -> tuple[PartScan, float]:
    """The scan plus the registered reference's points where the scan has none within ``gap`` metres.

    Args:
        scan: the upper's scan (``base_link``).
        ref_points, ref_normals: (m, 3) nominal upper surface samples, any placement near the station.

        replace: return the registered reference alone (the style's clean surface placed where this scan
            has its upper) instead of the scan with the reference filling its gaps. The scan's points lie
            0.1-0.4 mm off the surface and its normals scatter; measured on the world's *train* pairs, sections
            read off the registered reference put the bite line closer (per-pair p95, median over the *val*
            pairs: 1.5 mm against 2.3 mm with the filled scan, after the same learnt depth offset).

    Returns:
        (augmented scan, registration rms in metres). When the reference does not fit (rms over
        :data:`MAX_REFERENCE_RMS`) the scan is returned unchanged.
    """
    # register with what cameras above would see of the reference
    from .refcache import reference_entry, remember_moved

    entry = reference_entry(ref_points, ref_normals)  # the same every pair of the style: kept
    from .icpkernel import spatial_order

    seen = entry.seen(8000)
    order = entry.get("seen8000_order", lambda: spatial_order(seen))  # the same every pair of the style
    T, rms = rigid_icp(seen, scan.points, scan.normals, src_order=order)
    if not np.isfinite(rms) or rms > MAX_REFERENCE_RMS:
        return scan, rms
    moved = apply_T(T, ref_points)
    mn = ref_normals @ T[:3, :3].T
    if replace:
        diag = dict(scan.diagnostics, reference_rms_m=rms, reference_points=len(moved))
        out = PartScan(part=scan.part, points=moved, normals=mn, item_id=scan.item_id, diagnostics=diag)
        remember_moved(out.points, entry, T)  # KD-tree queries on it use the reference's own tree
        return out, rms
    d, _ = cKDTree(scan.points).query(moved)
    add = d > gap
    diag = dict(scan.diagnostics, reference_rms_m=rms, reference_points=int(add.sum()))
    out = PartScan(
        part=scan.part,
        points=np.vstack([scan.points, moved[add]]),
        normals=np.vstack([scan.normals, mn[add]]),
        item_id=scan.item_id,
        diagnostics=diag,
    )
    return out, rms
