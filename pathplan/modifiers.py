"""Path modifiers: :class:`ToolPath` -> :class:`ToolPath` (noether's tool-path modifiers).

Typical order: ``resample`` -> ``smooth`` -> ``orient`` -> ``standoff`` -> ``lead_in_out`` ->
``gun_on_off`` -> ``speed_profile``. Each works pass by pass (closed passes wrap around).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .geom import interp_rows, unit
from .grading import ring_standoff
from .stages import Stage, register
from .toolpath import ToolPath, concat_paths

__all__ = ["Resample", "Smooth", "Orient", "Standoff", "LeadInOut", "GunOnOff", "SpeedProfile", "pass_tangents",
           "fill_mask"]

_FIELDS = ("contact", "normal", "inward", "offset", "direction", "tip", "speed")


def pass_tangents(pts: np.ndarray, closed: bool) -> np.ndarray:
    """Unit tangents of one pass (k, 3) by central differences."""
    if len(pts) < 2:
        return np.tile([1.0, 0, 0], (len(pts), 1))
    if closed:
        return unit(np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0))
    return unit(np.gradient(pts, axis=0))


def fill_mask(path: ToolPath, from_mm: float) -> np.ndarray:
    """(n,) bool: waypoints of spray passes whose median distance from the boundary is at least ``from_mm`` (the
    raster fill over the lasted bottom / footbed, which the tuner starts beyond the last ring); none if 0."""
    out = np.zeros(len(path), bool)
    if from_mm <= 0:
        return out
    for idx in path.passes():
        if path.pass_id[idx[0]] >= 0 and float(np.median(np.abs(path.offset[idx]))) >= from_mm * 1e-3:
            out[idx] = True
    return out


def _map_passes(path: ToolPath, fn) -> ToolPath:
    """Apply ``fn(sub_path) -> sub_path`` to every spray pass; transit runs are kept as they are."""
    out = [fn(path.take(idx)) if path.pass_id[idx[0]] >= 0 else path.take(idx) for idx in path.passes()]
    return concat_paths(out, renumber=False) if out else path


@dataclass(frozen=True)
class ResampleParams:
    """Waypoint spacing along each pass (mm)."""

    spacing_mm: float = 2.0

    def __post_init__(self) -> None:
        if not self.spacing_mm > 0:
            raise ValueError("spacing_mm must be > 0")


@register
class Resample(Stage):
    """Uniform arc-length resampling of the contact points of every pass."""

    name = "resample"
    kind = "modifier"
    idempotent = True
    Params = ResampleParams

    def modify(self, path: ToolPath) -> ToolPath:
        return _map_passes(path, self._fixed_point)

    def _fixed_point(self, p: ToolPath) -> ToolPath:
        # resampling a kinked polyline shortens it (chords cut the kinks); a few rounds settle the spacing
        for _ in range(40):
            q = self._one(p)
            if q is p:
                break
            p = q
        return p

    def _one(self, p: ToolPath) -> ToolPath:
        pts = np.vstack([p.contact, p.contact[:1]]) if p.closed else p.contact
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        sp = self.params.spacing_mm * 1e-3
        n = max(round(s[-1] / sp), 3 if p.closed else 1) if s[-1] > 0 else 0
        if n == 0 or (np.ptp(seg) <= 0.1 * sp and abs(seg.mean() - sp) <= 0.05 * sp):
            return p  # already uniform at (within 5 % of) this spacing: nothing to do (idempotent)
        si = np.linspace(0, s[-1], n + (0 if p.closed else 1), endpoint=not p.closed)
        kw, names = {}, [name for name in _FIELDS if getattr(p, name) is not None]
        cols = [getattr(p, name).reshape(len(p), -1) for name in names]
        vv = np.hstack(cols)  # every field's columns interpolated at once (geom.interp_rows: np.interp's numbers)
        r_all = interp_rows(si, s, np.vstack([vv, vv[:1]]) if p.closed else vv)
        at = np.cumsum([0] + [c.shape[1] for c in cols])
        for name, a, b in zip(names, at[:-1], at[1:]):
            r = np.ascontiguousarray(r_all[:, a:b]).reshape((len(si), *getattr(p, name).shape[1:]))
            kw[name] = unit(r) if name in ("normal", "inward", "direction") else r
        m = len(si)
        return replace(p, pass_id=np.full(m, p.pass_id[0]), spray=np.full(m, bool(p.spray[0])), **kw)


@dataclass(frozen=True)
class SmoothParams:
    """Moving-average window (waypoints, odd) applied ``iterations`` times to contact points and normals."""

    window: int = 5
    iterations: int = 1

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0 or self.iterations < 0:
            raise ValueError("window must be an odd number >= 1 and iterations >= 0")


@register
class Smooth(Stage):
    """Moving-average smoothing of contact points and normals (removes scan noise from the path)."""

    name = "smooth"
    kind = "modifier"
    idempotent = False
    Params = SmoothParams

    def modify(self, path: ToolPath) -> ToolPath:
        return _map_passes(path, self._one)

    def _one(self, p: ToolPath) -> ToolPath:
        w = min(self.params.window, len(p) - (1 - len(p) % 2))
        if w < 3:
            return p
        k = np.ones(w) / w
        h = w // 2

        def filt(a: np.ndarray) -> np.ndarray:
            for _ in range(self.params.iterations):
                if p.closed:
                    ext = np.concatenate([a[-h:], a, a[:h]])
                else:
                    ext = np.concatenate([np.repeat(a[:1], h, 0), a, np.repeat(a[-1:], h, 0)])
                a = np.column_stack([np.convolve(ext[:, j], k, "valid") for j in range(a.shape[1])])
            return a

        return replace(p, contact=filt(p.contact), normal=unit(filt(p.normal)), inward=unit(filt(p.inward)))


@dataclass(frozen=True)
class OrientParams:
    """Nozzle axis: the inward surface normal, tilted ``tilt_deg`` towards the bond side on passes closer than
    ``tilt_within_mm`` to the boundary (the sharp edge of the spray then lies on the bite-line side), and
    kept within ``max_from_down_deg`` of straight down (a gun spraying upwards drips). The directions are
    averaged along each pass over ``smooth_mm`` (round a tight toe the nozzle then turns over a longer
    stretch, which the wrist can follow at process speed; the tilt limit still holds). Passes closer than
    ``edge_smooth_within_mm`` to the boundary (the edge passes and the first main one) are averaged over
    ``edge_smooth_mm`` only: a nozzle there leaning along a curved line throws its spray across it (world 1 pair
    00004, true spray: 0.9 mm of glue above the line with every pass at 80 mm, 0.2 mm at 30 mm)."""

    tilt_deg: float = 0.0
    tilt_within_mm: float = 8.0
    max_tilt_deg: float = 35.0
    max_from_down_deg: float = 115.0
    smooth_mm: float = 80.0
    edge_smooth_mm: float = 30.0
    edge_smooth_within_mm: float = 15.0

    def __post_init__(self) -> None:
        if not (0 <= self.tilt_deg <= self.max_tilt_deg < 90 and 0 < self.max_from_down_deg <= 180):
            raise ValueError("need 0 <= tilt_deg <= max_tilt_deg < 90 and 0 < max_from_down_deg <= 180")


@register
class Orient(Stage):
    """Sets the spray direction of every waypoint from its normal, tilt and the tilt limits."""

    name = "orient"
    kind = "modifier"
    idempotent = True
    Params = OrientParams

    def modify(self, path: ToolPath) -> ToolPath:
        p = self.params
        a = np.where(np.abs(path.offset) < p.tilt_within_mm * 1e-3, np.deg2rad(p.tilt_deg), 0.0)
        d = unit(-path.normal * np.cos(a)[:, None] + path.inward * np.sin(a)[:, None])
        if p.smooth_mm > 0 or p.edge_smooth_mm > 0:
            d = unit(self._smooth_dirs(path, d, p.smooth_mm * 1e-3, p.edge_smooth_mm * 1e-3,
                                           p.edge_smooth_within_mm * 1e-3))
        down = np.array([0.0, 0.0, -1.0])
        ang = np.arccos(np.clip(d @ down, -1, 1))
        lim = np.deg2rad(p.max_from_down_deg)
        over = ang > lim
        if np.any(over):  # rotate towards straight down in the plane of d and down, onto the limit
            perp = unit(d[over] - np.outer(d[over] @ down, down))
            d[over] = np.cos(lim) * down + np.sin(lim) * perp
        # never more than max_tilt from the surface normal
        cosn = np.einsum("ij,ij->i", d, -path.normal)
        bad = cosn < np.cos(np.deg2rad(p.max_tilt_deg)) - 1e-9
        if np.any(bad):
            m = np.deg2rad(p.max_tilt_deg)
            perp = unit(d[bad] + np.einsum("ij,ij->i", d[bad], path.normal[bad])[:, None] * path.normal[bad])
            d[bad] = -np.cos(m) * path.normal[bad] + np.sin(m) * perp
        return replace(path, direction=d)

    @staticmethod
    def _smooth_dirs(path: ToolPath, d: np.ndarray, length: float, edge_length: float, edge_within: float
                     ) -> np.ndarray:  # fmt: skip
        out = d.copy()
        for idx in path.passes():
            if len(idx) < 3:
                continue
            edge = float(np.median(np.abs(path.offset[idx]))) < edge_within
            length_i = edge_length if edge else length
            if length_i <= 0:
                continue
            step = float(np.median(np.linalg.norm(np.diff(path.contact[idx], axis=0), axis=1))) or 1e-3
            h = min(int(length_i / step / 2), (len(idx) - 1) // 2)
            if h < 1:
                continue
            k = np.ones(2 * h + 1)
            dd = d[idx]
            ext = np.concatenate([dd[-h:], dd, dd[:h]]) if path.take(idx).closed else np.concatenate(
                [np.repeat(dd[:1], h, 0), dd, np.repeat(dd[-1:], h, 0)])  # fmt: skip
            out[idx] = np.column_stack([np.convolve(ext[:, j], k, "valid") for j in range(3)])
        return out


@dataclass(frozen=True)
class StandoffParams:
    """Distance from the nozzle tip to the surface along the spray axis (mm), ``edge_standoff_mm`` on passes
    closer than ``edge_within_mm`` to the boundary (the sharp edge pass); see deposition.py for the values."""

    standoff_mm: float = 35.0
    edge_standoff_mm: float = 8.0
    edge_within_mm: float = 5.0
    #: Graded edge rings (:mod:`~gluecell.pathplan.grading`): the tuner designs a standoff per edge ring (True), or
    #: every edge ring at ``edge_standoff_mm`` (False, the default). Off by default: on world 2 (its true gun has more
    #: mist) graded rings put 4-14 mm of visible glue above the true line where the flat design put 0.4-6 mm
    #: (world 1: 36.5 -> 32.2 s per shoe at the same or better coverage, glue above 0.42 -> 0.45 mm).
    graded: bool = False
    #: (nominal ring offset mm, standoff mm) per edge ring, set by the tuner; an edge-pass waypoint takes the
    #: standoff of the ring with the nearest offset (empty: ``edge_standoff_mm``).
    ring_standoffs_mm: tuple[tuple[float, float], ...] = ()
    #: The raster fill (passes at least ``fill_from_mm`` from the boundary, set by the tuner to the raster's start;
    #: 0: none) stands off ``fill_standoff_mm`` (0: ``standoff_mm``, the default): FACTS.md spray practice, HVLP
    #: 100-150 mm with 50 % overlap; far from the line a wide fan needs fewer lines and lays a more even film per
    #: glue spent. Opt-in (70 mm on the sole: 0.4 / 1.4 s faster on worlds 1 / 2, sole coverage +0.1 / -0.7 points;
    #: not on the upper: the real boot's junction got 0.7-1.2 mm of glue, pathplan/README.md "Robot time").
    fill_standoff_mm: float = 0.0
    fill_from_mm: float = 0.0

    def __post_init__(self) -> None:
        if not (5.0 <= self.standoff_mm <= 200.0 and 5.0 <= self.edge_standoff_mm <= 200.0
                and (self.fill_standoff_mm == 0 or 5.0 <= self.fill_standoff_mm <= 200.0)):  # fmt: skip
            raise ValueError("standoff_mm, edge_standoff_mm and fill_standoff_mm (or 0) must be within 5-200")
        if self.fill_from_mm < 0:
            raise ValueError("fill_from_mm must be >= 0")
        if any(len(r) != 2 or not (0 <= r[0] <= 200 and 5.0 <= r[1] <= 200.0) for r in self.ring_standoffs_mm):
            raise ValueError("ring_standoffs_mm: (offset 0-200, standoff 5-200) mm pairs")


@register
class Standoff(Stage):
    """Places the nozzle tip ``standoff`` back from the contact point along the spray direction."""

    name = "standoff"
    kind = "modifier"
    idempotent = True
    Params = StandoffParams

    def modify(self, path: ToolPath) -> ToolPath:
        p = self.params
        d = path.direction if path.direction is not None else -path.normal
        rings = tuple((o * 1e-3, h * 1e-3) for o, h in p.ring_standoffs_mm)
        edge = ring_standoff(path.offset, rings, p.edge_standoff_mm * 1e-3)
        so = np.where(np.abs(path.offset) < p.edge_within_mm * 1e-3, edge, p.standoff_mm * 1e-3)
        if p.fill_standoff_mm > 0:
            so = np.where(fill_mask(path, p.fill_from_mm), p.fill_standoff_mm * 1e-3, so)
        return replace(path, direction=d, tip=path.contact - so[:, None] * d)


@dataclass(frozen=True)
class LeadInOutParams:
    """Gun-off approach/departure along the pass tangent (mm); closed rings overlap their start (mm). 5 mm of
    lead covers an automatic gun's valve delay (chosen: <= 8 ms, a solenoid-piloted needle) at 460 mm/s (3.7 mm)."""

    lead_mm: float = 5.0
    overlap_mm: float = 6.0

    def __post_init__(self) -> None:
        if self.lead_mm < 0 or self.overlap_mm < 0:
            raise ValueError("lead_mm and overlap_mm must be >= 0")


