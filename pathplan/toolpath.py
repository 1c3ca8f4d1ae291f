"""Values inside the path planner: the bond region and the tool path being built.

Both are frozen dataclasses over numpy arrays in ``base_link`` (metres); stages return new values
with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gluecell.core.errors import ValidationError

from .geom import polyline_gaps

__all__ = ["BondRegion", "ToolPath", "concat_paths"]


@dataclass(frozen=True)
class BondRegion:
    """A part's surface with a signed surface distance from its boundary line.

    Attributes:
        part: "upper" or "sole".
        points: (n, 3) float64 surface samples near and inside the bond region, base_link.
        normals: (n, 3) float64 unit outward normals.
        signed: (n,) float64 metres, surface (graph-geodesic) distance from the boundary line,
            > 0 on the bond side, < 0 beyond the line (e.g. above the bite line).
        s: (n,) float64 metres, arc length along the boundary of each point's nearest boundary vertex.
        boundary: (m, 3) float64 closed boundary line (bite line / sole rim), uniform spacing.
        boundary_normals: (m, 3) unit surface normals at the boundary.
        inward: (m, 3) unit surface tangents perpendicular to the boundary, into the bond side.
        width: metres; the band is ``0 <= signed <= width`` (``inf`` = the whole bond side).
    """

    part: str
    points: np.ndarray
    normals: np.ndarray
    signed: np.ndarray
    s: np.ndarray
    boundary: np.ndarray
    boundary_normals: np.ndarray
    inward: np.ndarray
    width: float = float("inf")
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.points)
        for name in ("normals", "signed", "s"):
            if len(getattr(self, name)) != n:
                raise ValidationError(f"BondRegion.{name}: expected {n} rows")

    @property
    def perimeter(self) -> float:
        """Length of the closed boundary, metres."""
        return float(polyline_gaps(self.boundary).sum())

    @property
    def band_mask(self) -> np.ndarray:
        """(n,) bool, points inside the band."""
        return (self.signed >= 0) & (self.signed <= self.width)


@dataclass(frozen=True)
class ToolPath:
    """Waypoints of a spray path under construction, grouped in passes.

    Attributes:
        part: "upper" or "sole".
        contact: (n, 3) float64 surface point the nozzle axis aims at.
        normal: (n, 3) unit surface normal at ``contact``.
        inward: (n, 3) unit surface tangent pointing into the bond side (away from the bite line).
        offset: (n,) float64 metres, signed surface distance of ``contact`` from the boundary.
        pass_id: (n,) int64, passes are contiguous runs; -1 marks a transit (gun-off) waypoint.
        spray: (n,) bool, gun on while moving to the next waypoint.
        direction: (n, 3) unit spray direction (nozzle +z), or None until oriented.
        tip: (n, 3) nozzle tip position, or None until the standoff is applied.
        speed: (n,) float64 m/s tip speed towards the next waypoint, or None.
        closed: whether passes are closed loops (contour rings).
        ring: (n,) bool per waypoint, or None: whether its pass is a closed ring. A path concatenated from a
            ring planner and an open one (contour + raster) is not ``closed`` as a whole, but its rings still
            are: :meth:`take` of a pass reads ``closed`` from here, so the modifiers close each ring (overlap,
            wrap-around smoothing and resampling) instead of leaving a dry seam where it starts.
    """

    part: str
    contact: np.ndarray
    normal: np.ndarray
    inward: np.ndarray
    offset: np.ndarray
    pass_id: np.ndarray
    spray: np.ndarray
    direction: np.ndarray | None = None
    tip: np.ndarray | None = None
    speed: np.ndarray | None = None
    closed: bool = False
    ring: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.contact)
        if self.ring is not None and len(self.ring) != n and len(self.ring) and self.ring.all() == self.ring.any():
            object.__setattr__(self, "ring", np.full(n, bool(self.ring[0])))  # one pass re-sampled: same flag
        for name in ("normal", "inward", "offset", "pass_id", "spray", "direction", "tip", "speed", "ring"):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise ValidationError(f"ToolPath.{name}: {len(v)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.contact)

    def passes(self) -> list[np.ndarray]:
        """Index arrays of each contiguous run of equal ``pass_id`` (transit runs included)."""
        if len(self) == 0:
            return []
        cut = np.flatnonzero(np.diff(self.pass_id) != 0) + 1
        return np.split(np.arange(len(self)), cut)

    def take(self, idx: np.ndarray) -> ToolPath:
        """The waypoints ``idx`` (in that order)."""
        kw = {}
        for name in ("contact", "normal", "inward", "offset", "pass_id", "spray", "direction", "tip", "speed"):
            v = getattr(self, name)
            kw[name] = None if v is None else v[idx]
        if self.ring is None:
            return replace(self, **kw)
        ring = self.ring[idx]
        return replace(self, ring=ring, closed=bool(len(ring)) and bool(ring.all()), **kw)


def concat_paths(paths: list[ToolPath], renumber: bool = True) -> ToolPath:
    """Concatenate tool paths of one part; pass ids are renumbered to stay distinct unless ``renumber`` is False."""
    if not paths:
        raise ValidationError("concat_paths: nothing to concatenate")
    kw: dict = {}
    for name in ("contact", "normal", "inward", "offset", "spray"):
        kw[name] = np.concatenate([getattr(p, name) for p in paths])
    ids, base = [], 0
    for p in paths:
        pid = p.pass_id.copy()
        if renumber:
            pid[pid >= 0] += base
            base = (pid.max() + 1) if len(pid) and pid.max() >= 0 else base
        ids.append(pid)
    kw["pass_id"] = np.concatenate(ids)
    for name in ("direction", "tip", "speed"):
        vals = [getattr(p, name) for p in paths]
        kw[name] = None if any(v is None for v in vals) else np.concatenate(vals)
    closed = all(p.closed for p in paths)
    rings = [p.ring if p.ring is not None else np.full(len(p), p.closed) for p in paths]
    ring = None if closed or not any(r.any() for r in rings) else np.concatenate(rings)
    return replace(paths[0], closed=closed, ring=ring, **kw)
