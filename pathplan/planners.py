"""Planners: a :class:`BondRegion` becomes a :class:`ToolPath` of surface contact points.

``contour_offset`` draws closed rings at constant surface distance from the boundary (the bite
line or the rim); ``raster_fill`` sweeps parallel lines over the wide area beyond a given offset
(the lasted bottom, the footbed). Distances are surface (graph-geodesic) distances of the region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import RegionError
from .geom import unit
from .stages import Stage, register
from .toolpath import BondRegion, ToolPath

__all__ = ["ContourOffset", "RasterFill", "ring_at"]


def _bin_means(keys: np.ndarray, n: int, *arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Count and mean of each array per integer key in ``0..n-1``."""
    cnt = np.bincount(keys, minlength=n).astype(float)
    out = []
    for a in arrays:
        m = np.stack([np.bincount(keys, weights=a[:, j], minlength=n) for j in range(a.shape[1])], axis=1)
        out.append(m / np.maximum(cnt, 1)[:, None])
    return cnt, out


#: A contour ring is a smooth curve at one surface distance from the boundary: a run of up to ``RING_JUMP_BINS``
#: bins more than ``RING_JUMP_M`` off the median of their neighbours (:func:`off_ring`) averaged points of another
#: surface the distance reaches there and is drawn again from its neighbours, as a scan hole's bins are. On world-2
#: soles (seed 7000 pair 00016, seed 9102) the first ring's bins jumped 7 mm up the wall under the rim and back,
#: 17-22 mm apart in plan, 3-4 bins long (refused "first ring at 1.7 mm has a 22 mm hole"); along +-4 bins
#: (+-13 mm) a ring round a 35 mm toe strays ~2.4 mm from that median.
RING_JUMP_BINS = 4
RING_JUMP_M = 8e-3