@register
class LeadInOut(Stage):
    """Adds lead-in/lead-out waypoints (gun off) and closes rings with an overlap (gun on)."""

    name = "lead_in_out"
    kind = "modifier"
    idempotent = False
    Params = LeadInOutParams

    def modify(self, path: ToolPath) -> ToolPath:
        return replace(_map_passes(path, self._one), closed=False, ring=None)

    def _one(self, p: ToolPath) -> ToolPath:
        if p.closed and self.params.overlap_mm > 0:
            seg = np.linalg.norm(np.diff(p.contact, axis=0), axis=1)
            n_ov = int(np.searchsorted(np.cumsum(seg), self.params.overlap_mm * 1e-3)) + 1
            p = p.take(np.concatenate([np.arange(len(p)), np.arange(min(n_ov, len(p)))]))
        t = pass_tangents(p.contact, closed=False)
        lead = self.params.lead_mm * 1e-3
        if lead <= 0:
            return p
        first, last = p.take(np.array([0])), p.take(np.array([len(p) - 1]))
        moved = []
        for q, tv in ((first, -t[0]), (last, t[-1])):
            kw = {"contact": q.contact + lead * tv, "spray": np.array([False])}
            if q.tip is not None:
                kw["tip"] = q.tip + lead * tv
            moved.append(replace(q, **kw))
        spray = p.spray.copy()
        spray[-1] = False
        return concat_paths([moved[0], replace(p, spray=spray), moved[1]], renumber=False)


