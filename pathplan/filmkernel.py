"""The deposition model's inner sum, compiled: every (spray sample, surface point) pair within the sample's
footprint ball, found in a uniform cell grid and summed in one pass, with no (pairs,) arrays in between.

Same physics and the same float32 steps as the array version (``deposition._film_arrays``):
the pair set is the same ball (squared distance in float64 <= radius^2), each pair's offset goes into the
sample's frame in float32 and the rate is summed in float64; the film agrees with the array version to float32
rounding of single terms (~1e-7 of the peak: tests/pathplan/test_plan_filmkernel.py). Only the order in which a
point's terms are added differs (float64: ~1e-16).

Why compiled (numba): the array version spends ~40 whole-array passes over ~0.5 M pairs per prediction (gathers
of the (pairs, 3, 3) frames, the Gaussian, the bincount) and a k-d tree pair search that writes a structured
array of every pair first; this kernel touches each pair once in registers (on a bench upper's 0.55 M pairs
~5x faster than the arrays, the film with its standoffs 2.5-4x).
It releases the GIL, so the sole and the upper, planned in two threads, run it on both cores at once. The standoff
ray cast (:func:`standoffs`) runs in the same grid, step for step as the k-d tree version. Where numba
is missing :func:`available` is False and the array version is used.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import kernelsplit

__all__ = ["available", "film_sum", "standoffs", "CellGrid", "cell_grid", "cell_boxes"]

_nearest: Any = None  # the compiled _nearest_py, set by _kernel

#: Most cells of a grid; a larger bounding box (a stray far point) gets coarser cells instead.
MAX_CELLS = 2_000_000
#: Smallest film sum (points) and ray cast (rays) split over two threads (:mod:`~gluecell.pathplan.kernelsplit`).
SPLIT_MIN_POINTS, SPLIT_MIN_RAYS = 2000, 400


@functools.lru_cache(maxsize=1)
def _kernel() -> Any:
    """The compiled kernel, or None where numba cannot be imported (compiled once per process, cached on disk)."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; the array version stays as a fallback
        return None
    global _nearest
    jit = numba.njit(nogil=True, cache=True)
    _nearest = jit(_nearest_py)  # called by the standoff loop: a compiled global when that loop compiles
    return jit(_film_sum_py), jit(_standoffs_py)


def _compiled(which: int) -> Any:
    """Kernel ``which`` (0: film sum, 1: standoffs)."""
    k = _kernel()
    if k is None:
        raise RuntimeError("the compiled film kernels need numba")
    return k[which]


def available() -> bool:
    """Whether the compiled kernel can be used (numba importable)."""
    return _kernel() is not None


class CellGrid:
    """Points sorted into a uniform grid of cubes: ``order`` (n,) point indices by cell, ``start`` (cells + 1,)
    offsets into ``order``, ``lo`` (3,) grid origin (m), ``cell`` edge (m), ``dims`` (3,) int64."""

    def __init__(self, order: np.ndarray, start: np.ndarray, lo: np.ndarray, cell: float, dims: np.ndarray) -> None:
        self.order, self.start, self.lo, self.cell, self.dims = order, start, lo, cell, dims
        self.boxes: np.ndarray | None = None  # :func:`cell_boxes` of the grid's own points, kept once computed


def cell_grid(points: np.ndarray, cell: float) -> CellGrid:
    """Sort ``points`` (n, 3) float64 into cubes of edge ``cell`` metres (coarser when the box would need more
    than :data:`MAX_CELLS`)."""
    pts = np.asarray(points, dtype=np.float64)
    lo = pts.min(axis=0) if len(pts) else np.zeros(3)
    span = (pts.max(axis=0) - lo) if len(pts) else np.zeros(3)
    while True:
        dims = np.floor(span / cell).astype(np.int64) + 1
        if int(np.prod(dims)) <= MAX_CELLS:
            break
        cell *= 1.5
    idx = np.minimum(np.floor((pts - lo) / cell).astype(np.int64), dims - 1)
    key = (idx[:, 0] * dims[1] + idx[:, 1]) * dims[2] + idx[:, 2]
    order = np.argsort(key, kind="stable").astype(np.int64)
    start = np.zeros(int(np.prod(dims)) + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=int(np.prod(dims))), out=start[1:])
    return CellGrid(order, start, lo, float(cell), dims)