def ring_at(
    region: BondRegion, offset: float, sample: float, half_width: float, local: np.ndarray | None = None,
    fill: float = 0.0,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """Contour ring at surface distance ``offset`` (metres) from the region's boundary.

    Args:
        local: (q,) metres added to ``offset`` along equal stretches of the boundary (the tuner's local
            corrections), or None.
        fill: runs of empty bins up to this long (metres along the boundary; a hole in the scan beside the
            line, which the region accepts where the scan surrounds it) are filled: the ring keeps its
            neighbours' position relative to the boundary (interpolated), their normal and inward direction.
    Returns:
        contact (k, 3), normal (k, 3), inward (k, 3) in boundary order; bins with no points are dropped.
    """
    per = region.perimeter
    nb = max(round(per / sample), 8)
    off_bin = np.full(nb, float(offset))
    if local is not None and len(local):
        off_bin += np.asarray(local, dtype=float)[((np.arange(nb) + 0.5) / nb * len(local)).astype(int)]
    key_all = np.minimum((region.s / per * nb).astype(int), nb - 1)
    target = off_bin[key_all]
    sel = np.abs(region.signed - target) < half_width
    if not np.any(sel):
        return np.empty((0, 3)), np.empty((0, 3)), np.empty((0, 3))
    keys = np.minimum((region.s[sel] / per * nb).astype(int), nb - 1)
    cnt, (pos, nrm, sd) = _bin_means(keys, nb, region.points[sel], region.normals[sel], region.signed[sel, None])
    lo = sel & (region.signed < target)
    hi = sel & (region.signed >= target)
    k_lo = np.minimum((region.s[lo] / per * nb).astype(int), nb - 1)
    k_hi = np.minimum((region.s[hi] / per * nb).astype(int), nb - 1)
    c_lo, (p_lo,) = _bin_means(k_lo, nb, region.points[lo])
    c_hi, (p_hi,) = _bin_means(k_hi, nb, region.points[hi])
    ok = cnt > 0
    nrm = unit(nrm, what="ring normals", allow_zero=True)  # empty bins (cnt 0) are dropped below
    grad = np.where(((c_lo > 0) & (c_hi > 0))[:, None], p_hi - p_lo, np.nan)
    # bins without a gradient take the boundary's inward direction at that arc length
    bidx = np.minimum((np.arange(nb) + 0.5) / nb * len(region.boundary), len(region.boundary) - 1).astype(int)
    grad = np.where(np.isnan(grad), region.inward[bidx], grad)
    grad = unit(grad - np.einsum("ij,ij->i", grad, nrm)[:, None] * nrm, what="ring inward", allow_zero=True)
    pos = pos + (off_bin[:, None] - sd) * grad  # the bin's mean distance is not exactly its target: step onto it
    if fill > 0 and ok.sum() >= 2 * RING_JUMP_BINS + 2:
        ok = ok & ~off_ring(pos, ok)
    if fill > 0 and 3 <= ok.sum() < nb:
        base = region.boundary[bidx]
        ok, rel, nrm, grad = _fill_bins(ok, pos - base, nrm, grad, max_run=int(fill / (per / nb)))
        pos = base + rel
    return pos[ok], nrm[ok], grad[ok]


def off_ring(pos: np.ndarray, ok: np.ndarray, k: int = RING_JUMP_BINS, jump: float = RING_JUMP_M) -> np.ndarray:
    """(nb,) bool: the filled bins (``ok``) of a closed ring whose position ``pos`` (nb, 3) lies more than ``jump``
    metres from the median of its own and its ``k`` filled neighbours' on either side (per coordinate, circular):
    runs of up to ``k`` bins that jumped onto another surface."""
    idx = np.flatnonzero(ok)
    p = pos[idx]
    med = np.median(np.stack([np.roll(p, sh, axis=0) for sh in range(-k, k + 1)]), axis=0)
    out = np.zeros(len(ok), bool)
    out[idx[np.linalg.norm(p - med, axis=1) > jump]] = True
    return out


def _fill_bins(ok: np.ndarray, *arrays: np.ndarray, max_run: int) -> tuple[np.ndarray, ...]:
    """Fill runs of at most ``max_run`` empty bins (``~ok``, circular) of each (nb, 3) array by linear
    interpolation between the bins on either side (unit vectors renormalised). Returns the new ok mask and
    the arrays."""
    nb = len(ok)
    good = np.flatnonzero(ok)
    # length of the empty run each bin belongs to (0 for filled bins)
    nxt = good[np.searchsorted(good, np.arange(nb)) % len(good)]
    prv = good[(np.searchsorted(good, np.arange(nb), side="right") - 1) % len(good)]
    run = np.where(ok, 0, (nxt - prv) % nb - 1)
    fill = ~ok & (run <= max_run)
    xi = np.r_[good - nb, good, good + nb]
    out = []
    for a in arrays:
        b = a.copy()
        b[fill] = np.column_stack([np.interp(np.flatnonzero(fill), xi, np.tile(a[good, j], 3)) for j in range(3)])
        out.append(b)
    out[1:] = [unit(b, what="filled bins", allow_zero=True) for b in out[1:]]  # bins still empty are dropped
    return (ok | fill, *out)


def _largest_gap(c: np.ndarray) -> float:
    """Longest step between consecutive points of a closed ring (metres); inf for fewer than 3 points."""
    if len(c) < 3:
        return float("inf")
    return float(np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1).max())


