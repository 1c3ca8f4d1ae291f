"""Bridges over the surface a scan did not see beside the boundary (issue 15: robust planning on any scan).

World-2 perceived uppers miss the lowest 9-17 mm of the side wall above the bite line at the toe and the heel
(the ring cameras see those walls at grazing angles), and world-2 cup soles miss the inner face of their wall
below the rim. The planner needs that surface: its rings lie on it, its film check looks there for glue beyond
the line, and without it the upper was refused ("bite line point 0 is 9-17 mm off the scanned surface") or the
sole's rings had holes.

:func:`bridge_line` fills the gap between a boundary line that lies on the part (the bite line is *on* the upper
by definition) and the scan's edge on the bond side: per line point, the nearest scan point across the line
(in the plane normal to the line, on the bond side) is the far end, and a quadratic curve that leaves the line
point and arrives at the scan's edge along the scan's tangent plane there is sampled, with a short continuation
beyond the line (so the film check sees glue that would land there). A bridge is built only where the scan's
edge runs along the surface towards the line (the direction from the line point to the edge lies within
line point does not lie in front of the edge's tangent plane by more than ``max_front`` of the gap: the
surface curves away from the gun, as past a rounded or sharp feather edge): a line that lies in the air beside the
scan is not bridged (the region then refuses it as off the surface). The region reports how much it bridged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geom import polyline_tangents, resample_polyline, unit

__all__ = ["BridgeParams", "Bridge", "bridge_line"]


@dataclass(frozen=True)
class BridgeParams:
    """How far a bridge may reach and how it is sampled (mm unless named otherwise).

    Attributes:
        from_mm: line points farther than this from the scan are bridged (the region's ``on_surface_mm``).
        max_len_mm: longest bridge (line point to the scan's edge); a longer gap is not bridged.
        slab_mm: the scan's edge is looked for within this distance of the plane normal to the line.
        min_up: the bridge runs towards the bond side: the cosine between it and ``bond_dir`` is at least this.
        max_front: the line point may lie at most this fraction of the gap in front of (outside) the tangent
            plane of the scan's edge (0.35: ~20 deg; world-2 uppers: at most 0.28); farther, it lies in the air
            beside the part, and the whole stretch of the line off the scan is left unbridged.
        max_bulge: the bridge's curve bows out at most this fraction of the gap from the straight chord (/2).
        step_mm: spacing of the bridged points along a bridge; the line is resampled at this step too.
        beyond_mm: the bridge continues this far beyond the line (the film check's points there).
    """

    from_mm: float = 4.0
    max_len_mm: float = 30.0
    slab_mm: float = 2.5
    min_up: float = 0.7
    max_front: float = 0.35
    max_bulge: float = 0.25
    step_mm: float = 1.5
    beyond_mm: float = 4.0

    def __post_init__(self) -> None:
        if not (0 < self.from_mm < self.max_len_mm and self.slab_mm > 0 and self.step_mm > 0):
            raise ValueError("need 0 < from_mm < max_len_mm, slab_mm > 0 and step_mm > 0")
        if not (0 <= self.max_front <= 1 and 0 <= self.max_bulge <= 1 and self.beyond_mm >= 0):
            raise ValueError("max_front and max_bulge must be within 0-1 and beyond_mm >= 0")


@dataclass(frozen=True)
class Bridge:
    """Bridged points (k, 3), their normals (k, 3) (None when the cloud had none), the line points (resampled at
    ``step_mm``) that were off the scan (m,) bool, and which of them got a bridge (m,) bool."""

    points: np.ndarray
    normals: np.ndarray | None
    line: np.ndarray
    off: np.ndarray
    bridged: np.ndarray

    @property
    def fraction(self) -> float:
        """Share of the line that was bridged."""
        return float(self.bridged.mean()) if len(self.bridged) else 0.0

    @property
    def length_mm(self) -> float:
        """Length of the line that was bridged (mm)."""
        return float(self.bridged.sum()) * float(np.median(np.linalg.norm(np.diff(self.line, axis=0), axis=1))) * 1e3


def _edge_normals(pts: np.ndarray, tree, idx: np.ndarray, normals: np.ndarray | None) -> np.ndarray:
    """Outward unit surface normals (k, 3) at ``pts[idx]``: the given ones, else from the 12 nearest points (PCA),
    facing away from the cloud's centre."""
    if normals is not None:
        return unit(np.asarray(normals, dtype=np.float64)[idx])
    _, nb = tree.query(pts[idx], k=min(12, len(pts)))
    q = pts[nb] - pts[nb].mean(axis=1, keepdims=True)
    _, vec = np.linalg.eigh(np.einsum("nki,nkj->nij", q, q))
    return _away(vec[:, :, 0], pts[idx], pts.mean(axis=0))


def _away(n: np.ndarray, at: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Normals ``n`` (k, 3) at ``at`` (k, 3) each turned to face away from ``centre`` (3,)."""
    return n * np.where(np.einsum("ij,ij->i", n, at - centre) < 0, -1.0, 1.0)[:, None]


def _far_ends(pts: np.ndarray, tree, line: np.ndarray, tan: np.ndarray, up: np.ndarray, far: np.ndarray,
              p: BridgeParams) -> np.ndarray:  # fmt: skip
    """Index of the scan's edge across the line from each ``far`` line point (-1 where none lies within reach)."""
    ends = np.full(len(far), -1)
    for k, i in enumerate(far):
        cand = np.asarray(tree.query_ball_point(line[i], p.max_len_mm * 1e-3), dtype=np.int64)
        if cand.size == 0:
            continue
        rel = pts[cand] - line[i]
        ok = (np.abs(rel @ tan[i]) < p.slab_mm * 1e-3) & (rel @ up[i] > p.min_up * np.linalg.norm(rel, axis=1))
        if ok.any():
            ends[k] = cand[ok][np.argmin(np.linalg.norm(rel[ok], axis=1))]
    return ends


def bridge_line(points: np.ndarray, normals: np.ndarray | None, line: np.ndarray, bond_dir: np.ndarray,
                params: BridgeParams | None = None, near: np.ndarray | None = None) -> Bridge:  # fmt: skip
    """Surface points over the scan's gap between ``line`` and the scan on the bond side.

    Args:
        points: (n, 3) scan, metres; normals: (n, 3) outward unit normals or None.
        line: (m, 3) closed boundary that lies on the part (the bite line; the sole's rim).
        bond_dir: (3,) or (m', 3) direction of the bond side at the line (the upper: +z; per resampled line point
            for the sole: its rim's inward direction); only its part normal to the line counts.
        near: (k, 3) points of the line: only the stretches of the line within ``4 x step_mm`` of them are bridged
            (the caller's points that are not in a scan hole); None: every point off the scan.
    Returns:
        The :class:`Bridge` (possibly with no points).
    """
    from scipy.spatial import cKDTree

    p = params or BridgeParams()
    pts = np.asarray(points, dtype=np.float64)
    ln = resample_polyline(np.asarray(line, dtype=np.float64), p.step_mm * 1e-3)
    tree = cKDTree(pts)
    d, _ = tree.query(ln)
    off = d > p.from_mm * 1e-3
    if near is not None and len(near):
        off &= cKDTree(np.asarray(near, dtype=np.float64)).query(ln)[0] <= 4 * p.step_mm * 1e-3
    empty = Bridge(np.empty((0, 3)), None if normals is None else np.empty((0, 3)), ln, off, np.zeros(len(ln), bool))
    if not off.any():
        return empty
    tan = polyline_tangents(ln)
    up = np.broadcast_to(np.asarray(bond_dir, dtype=np.float64), ln.shape)
    up = unit(up - np.einsum("ij,ij->i", up, tan)[:, None] * tan)
    far = np.flatnonzero(off)
    ends = _far_ends(pts, tree, ln, tan, up, far, p)
    n_e = _edge_normals(pts, tree, np.maximum(ends, 0), normals)
    chord = pts[np.maximum(ends, 0)] - ln[far]
    length = np.linalg.norm(chord, axis=1)
    front = -np.einsum("ij,ij->i", chord, n_e) / np.maximum(length, 1e-12)
    good = np.zeros(len(ln), bool)  # a scan edge across the line that the line does not lie in front of
    good[far] = (ends >= 0) & (front <= p.max_front)
    ok = _whole_runs(off, good)[far]  # a stretch off the scan is bridged whole or not at all
    far, ends, n_e, length = far[ok], ends[ok], n_e[ok], length[ok]
    bridged = np.zeros(len(ln), bool)
    bridged[far] = True
    if far.size == 0:
        return empty
    new, nrm = _sample(ln[far], pts[ends], n_e, tan[far], length, p)
    # the bridged surface faces away from the part's centre: a scan's normals at its edge are often flipped (on
    # world-2 uppers neighbouring bridges at the toe took opposite sides from them, and the film model sprayed the
    # inside of one: "glue would land 3 mm beyond the boundary")
    return Bridge(new, _away(nrm, new, pts.mean(axis=0)) if normals is not None else None, ln, off, bridged)


def _whole_runs(off: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(m,) bool: ``good`` kept only on circular runs of ``off`` where every point is good."""
    m = len(off)
    if off.all():
        return good & good.all()
    start = int(np.flatnonzero(~off)[0])
    order = np.roll(np.arange(m), -start)
    run = np.cumsum(~off[order])  # run id of each point, counted from a point on the scan
    bad_runs = np.unique(run[off[order] & ~good[order]])
    out = np.zeros(m, bool)
    out[order] = off[order] & ~np.isin(run, bad_runs)
    return out


def _sample(start: np.ndarray, end: np.ndarray, n_e: np.ndarray, tan: np.ndarray, length: np.ndarray,
            p: BridgeParams) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Points (k, 3) and outward normals (k, 3) along each quadratic bridge from ``start`` to ``end`` (leaving out
    the end, a scan point) and its straight continuation ``beyond_mm`` past the start."""
    # the control point lies in the edge's tangent plane, half the gap back from the edge along the chord's
    # projection onto it (the curve arrives along the surface); its offset from the chord is capped so the curve
    # bows out at most max_bulge / 2 of the gap
    chord = end - start
    in_plane = unit(chord - np.einsum("ij,ij->i", chord, n_e)[:, None] * n_e, allow_zero=True)
    ctrl = end - 0.5 * length[:, None] * in_plane
    u = chord / np.maximum(length, 1e-12)[:, None]
    rel = ctrl - start
    off = rel - np.einsum("ij,ij->i", rel, u)[:, None] * u
    scale = np.minimum(1.0, p.max_bulge * length / np.maximum(np.linalg.norm(off, axis=1), 1e-12))
    ctrl = ctrl - (1.0 - scale)[:, None] * off
    step = p.step_mm * 1e-3
    pts, nrm = [], []
    for k in range(len(start)):
        t = np.arange(0.0, 1.0, min(step / max(length[k], 1e-9), 0.5))
        b = ((1 - t) ** 2)[:, None] * start[k] + (2 * t * (1 - t))[:, None] * ctrl[k] + (t**2)[:, None] * end[k]
        db = (2 * (1 - t))[:, None] * (ctrl[k] - start[k]) + (2 * t)[:, None] * (end[k] - ctrl[k])
        d0 = unit(db[:1])[0] if np.linalg.norm(db[0]) > 1e-9 else unit((end[k] - start[k])[None])[0]
        out = np.arange(1, int(p.beyond_mm / p.step_mm) + 1) * step
        b = np.r_[start[k] - out[:, None] * d0, b]
        db = np.r_[np.tile(d0, (len(out), 1)), db]
        n = unit(np.cross(tan[k], db), allow_zero=True)
        n *= np.where(n @ n_e[k] < 0, -1.0, 1.0)[:, None]
        pts.append(b)
        nrm.append(np.where(np.linalg.norm(n, axis=1, keepdims=True) > 0.5, n, n_e[k]))
    return np.concatenate(pts), np.concatenate(nrm)