def film_sum(grid: CellGrid, points: np.ndarray, normals: np.ndarray, aim: np.ndarray, radius: np.ndarray,
             tip: np.ndarray, frame: np.ndarray, dwell: np.ndarray, label: np.ndarray, n_labels: int,
             gauss: np.ndarray, flow: float) -> np.ndarray:  # fmt: skip
    """Film (n_labels, n) metres at ``points`` from every sample, over the points within ``radius`` of its aim.

    Args:
        grid: :func:`cell_grid` of ``points`` (n, 3) float64; normals (n, 3).
        aim: (k, 3) float64 ball centres; radius (k,) float64 metres.
        tip: (k, 3); frame: (k, 3, 3) rows across, along, axis; dwell (k,) s; label (k,) int64 < n_labels.
        gauss: (2, 3) float64 per Gaussian: weight / (2 pi s_u s_w), 1 / s_u, 1 / s_w (tangent units).
        flow: m^3/s.
    """
    k = _compiled(0)
    out = np.zeros((n_labels, len(points)), dtype=np.float64)
    f32 = np.float32
    args = (grid.order, grid.start, np.asarray(grid.lo, np.float64), float(grid.cell), np.asarray(grid.dims, np.int64),
            np.ascontiguousarray(points, np.float64), np.ascontiguousarray(points, f32),
            np.ascontiguousarray(normals, f32), np.ascontiguousarray(aim, np.float64),
            np.ascontiguousarray(radius, np.float64), np.ascontiguousarray(tip, f32), np.ascontiguousarray(frame, f32),
            np.ascontiguousarray(dwell, np.float64), np.ascontiguousarray(label, np.int64),
            np.ascontiguousarray(gauss, f32), float(flow), out, _boxes(grid, points))  # fmt: skip
    dims = np.asarray(grid.dims, np.int64)
    if kernelsplit.enabled(len(points), SPLIT_MIN_POINTS) and dims[0] > 1:
        # two slabs of the grid along x with about half the points each: a point's terms come from one half only,
        # in sample order as in the whole loop (the same sums, bit for bit)
        per_x = np.diff(grid.start)[: int(np.prod(dims))].reshape(dims[0], -1).sum(axis=1)
        mid = int(np.clip(np.searchsorted(np.cumsum(per_x), len(points) / 2), 1, dims[0] - 1))
        kernelsplit.run_halves(lambda c0, c1: k(*args, c0, c1), int(dims[0]), mid)
    else:
        k(*args, 0, int(dims[0]))
    return out


