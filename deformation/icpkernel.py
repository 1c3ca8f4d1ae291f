"""The ICP's nearest-neighbour queries and normal equations, compiled (issue 14's deformation latency).

:func:`~.reference.rigid_icp` registers a style reference (~9000 seen points) onto a scan (~20 000 points) in
5-25 iterations, and each iteration's KD-tree query (``cKDTree.query``, ~1 us a point) was most of the deformation
step's time. Here the scan is binned once into a uniform grid of cubes (:class:`ScanGrid`, ``CELL`` metres wide;
the scan's points ~1 mm apart) and each query is answered exactly:

- a first candidate: the previous iteration's neighbour of the same source point (the pose moves points by
  micrometres once the ICP has settled, so it is nearly always the neighbour again), else (none, or one further
  than a cell) the nearest point met searching rings of cells outward from the query's cell; a row whose rings
  (up to ``rings``) hold no point is left to the caller (:func:`~.reference.rigid_icp` asks its KD-tree);
- then every point in the cells that the ball through that candidate overlaps: the nearest of them is the nearest
  of all (a point nearer than the candidate lies in that ball). Ties go to the lower index. A ring search that
  stopped with the next rings no nearer than its best needs no such pass.

So the neighbours (and the points dropped beyond the bound) are those of the KD-tree, and the ICP takes the same
steps to the same pose (``tests/deformation/test_deform_speed.py`` compares both on values). The normal
equations of the point-to-plane step are summed in one compiled loop (no (n, 6) matrix is built), and solved by
:func:`numpy.linalg.solve` instead of ``lstsq`` on the (n, 6) matrix: the same least-squares step to ~1e-12
relative. Where numba is missing :func:`available` is False and the KD-tree path is used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["available", "ScanGrid", "build_grid", "nearest", "normal_equations", "warm_up", "spatial_order", "CELL",
           "MAX_CELLS", "MAX_CELL", "col_min", "col_max", "max_move"]

#: Grid cell edge, metres (the scans' points are ~1 mm apart; of 1.5, 2.5 and 4 mm, 4 mm answered fastest).
CELL = 4.0e-3
#: Most cells a grid has (its index is 8 bytes a cell): a scan with a stray point metres away gets coarser cells
#: (the same neighbours, found slower; :func:`~.reference.rigid_icp` then uses the KD-tree, :data:`MAX_CELL`).
MAX_CELLS = 2_000_000
#: Coarsest cell the ICP uses the grid with, metres.
MAX_CELL = 4 * CELL


@dataclass(frozen=True)
class ScanGrid:
    """A scan's points binned into cubes: cell ``c``'s points are ``points[start[c]:start[c + 1]]``, with their
    indices into the scan ``index[...]`` (ascending within a cell)."""

    points: np.ndarray
    index: np.ndarray
    start: np.ndarray
    lo: np.ndarray
    dims: np.ndarray
    cell: float
    source: np.ndarray


def col_min(a: np.ndarray) -> np.ndarray:
    """``a.min(axis=0)`` of an (n, d) array column by column: the same values, ~15x faster for d = 2-3 (numpy
    reduces a C array's short rows with a strided inner loop)."""
    return np.array([a[:, c].min() for c in range(a.shape[1])], dtype=a.dtype)


def col_max(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=0)``, as :func:`col_min`."""
    return np.array([a[:, c].max() for c in range(a.shape[1])], dtype=a.dtype)


def build_grid(points: np.ndarray, cell: float = CELL) -> ScanGrid:
    """Bin (n, 3) float64 ``points`` into cubes of edge ``cell`` metres."""
    pts = np.ascontiguousarray(points, dtype=np.float64)
    if not np.all(np.isfinite(pts)):
        raise ValueError("build_grid: points must be finite")
    lo = col_min(pts)
    span = col_max(pts) - lo
    cell = max(cell, float(np.prod(span + cell)) ** (1 / 3) / MAX_CELLS ** (1 / 3))  # a stray point far off
    dims = (np.floor(span / cell).astype(np.int64) + 1).astype(np.int64)
    start = np.zeros(int(np.prod(dims)) + 1, dtype=np.int64)
    gp, gi = np.empty_like(pts), np.empty(len(pts), dtype=np.int64)
    _kernel()[2](pts, lo, float(cell), dims, start, gp, gi)
    return ScanGrid(points=gp, index=gi, start=start, lo=lo, dims=dims, cell=float(cell), source=pts)


def _bin_py(pts, lo, cell, dims, start, gp, gi):  # fmt: skip
    """Counting sort of the points into the cells (ascending index within a cell): fills ``start`` (cells + 1,
    zeros in), ``gp`` the points cell by cell and ``gi`` their indices."""
    n = pts.shape[0]
    flat = np.empty(n, dtype=np.int64)
    for i in range(n):
        c0 = min(int(np.floor((pts[i, 0] - lo[0]) / cell)), dims[0] - 1)
        c1 = min(int(np.floor((pts[i, 1] - lo[1]) / cell)), dims[1] - 1)
        c2 = min(int(np.floor((pts[i, 2] - lo[2]) / cell)), dims[2] - 1)
        flat[i] = (c0 * dims[1] + c1) * dims[2] + c2
        start[flat[i] + 1] += 1
    for c in range(len(start) - 1):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    for i in range(n):
        k = fill[flat[i]]
        fill[flat[i]] += 1
        gp[k, 0], gp[k, 1], gp[k, 2] = pts[i, 0], pts[i, 1], pts[i, 2]
        gi[k] = i


def _scan_cells_py(x0, x1, x2, a0, b0, a1, b1, a2, b2, gp, gi, start, dims, best, bj):  # fmt: skip
    """The nearest of the points in cells [a, b] (inclusive, per axis) if nearer than ``best`` (squared)."""
    for c0 in range(a0, b0 + 1):
        for c1 in range(a1, b1 + 1):
            base = (c0 * dims[1] + c1) * dims[2]
            for k in range(start[base + a2], start[base + b2 + 1]):
                d0, d1, d2 = x0 - gp[k, 0], x1 - gp[k, 1], x2 - gp[k, 2]
                dd = d0 * d0 + d1 * d1 + d2 * d2
                q = gi[k]
                if dd < best or (dd == best and q < bj):
                    best, bj = dd, q
    return best, bj


def _ring_py(x0, x1, x2, c0, c1, c2, s, gp, gi, start, dims, best, bj):  # fmt: skip
    """The nearest point in the cells at Chebyshev distance ``s`` from cell (c0, c1, c2), as :func:`_scan_cells_py`."""
    for i0 in range(max(c0 - s, 0), min(c0 + s, dims[0] - 1) + 1):
        for i1 in range(max(c1 - s, 0), min(c1 + s, dims[1] - 1) + 1):
            if abs(i0 - c0) == s or abs(i1 - c1) == s:  # on the ring's side: the whole column
                a2, b2 = max(c2 - s, 0), min(c2 + s, dims[2] - 1)
                if a2 <= b2:
                    best, bj = _scan_cells_py(x0, x1, x2, i0, i0, i1, i1, a2, b2, gp, gi, start, dims, best, bj)
                continue
            for i2 in (c2 - s, c2 + s):  # inside: the ring's top and bottom cells only
                if 0 <= i2 < dims[2]:
                    best, bj = _scan_cells_py(x0, x1, x2, i0, i0, i1, i1, i2, i2, gp, gi, start, dims, best, bj)
    return best, bj


def _nearest_py(x, gp, gi, start, lo, dims, cell, src, lim, prev, rings, out_d, out_j):  # fmt: skip
    """Nearest scan point of each row of ``x`` closer than ``lim`` (module docstring); ``prev``: -1 or a first
    candidate per row. A row whose candidate is further than a cell (or missing) first searches the rings of
    cells round its own up to ``rings`` (-1: to the bound). Writes ``out_d`` (inf: none) and ``out_j``
    (``len(src)``: none within the bound; -1: none found in the rings searched, the caller must ask elsewhere)."""
    inv = 1.0 / cell
    lim2 = lim * lim
    n_src = src.shape[0]
    hi = lo + dims * cell
    last = int(lim * inv) + 1 if rings < 0 else min(rings, int(lim * inv) + 1)
    for i in range(x.shape[0]):
        x0, x1, x2 = x[i, 0], x[i, 1], x[i, 2]
        best, bj = lim2, -1
        final = False
        pj = prev[i]
        if pj >= 0:
            d0, d1, d2 = x0 - src[pj, 0], x1 - src[pj, 1], x2 - src[pj, 2]
            dd = d0 * d0 + d1 * d1 + d2 * d2
            if dd < best:
                best, bj = dd, pj
        g0 = max(lo[0] - x0, 0.0, x0 - hi[0])
        g1 = max(lo[1] - x1, 0.0, x1 - hi[1])
        g2 = max(lo[2] - x2, 0.0, x2 - hi[2])
        if bj < 0 and g0 * g0 + g1 * g1 + g2 * g2 >= lim2:  # no point of the grid is within the bound
            out_d[i], out_j[i] = np.inf, n_src
            continue
        if bj < 0 or best > cell * cell:  # no candidate, or a far one: look round the row's own cell first
            c0 = int(np.floor((x0 - lo[0]) * inv))
            c1 = int(np.floor((x1 - lo[1]) * inv))
            c2 = int(np.floor((x2 - lo[2]) * inv))
            for s in range(last + 1):
                best, bj = _ring_py(x0, x1, x2, c0, c1, c2, s, gp, gi, start, dims, best, bj)
                if bj >= 0 and best <= (s * cell) ** 2:  # the next rings are at least s cells away: found
                    final = True
                    break
        if bj < 0:
            out_d[i], out_j[i] = np.inf, (n_src if rings < 0 else -1)
            continue
        if final:
            out_d[i], out_j[i] = np.sqrt(best), bj
            continue
        r = np.sqrt(best) * (1.0 + 1e-12) + 1e-12  # every point within the candidate's distance is in these cells
        a0 = max(int(np.floor((x0 - r - lo[0]) * inv)), 0)
        b0 = min(int(np.floor((x0 + r - lo[0]) * inv)), dims[0] - 1)
        a1 = max(int(np.floor((x1 - r - lo[1]) * inv)), 0)
        b1 = min(int(np.floor((x1 + r - lo[1]) * inv)), dims[1] - 1)
        a2 = max(int(np.floor((x2 - r - lo[2]) * inv)), 0)
        b2 = min(int(np.floor((x2 + r - lo[2]) * inv)), dims[2] - 1)
        best, bj = _scan_cells_py(x0, x1, x2, a0, b0, a1, b1, a2, b2, gp, gi, start, dims, best, bj)
        out_d[i], out_j[i] = np.sqrt(best), bj


def _normal_eq_py(x, j, dst, nrm, ok, AtA, Atb):  # fmt: skip
    """Sums of the point-to-plane rows ``[p x n, n]`` (the rows ``ok``): A^T A (6, 6), A^T b (6,); returns
    sum of b^2 (b = (q - p) . n)."""
    ss = 0.0
    row = np.empty(6)
    for i in range(x.shape[0]):
        if not ok[i]:
            continue
        k = j[i]
        p0, p1, p2 = x[i, 0], x[i, 1], x[i, 2]
        n0, n1, n2 = nrm[k, 0], nrm[k, 1], nrm[k, 2]
        b = (dst[k, 0] - p0) * n0 + (dst[k, 1] - p1) * n1 + (dst[k, 2] - p2) * n2
        row[0], row[1], row[2] = p1 * n2 - p2 * n1, p2 * n0 - p0 * n2, p0 * n1 - p1 * n0
        row[3], row[4], row[5] = n0, n1, n2
        for a in range(6):
            Atb[a] += row[a] * b
            for c in range(a, 6):
                AtA[a, c] += row[a] * row[c]
        ss += b * b
    for a in range(6):
        for c in range(a):
            AtA[a, c] = AtA[c, a]
    return ss


def _max_move_py(a, b):  # fmt: skip
    """Largest squared row distance between (n, 3) ``a`` and ``b``, summed as numpy sums a row of three."""
    best = 0.0
    for i in range(a.shape[0]):
        d0, d1, d2 = a[i, 0] - b[i, 0], a[i, 1] - b[i, 1], a[i, 2] - b[i, 2]
        best = max(best, d0 * d0 + d1 * d1 + d2 * d2)
    return best


_lock = threading.Lock()
_compiled: list[Any] = []


def _kernel() -> Any:
    """The compiled loops, or None where numba cannot be imported (compiled once, cached on disk; the two
    registrations of a pair may ask for them at once from two threads)."""
    with _lock:
        if not _compiled:
            _compiled.append(_compile())
        return _compiled[0]


def _compile() -> Any:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    global _scan_cells_py, _ring_py
    jit = numba.njit(nogil=True, cache=True, error_model="numpy")
    _scan_cells_py = jit(_scan_cells_py)  # compiled globals before the loops that call them compile
    _ring_py = jit(_ring_py)
    return jit(_nearest_py), jit(_normal_eq_py), jit(_bin_py), jit(_max_move_py)


def available() -> bool:
    """Whether the compiled loops can be used."""
    return _kernel() is not None


def nearest(grid: ScanGrid, x: np.ndarray, lim: float, prev: np.ndarray | None = None,
            rings: int = -1) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``cKDTree(grid.source).query(x, distance_upper_bound=lim)``: (distances (n,), inf where none; indices (n,),
    ``len(source)`` where none). ``prev``: (n,) int a first candidate per row (-1 or ``len(source)``: none).
    ``rings`` >= 0: rows with no candidate and no point in the ``rings`` rings of cells round their own are
    given index -1 (not searched further: cheaper asked of a KD-tree)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    n_src = len(grid.source)
    p = np.full(len(x), -1, dtype=np.int64) if prev is None else np.where(prev >= n_src, -1, prev).astype(np.int64)
    d = np.empty(len(x))
    j = np.empty(len(x), dtype=np.int64)
    _kernel()[0](x, grid.points, grid.index, grid.start, grid.lo, grid.dims, grid.cell, grid.source, float(lim),
                 p, int(rings), d, j)  # fmt: skip
    return d, j


def normal_equations(x: np.ndarray, j: np.ndarray, dst: np.ndarray, nrm: np.ndarray,
                     ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """(A^T A (6, 6), A^T b (6,), sum b^2) of the point-to-plane rows of the pairs (x[i], dst[j[i]]) where ``ok``."""
    AtA, Atb = np.zeros((6, 6)), np.zeros(6)
    ss = _kernel()[1](np.ascontiguousarray(x), j, np.ascontiguousarray(dst), np.ascontiguousarray(nrm),
                      np.ascontiguousarray(ok), AtA, Atb)  # fmt: skip
    return AtA, Atb, float(ss)


def max_move(a: np.ndarray, b: np.ndarray) -> float:
    """``sqrt(max(sum((a - b) ** 2, axis=1)))`` of two (n, 3) float64 arrays (n >= 1), the same value (the ICP's
    stop test, once an iteration)."""
    return float(np.sqrt(_kernel()[3](np.ascontiguousarray(a), np.ascontiguousarray(b))))


def warm_up() -> None:
    """Load the compiled loops (from numba's disk cache; compiled the first time) on tiny inputs."""
    if not available():
        return
    pts = np.random.default_rng(0).uniform(0.0, 0.01, size=(50, 3))
    g = build_grid(pts)
    d, j = nearest(g, pts + 1e-4, 0.01)
    normal_equations(pts, j, pts, pts, np.isfinite(d))
    max_move(pts, pts + 1e-6)


def spatial_order(x: np.ndarray, cell: float = CELL) -> np.ndarray:
    """(n,) an order of the rows of ``x`` (n, 3) cell by cell of a grid: queries made in this order find the
    grid's points still in the cache (measured ~10 % off an ICP on the shared machine)."""
    ijk = np.floor((x - col_min(x)) / cell).astype(np.int64)
    dims = col_max(ijk) + 1
    return np.argsort((ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2], kind="stable")