@dataclass(frozen=True)
class GunOnOffParams:
    """Retract distance along the nozzle axis between passes (mm); the gun is off in transit. A pass that starts
    within ``link_within_mm`` of the previous pass's end, its nozzle turned less than ``link_turn_deg``, is
    linked by a straight gun-off move at spray height instead (neighbouring rings and raster lines: no retract,
    no stop; the straight chord between two nozzle tips that close stays as clear of the surface as they are)."""

    clearance_mm: float = 30.0
    link_within_mm: float = 15.0
    link_turn_deg: float = 30.0

    def __post_init__(self) -> None:
        if self.clearance_mm < 0 or self.link_within_mm < 0 or not 0 <= self.link_turn_deg <= 180:
            raise ValueError("clearance_mm and link_within_mm must be >= 0, link_turn_deg within 0-180")


@register
class GunOnOff(Stage):
    """Switches the gun off at the end of every pass and inserts retract/approach transit waypoints."""

    name = "gun_on_off"
    kind = "modifier"
    idempotent = False
    Params = GunOnOffParams

    def modify(self, path: ToolPath) -> ToolPath:
        if path.tip is None:
            raise ValueError("gun_on_off needs nozzle tips: put 'standoff' before it")
        runs = [path.take(i) for i in path.passes()]
        c = self.params.clearance_mm * 1e-3
        out: list[ToolPath] = []
        for k, r in enumerate(runs):
            if r.pass_id[0] >= 0:
                sp = r.spray.copy()
                sp[-1] = False
                r = replace(r, spray=sp)
            out.append(r)
            if k + 1 < len(runs) and r.pass_id[0] >= 0 and runs[k + 1].pass_id[0] >= 0:
                a, b = r.take(np.array([len(r) - 1])), runs[k + 1].take(np.array([0]))
                if not self._linked(a, b):
                    out += [self._lift(a, c), self._lift(b, c)]
        return concat_paths(out, renumber=False)

    def _linked(self, a: ToolPath, b: ToolPath) -> bool:
        """Whether the pass starting at ``b`` follows the one ending at ``a`` without a retract."""
        p = self.params
        near = np.linalg.norm(b.tip[0] - a.tip[0]) <= p.link_within_mm * 1e-3
        turn = np.degrees(np.arccos(np.clip(float(a.direction[0] @ b.direction[0]), -1.0, 1.0)))
        return bool(near and turn <= p.link_turn_deg)

    @staticmethod
    def _lift(q: ToolPath, c: float) -> ToolPath:
        return replace(q, tip=q.tip - c * q.direction, pass_id=np.array([-1]), spray=np.array([False]))