def _film_sum_py(order, start, lo, cell, dims, p64, p32, n32, aim, radius, tip, frame, dwell, label, gauss, flow,
                 out, box, cx_lo, cx_hi):  # fmt: skip
    """The loop numba compiles (see :func:`film_sum`); float32 steps as in the array version. Only the grid's
    x slabs ``cx_lo`` <= cx < ``cx_hi`` (all: 0, dims[0]), so two threads can sum disjoint halves."""
    ny, nz = dims[1], dims[2]
    one, half, hmin = np.float32(1.0), np.float32(-0.5), np.float32(1e-3)
    for i in range(aim.shape[0]):
        r = radius[i]
        r2 = r * r
        x0 = max(int(np.floor((aim[i, 0] - r - lo[0]) / cell)), cx_lo)
        x1 = min(int(np.floor((aim[i, 0] + r - lo[0]) / cell)), cx_hi - 1)
        if x0 > x1:
            continue
        y0 = max(int(np.floor((aim[i, 1] - r - lo[1]) / cell)), 0)
        y1 = min(int(np.floor((aim[i, 1] + r - lo[1]) / cell)), dims[1] - 1)
        z0 = max(int(np.floor((aim[i, 2] - r - lo[2]) / cell)), 0)
        z1 = min(int(np.floor((aim[i, 2] + r - lo[2]) / cell)), dims[2] - 1)
        t0, t1, t2 = tip[i, 0], tip[i, 1], tip[i, 2]
        wt = dwell[i]
        lab = label[i]
        for cx in range(x0, x1 + 1):
            for cy in range(y0, y1 + 1):
                base = (cx * ny + cy) * nz
                for cz in range(z0, z1 + 1):
                    c = base + cz
                    g0 = max(box[c, 0] - aim[i, 0], aim[i, 0] - box[c, 3], 0.0)
                    g1 = max(box[c, 1] - aim[i, 1], aim[i, 1] - box[c, 4], 0.0)
                    g2 = max(box[c, 2] - aim[i, 2], aim[i, 2] - box[c, 5], 0.0)
                    if g0 * g0 + g1 * g1 + g2 * g2 > r2:
                        continue  # every point of the cell lies outside the ball (the box bounds them, as above)
                    for q in range(start[c], start[c + 1]):
                        j = order[q]
                        dx = p64[j, 0] - aim[i, 0]
                        dy = p64[j, 1] - aim[i, 1]
                        dz = p64[j, 2] - aim[i, 2]
                        if dx * dx + dy * dy + dz * dz > r2:
                            continue
                        r0 = p32[j, 0] - t0
                        r1 = p32[j, 1] - t1
                        rr2 = p32[j, 2] - t2
                        h = r0 * frame[i, 2, 0] + r1 * frame[i, 2, 1] + rr2 * frame[i, 2, 2]
                        rn = r0 * n32[j, 0] + r1 * n32[j, 1] + rr2 * n32[j, 2]
                        if not (h > hmin and rn < 0):
                            continue
                        inv_h = one / h
                        u = (r0 * frame[i, 0, 0] + r1 * frame[i, 0, 1] + rr2 * frame[i, 0, 2]) * inv_h
                        w = (r0 * frame[i, 1, 0] + r1 * frame[i, 1, 1] + rr2 * frame[i, 1, 2]) * inv_h
                        g = np.float32(0.0)
                        for m in range(gauss.shape[0]):
                            a_ = u * gauss[m, 1]
                            b_ = w * gauss[m, 2]
                            g += gauss[m, 0] * np.exp(half * (a_ * a_ + b_ * b_))
                        rate = np.float64(g * -rn * (inv_h * inv_h * inv_h)) * flow
                        out[lab, j] += rate * wt


def cell_boxes(grid: CellGrid, points: np.ndarray) -> np.ndarray:
    """(cells, 6) float64: per cell of ``grid`` the bounding box of its ``points`` (lows, highs; an empty cell
    +inf / -inf, so it is never searched)."""
    n_cells = len(grid.start) - 1
    box = np.empty((n_cells, 6))
    box[:, :3], box[:, 3:] = np.inf, -np.inf
    full = np.flatnonzero(np.diff(grid.start) > 0)
    if len(full):
        srt = np.asarray(points, np.float64)[grid.order]
        box[full, :3] = np.minimum.reduceat(srt, grid.start[full], axis=0)
        box[full, 3:] = np.maximum.reduceat(srt, grid.start[full], axis=0)
    return box


def _boxes(grid: CellGrid, points: np.ndarray) -> np.ndarray:
    """:func:`cell_boxes` of ``grid`` (the grid of ``points``), computed once per grid: the tuner sums and casts in
    the same grids round after round."""
    if grid.boxes is None:
        grid.boxes = cell_boxes(grid, points)
    return grid.boxes