@dataclass(frozen=True)
class ContourOffsetParams:
    """Rings at ``first_offset_mm``, then ``second_offset_mm`` (0: first + step) and every ``step_mm`` after
    it, up to ``width_mm`` (0: the region's band width). ``offsets_mm``, when given, lists the first rings
    explicitly (the tuner's design); rings continue every ``step_mm`` after the last of them.

    ``sample_mm`` is the waypoint spacing along a ring; ``half_width_mm`` the slab of surface points
    averaged into each ring (about the cloud resolution). The first ring may miss at most
    ``max_hole_mm`` of boundary in one piece (else the scan has a hole beside the line) after holes up to
    ``fill_hole_mm`` along the boundary were filled from their ends (:func:`ring_at`: the region accepts a
    bite line across a scan hole its scan surrounds, ``RegionParams.hole_radius_mm`` 20 mm). ``alternate``
    runs every other ring backwards, so the wrist unwinds instead of turning further each ring. The first
    ``edge_rings`` rings move out by ``edge_local_mm`` along equal stretches of the boundary (the tuner's
    local corrections where their spray would cross the line); their nominal offset is kept in the path.
    """

    first_offset_mm: float = 3.0
    second_offset_mm: float = 0.0
    step_mm: float = 7.0
    offsets_mm: tuple[float, ...] = ()
    edge_rings: int = 0
    edge_local_mm: tuple[float, ...] = ()
    width_mm: float = 0.0
    sample_mm: float = 3.0
    half_width_mm: float = 2.0
    max_hole_mm: float = 16.0
    fill_hole_mm: float = 40.0
    alternate: bool = True

    def __post_init__(self) -> None:
        if not (self.step_mm > 0 and self.sample_mm > 0 and self.half_width_mm > 0 and self.width_mm >= 0):
            raise ValueError("step_mm, sample_mm, half_width_mm must be > 0 and width_mm >= 0")
        if not (self.max_hole_mm > 0 and self.fill_hole_mm >= 0):
            raise ValueError("max_hole_mm must be > 0 and fill_hole_mm >= 0")
        if any(b <= a for a, b in zip(self.offsets_mm, self.offsets_mm[1:])):
            raise ValueError("offsets_mm must be increasing")
        if self.edge_rings < 0 or any(not 0 <= v <= 20 for v in self.edge_local_mm):
            raise ValueError("edge_rings must be >= 0 and edge_local_mm within 0-20")


@register
class ContourOffset(Stage):
    """Closed rings parallel to the boundary, one pass each, nearest the boundary first."""

    name = "contour_offset"
    kind = "planner"
    idempotent = True
    Params = ContourOffsetParams

    def offsets(self, region: BondRegion) -> np.ndarray:
        """Ring offsets in metres."""
        p = self.params
        width = p.width_mm * 1e-3 if p.width_mm > 0 else region.width
        if not np.isfinite(width):
            width = float(np.max(region.signed))
        step = p.step_mm * 1e-3
        if p.offsets_mm:
            head = np.asarray(p.offsets_mm, dtype=float) * 1e-3
        else:
            first = p.first_offset_mm * 1e-3
            second = p.second_offset_mm * 1e-3 if p.second_offset_mm > p.first_offset_mm else first + step
            head = np.array([first, second])
        head = head[head <= width] if np.any(head <= width) else head[:1]
        last = head[-1]
        return np.r_[head, last + step * np.arange(1, int(np.floor((width - last) / step)) + 1)]

    def plan(self, region: BondRegion) -> ToolPath:
        p = self.params
        parts: list[tuple[np.ndarray, ...]] = []
        for k, off in enumerate(self.offsets(region)):
            local = np.asarray(p.edge_local_mm, dtype=float) * 1e-3 if k < p.edge_rings else None
            c, n, g = ring_at(region, off, p.sample_mm * 1e-3, p.half_width_mm * 1e-3, local, p.fill_hole_mm * 1e-3)
            hole = _largest_gap(c)
            if k == 0 and hole > p.max_hole_mm * 1e-3:
                raise RegionError(
                    f"first ring at {off * 1e3:.1f} mm has a {hole * 1e3:.0f} mm hole (limit {p.max_hole_mm:.0f} mm):"
                    " the scan or the band beside the bite line is incomplete",
                    hole_mm=hole * 1e3,
                )
            if p.alternate and len(parts) % 2 == 1:
                c, n, g = c[::-1], n[::-1], g[::-1]
            if len(c) >= 3:
                parts.append((c, n, g, np.full(len(c), off), np.full(len(c), len(parts))))
        if not parts:
            raise RegionError("contour_offset: no ring found inside the region")
        c, n, g, off, pid = (np.concatenate(x) for x in zip(*parts))
        return ToolPath(region.part, c, n, g, off, pid.astype(np.int64), np.ones(len(c), bool), closed=True)


