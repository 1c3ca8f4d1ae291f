"""Clean-ups of a scanned cloud before its bond region is built (issue 15: clouds from other scanners, with
flying points and without normals)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["drop_outliers", "has_neighbour", "outer_wall_outwards", "kdtree", "knn", "shared_trees"]

_shared = threading.local()  # per thread (the two parts are planned in two threads): the trees of shared_trees()
#: Clouds whose trees :func:`shared_trees` keeps at once (a region build uses three: the scan as given, the scan
#: without its flying points, its voxels; the upper's line probes then ask for the line, its vertices, the region
#: points and the scan as given again: pipeline.plan_part shares them all).
SHARED_CLOUDS = 8


@contextmanager
def shared_trees() -> Iterator[None]:
    """Within this block (in this thread), :func:`kdtree` and :func:`knn` build each cloud's k-d tree and each
    (cloud, k) nearest-neighbour query once and hand the same one to every later call on an equal cloud (same
    values, compared exactly). A region build asked for the tree of the same cloud up to five times (the outlier
    check, the rim's neighbours, the scan-hole check, the normals, the geodesic graph, two side votes): the same
    trees, so the same results, built once. Cleared when the block ends."""
    outer = getattr(_shared, "entries", None)
    _shared.entries = [] if outer is None else outer
    try:
        yield
    finally:
        if outer is None:
            _shared.entries = None


def _entry(pts: np.ndarray) -> dict[str, Any] | None:
    """The shared entry of ``pts`` (made when missing), or None outside :func:`shared_trees`."""
    entries = getattr(_shared, "entries", None)
    if entries is None:
        return None
    for e in entries:
        if e["pts"].shape == pts.shape and np.array_equal(e["pts"], pts):
            return e
    from scipy.spatial import cKDTree

    e = {"pts": np.array(pts, dtype=np.float64, copy=True), "knn": {}}
    e["tree"] = cKDTree(e["pts"])
    entries.insert(0, e)
    del entries[SHARED_CLOUDS:]
    return e


def kdtree(pts: np.ndarray) -> Any:
    """A ``scipy.spatial.cKDTree`` of ``pts`` (n, 3) (shared within :func:`shared_trees`)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(pts, dtype=np.float64)
    e = _entry(pts)
    return cKDTree(pts) if e is None else e["tree"]


def knn(pts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``kdtree(pts).query(pts, k=k)``: distances and indices (n, k) (shared within :func:`shared_trees`)."""
    pts = np.asarray(pts, dtype=np.float64)
    e = _entry(pts)
    if e is None:
        return kdtree(pts).query(pts, k=k)
    if k not in e["knn"]:
        e["knn"][k] = e["tree"].query(e["pts"], k=k)
    return e["knn"][k]


def drop_outliers(pts: np.ndarray, normals: np.ndarray | None, off_mm: float = 1.0, k: int = 12,
                  factor: float = 4.0) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """The cloud without flying points (a scanner's outliers a few mm off the surface) and ``normals`` with it
    (when they fit). A point beyond the line or the rim facing the gun in the film model would make the tuner
    move every pass away from it until the part is refused.

    A candidate is a point whose nearest neighbour is farther than ``off_mm`` and than the cloud's median
    nearest-neighbour distance plus ``off_mm`` / 2 (a point that far off the surface is at least that far from
    every surface point; a thin wall's top edge is not); it is dropped when it lies more than ``off_mm`` (and
    ``factor`` x the neighbours' own RMS thickness, so a sharp feather edge or a wall's corner stays) off the
    plane of its ``k`` neighbours. The sole's rim is found before (:func:`sole_region`).
    """
    if len(pts) <= 2 * k:
        return pts, normals
    tree = kdtree(pts)
    thr = max(_median_spacing(pts, tree) + 0.5 * off_mm * 1e-3, off_mm * 1e-3)
    # a bounded query only asks whether a neighbour lies within thr (half the time of the nearest distance)
    cand = np.flatnonzero(np.isinf(tree.query(pts, k=2, distance_upper_bound=thr)[0][:, 1]))
    if cand.size == 0:
        return pts, normals
    nb = pts[tree.query(pts[cand], k=k + 1)[1][:, 1:]]
    c = nb.mean(axis=1)
    w, vec = np.linalg.eigh(np.einsum("nki,nkj->nij", nb - c[:, None], nb - c[:, None]) / k)
    res = np.abs(np.einsum("ni,ni->n", pts[cand] - c, vec[:, :, 0]))
    bad = res > np.maximum(off_mm * 1e-3, factor * np.sqrt(np.maximum(w[:, 0], 0.0)))
    if not bad.any():
        return pts, normals
    keep = np.ones(len(pts), bool)
    keep[cand[bad]] = False
    fits = normals is not None and np.shape(normals) == pts.shape
    return pts[keep], (np.asarray(normals)[keep] if fits else normals)


def _median_spacing(pts: np.ndarray, tree, n: int = 2000) -> float:
    """Median nearest-neighbour distance of the cloud (from an evenly spread subsample of ``n`` points)."""
    sub = pts[:: max(len(pts) // n, 1)]
    return float(np.median(tree.query(sub, k=2)[0][:, 1]))


def has_neighbour(pts: np.ndarray, radius: float, idx: np.ndarray | None = None, tree=None,
                  spacing_factor: float = 2.0) -> np.ndarray:  # fmt: skip
    """(len(idx),) bool (every point when ``idx`` is None): another point of ``pts`` lies within ``radius`` or
    within ``spacing_factor`` x the cloud's median nearest-neighbour distance, whichever is larger (a sparse
    scan's real edge points keep their neighbours). ``tree``: a cKDTree of ``pts``, if there is one."""
    tree = tree if tree is not None else kdtree(pts)
    q = pts if idx is None else pts[idx]
    bound = max(radius, spacing_factor * _median_spacing(pts, tree))
    return np.isfinite(tree.query(q, k=2, distance_upper_bound=bound)[0][:, 1])


def outer_wall_outwards(v: np.ndarray, n: np.ndarray, inside: np.ndarray, line: np.ndarray, below_mm: float = 1.0,
                         footbed_nz: float = 0.9, off_rim_mm: float = 6.0) -> np.ndarray:  # fmt: skip
    """Wall points (mostly horizontal normal) lower than the footbed beside them face outwards (away from the
    sole's plan centre): there only the outer wall exists (a cup sole's wall tapers inwards towards the tread,
    so in plan it lies inside the rim, and its material side is solid, so the thin-wall probe finds nothing).
    Estimated normals pointed it at the viewpoint above the sole, i.e. inwards: glue would land on it."""
    from scipy.spatial import cKDTree

    # the footbed: upward, inside the rim and away from it (the wall's own top is upward too)
    bed = (n[:, 2] > footbed_nz) & inside & (cKDTree(line[:, :2]).query(v[:, :2])[0] > off_rim_mm * 1e-3)
    wall = np.abs(n[:, 2]) < 0.5
    if bed.sum() < 10 or not wall.any():
        return n
    z_bed = v[bed, 2][cKDTree(v[bed, :2]).query(v[wall, :2])[1]]
    low = np.flatnonzero(wall)[v[wall, 2] < z_bed - below_mm * 1e-3]
    c2 = v[:, :2].mean(axis=0)
    inward = np.einsum("ij,ij->i", n[low, :2], v[low, :2] - c2) < 0
    out = n.copy()
    out[low[inward]] *= -1
    return out