def standoffs(grid: CellGrid, surface: np.ndarray, tip: np.ndarray, axis: np.ndarray, max_standoff: float,
              radius: float) -> np.ndarray:  # fmt: skip
    """:func:`gluecell.pathplan.deposition.standoffs` (the same sphere tracing, step for step) with the nearest
    surface point found in ``grid`` (:func:`cell_grid` of ``surface`` (n, 3)) instead of a k-d tree: (k,) metres."""
    out = np.full(len(tip), float(max_standoff))
    k = _compiled(1)
    surface = np.ascontiguousarray(surface, np.float64)
    head = (grid.order, grid.start, np.asarray(grid.lo, np.float64), float(grid.cell), np.asarray(grid.dims, np.int64),
            surface, _boxes(grid, surface))  # fmt: skip
    tip, axis = np.ascontiguousarray(tip, np.float64), np.ascontiguousarray(axis, np.float64)

    def rows(a: int, b: int) -> None:  # each ray is cast on its own: rows a..b of the output, the same values
        k(*head, tip[a:b], axis[a:b], float(max_standoff), float(radius), out[a:b])

    if kernelsplit.enabled(len(tip), SPLIT_MIN_RAYS):
        kernelsplit.run_halves(rows, len(tip))
    else:
        rows(0, len(tip))
    return out


def _nearest_py(order, start, lo, cell, dims, pts, box, x0, x1, x2, bound):  # fmt: skip
    """Distance from (x0, x1, x2) to the nearest point of the grid, inf when none is within ``bound`` (cells
    searched in growing shells until no unvisited cell can hold a nearer point). A cell whose points' bounding
    ``box`` (cells, 6: lows, highs) lies no nearer than the best point so far is skipped: in floating point its
    distance is a lower bound of each of its points' (rounding is monotone), so the search finds the same point
    and the same distance, shell for shell, reading a fraction of the points."""
    c0 = int(np.floor((x0 - lo[0]) / cell))
    c1 = int(np.floor((x1 - lo[1]) / cell))
    c2 = int(np.floor((x2 - lo[2]) / cell))
    best2 = np.inf
    s = 0
    while True:
        for i in range(max(c0 - s, 0), min(c0 + s, dims[0] - 1) + 1):
            for j in range(max(c1 - s, 0), min(c1 + s, dims[1] - 1) + 1):
                side = abs(i - c0) == s or abs(j - c1) == s
                k0, k1 = max(c2 - s, 0), min(c2 + s, dims[2] - 1)
                k = k0
                while k <= k1:
                    if side or abs(k - c2) == s:
                        c = (i * dims[1] + j) * dims[2] + k
                        g0 = max(box[c, 0] - x0, x0 - box[c, 3], 0.0)
                        g1 = max(box[c, 1] - x1, x1 - box[c, 4], 0.0)
                        g2 = max(box[c, 2] - x2, x2 - box[c, 5], 0.0)
                        if g0 * g0 + g1 * g1 + g2 * g2 >= best2:
                            k += 1
                            continue
                        for q in range(start[c], start[c + 1]):
                            p = order[q]
                            d0 = x0 - pts[p, 0]
                            d1 = x1 - pts[p, 1]
                            d2 = x2 - pts[p, 2]
                            dd = d0 * d0 + d1 * d1 + d2 * d2
                            if dd < best2:
                                best2 = dd
                        k += 1
                    else:
                        k = c2 + s if k < c2 + s else k1 + 1  # inside the shell: jump to its far face
        reach = s * cell
        if best2 <= reach * reach or reach >= bound:
            break
        s += 1
    d = np.sqrt(best2)
    return d if d <= bound else np.inf


def _standoffs_py(order, start, lo, cell, dims, pts, box, tip, axis, max_standoff, radius, out):  # fmt: skip
    """The loop numba compiles (see :func:`standoffs`)."""
    for n in range(tip.shape[0]):
        t = 1e-3
        for _ in range(64):
            x0 = tip[n, 0] + t * axis[n, 0]
            x1 = tip[n, 1] + t * axis[n, 1]
            x2 = tip[n, 2] + t * axis[n, 2]
            d = _nearest(order, start, lo, cell, dims, pts, box, x0, x1, x2, max_standoff)
            if d <= radius:
                out[n] = t
                break
            if np.isfinite(d):
                t += max(np.floor((d - radius) * 1e3) * 1e-3, 1e-3)
            else:
                t += max_standoff
            if not t < max_standoff:
                break