@dataclass(frozen=True)
class RasterFillParams:
    """Parallel lines ``step_mm`` apart over points beyond ``start_offset_mm`` from the boundary.

    ``angle_deg`` turns the lines from the region's long axis; ``sample_mm`` is the waypoint spacing. Only
    surface sloping less than ``max_slope_deg`` from the raster plane is swept (a raster run over the edge
    of the bottom would spray down the side, towards the bite line; the contour rings cover the sides).
    """

    start_offset_mm: float = 30.0
    step_mm: float = 10.0
    sample_mm: float = 4.0
    angle_deg: float = 0.0
    min_line_mm: float = 8.0
    max_slope_deg: float = 35.0

    def __post_init__(self) -> None:
        if not (self.step_mm > 0 and self.sample_mm > 0 and self.min_line_mm >= 0):
            raise ValueError("step_mm and sample_mm must be > 0, min_line_mm >= 0")


@register
class RasterFill(Stage):
    """Zig-zag raster lines over the wide part of the region (one pass per line segment)."""

    name = "raster_fill"
    kind = "planner"
    idempotent = True
    Params = RasterFillParams

    def plan(self, region: BondRegion) -> ToolPath:
        p = self.params
        sel = region.signed >= p.start_offset_mm * 1e-3
        if np.count_nonzero(sel) < 10:
            raise RegionError(f"raster_fill: no area beyond {p.start_offset_mm:.1f} mm from the boundary")
        pts, nrm = region.points[sel], region.normals[sel]
        c = pts.mean(axis=0)
        nz = unit(nrm.mean(axis=0))
        _, _, vt = np.linalg.svd(pts - c, full_matrices=False)
        u = unit(vt[0] - (vt[0] @ nz) * nz)
        v = np.cross(nz, u)
        a = np.deg2rad(p.angle_deg)
        u, v = np.cos(a) * u + np.sin(a) * v, -np.sin(a) * u + np.cos(a) * v
        pu, pv = (pts - c) @ u, (pts - c) @ v
        step, ds = p.step_mm * 1e-3, p.sample_mm * 1e-3
        line = np.round(pv / step).astype(int)
        near = np.abs(pv - line * step) < 0.5 * ds + 1e-3
        line, pu_n = line[near] - line[near].min(), pu[near]
        col = np.floor((pu_n - pu_n.min()) / ds).astype(int)
        ncol = col.max() + 1
        keys = line * ncol + col
        uk, inv = np.unique(keys, return_inverse=True)
        _, (pos, nn) = _bin_means(inv.ravel(), len(uk), pts[near], nrm[near])
        nn = unit(nn)
        flat = nn @ nz >= np.cos(np.deg2rad(p.max_slope_deg))
        if not np.any(flat):
            raise RegionError(f"raster_fill: no surface within {p.max_slope_deg:.0f} deg of the raster plane")
        return self._passes(region, (uk // ncol)[flat], (uk % ncol)[flat], pos[flat], nn[flat], u, ds)

    def _passes(self, region, lines, cols, pos, nrm, u, ds) -> ToolPath:
        segs: list[tuple[np.ndarray, ...]] = []
        for k, li in enumerate(np.unique(lines)):
            m = lines == li
            cl, ps, ns = cols[m], pos[m], nrm[m]
            cuts = np.flatnonzero(np.diff(cl) > 2) + 1
            for idx in np.split(np.arange(len(cl)), cuts):
                if len(idx) * ds < self.params.min_line_mm * 1e-3 or len(idx) < 2:
                    continue
                idx = idx if k % 2 == 0 else idx[::-1]
                segs.append((ps[idx], ns[idx]))
        if not segs:
            raise RegionError("raster_fill: every raster line is shorter than min_line_mm")
        c = np.concatenate([s[0] for s in segs])
        n = np.concatenate([s[1] for s in segs])
        pid = np.concatenate([np.full(len(s[0]), i) for i, s in enumerate(segs)]).astype(np.int64)
        inward = unit(np.cross(n, np.broadcast_to(u, n.shape)))
        from scipy.spatial import cKDTree

        off = region.signed[cKDTree(region.points).query(c)[1]]
        return ToolPath(region.part, c, n, inward, off, pid, np.ones(len(c), bool), closed=False)