@dataclass(frozen=True)
class SpeedProfileParams:
    """Spray speed at the surface, on the edge pass (closer than ``edge_within_mm``) and tip speed in transit
    (mm/s): 460 mm/s on every spray pass (FACTS.md spray practice; the time parametrisation slows the tip where a
    joint would pass its limit); transit 800 mm/s with the gun off (the time
    parametrisation then holds the joint limits). The tip speeds up round convex corners (at most
    ``max_corner_ratio`` times) so that the sprayed spot keeps the process speed."""

    spray_mm_s: float = 460.0
    edge_mm_s: float = 460.0
    edge_within_mm: float = 5.0
    transit_mm_s: float = 800.0
    max_corner_ratio: float = 4.0
    #: Speed of the raster fill (passes at least ``fill_from_mm`` from the boundary; 0: none), see
    #: ``StandoffParams.fill_standoff_mm``: 300 mm/s lays the covered film at a ~15 mm line step from 100 mm.
    fill_mm_s: float = 460.0
    fill_from_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.max_corner_ratio < 1 or self.fill_from_mm < 0:
            raise ValueError("max_corner_ratio must be >= 1 and fill_from_mm >= 0")
        if not all(0 < v <= 2000 for v in (self.spray_mm_s, self.edge_mm_s, self.transit_mm_s, self.fill_mm_s)):
            raise ValueError("speeds must be within 0-2000 mm/s")


@register
class SpeedProfile(Stage):
    """Sets the tip speed towards the next waypoint: surface spray speed when the gun is on, transit otherwise."""

    name = "speed_profile"
    kind = "modifier"
    idempotent = True
    Params = SpeedProfileParams

    def modify(self, path: ToolPath) -> ToolPath:
        p = self.params
        on = np.where(np.abs(path.offset) < p.edge_within_mm * 1e-3, p.edge_mm_s, p.spray_mm_s)
        on = np.where(fill_mask(path, p.fill_from_mm), p.fill_mm_s, on)
        v = np.where(path.spray & (path.pass_id >= 0), on, p.transit_mm_s) * 1e-3
        if path.tip is not None and len(path) > 1:
            # spray speeds hold at the surface: round a convex corner the tip travels further than the spot
            dt = np.linalg.norm(np.diff(path.tip, axis=0), axis=1)
            dc = np.linalg.norm(np.diff(path.contact, axis=0), axis=1)
            ratio = np.clip(np.divide(dt, dc, out=np.ones_like(dt), where=dc > 1e-6), 0.25, p.max_corner_ratio)
            v = v * np.where(path.spray & (path.pass_id >= 0), np.r_[ratio, 1.0], 1.0)
        return replace(path, speed=v)
