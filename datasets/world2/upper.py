"""The lasted upper of world 2, in the shoe frame of a right shoe (see :mod:`.geometry`).

The last's bottom outline comes from the style's half-width profile at this pair's last copy
(length, width, toe spring); the leather wraps it (outline grown by the leather thickness) and
the lasting margin is folded under it (the bottom's outer band sits one leather thickness
lower than the insole board). The side rises from the feather edge (a quarter round of the
style's radius: near-sharp for board-lasted boots) with a small flare, tapers inward towards
the collar and rounds over the toe box. Local lasting variation (loose leather at the medial
waist, toe and heel fullness) pushes the side outward in patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import EU_MM, Style
from .geometry import Outline, half_widths, make_outline, orient_outward, ring_mesh, smoothstep

__all__ = ["UpperParams", "Upper", "build_upper", "bottom_profile", "last_outline", "CROWN_M", "BALL_XI"]

#: Bottom crown: the last's bottom is convex, its middle this much below its edge (chosen, README).
CROWN_M = 0.001
#: Ball line, as a fraction of the last length from the heel (the bottom's lowest line).
BALL_XI = 0.68
#: Half-width of the core line that inward offsets shrink towards (fraction of length).
_CORE = (0.30, 0.72)
#: Bottom rings of the outer band, as fractions of its width (dense at the margin step and the edge).
_OUTER_RINGS = (1.0, 0.83, 0.67, 0.53, 0.47, 0.43, 0.4, 0.37, 0.27, 0.17, 0.07, 0.017)


@dataclass(frozen=True)
class UpperParams:
    """Hidden parameters of one lasted upper (metres)."""

    length: float
    ball_width: float
    toe_spring: float
    heel_rise: float
    feather_radius: float
    leather: float
    margin: float
    waist_loose: float
    toe_full: float
    heel_full: float


def bottom_profile(x: np.ndarray, length: float, toe_spring: float, heel_rise: float) -> np.ndarray:
    """Height (m) of the last's bottom at ``x``: 0 at the ball, rising to ``heel_rise`` under the heel
    seat and as a power curve to ``toe_spring`` at the toe tip."""
    xi = np.asarray(x, dtype=np.float64) / length
    heel = heel_rise * smoothstep(BALL_XI - 0.06, 0.22, xi)
    toe = toe_spring * np.clip((xi - BALL_XI) / (1.0 - BALL_XI), 0.0, None) ** 2.2
    return heel + toe


def last_outline(style: Style, length: float, ball_width: float, n: int, grow: float = 0.0) -> Outline:
    """Plan outline of a last (right shoe) of ``length``/``ball_width``, grown outward by ``grow`` (m)."""
    from .geometry import inset

    xi = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, 400))
    med = half_widths(xi, style.medial, style.toe_q) * ball_width / 2.0
    lat = half_widths(xi, style.lateral, style.toe_q) * ball_width / 2.0
    o = make_outline(med, lat, length, n)
    if grow == 0.0:
        return o
    return make_outline_from_points(inset(o.points, -grow))


def make_outline_from_points(points: np.ndarray) -> Outline:
    """An :class:`Outline` of already uniformly spaced CCW points (re-measured)."""
    from .geometry import _frame, perimeter

    t, nrm = _frame(points)
    seg = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    return Outline(points=points, tangents=t, normals=nrm, u=s / seg.sum(), length=perimeter(points))


def core_points(xy: np.ndarray, length: float) -> np.ndarray:
    """Nearest points of the core segment (x in ``_CORE`` of the length, y = 0): inward offsets shrink
    towards it, which never folds an outline over itself at the toe or heel."""
    return np.column_stack([np.clip(xy[:, 0], _CORE[0] * length, _CORE[1] * length), np.zeros(len(xy))])


@dataclass(frozen=True)
class Upper:
    """A lasted upper (right shoe, shoe frame) and the functions the attach and the truth need."""

    style: Style
    p: UpperParams
    outline: Outline
    vertices: np.ndarray
    faces: np.ndarray
    side_t: np.ndarray
    first_side_ring: int
    n: int

    def edge_z(self, u: np.ndarray) -> np.ndarray:
        """Height (m) of the bottom's outer edge (folded margin included) at outline parameter ``u``."""
        x = self.outline.at(u)[:, 0]
        return bottom_profile(x, self.p.length, self.p.toe_spring, self.p.heel_rise) - self.p.leather

    def bottom_z(self, xy: np.ndarray, edge_dist: np.ndarray) -> np.ndarray:
        """Height (m) of the bottom at plan points ``xy`` that lie ``edge_dist`` inside the outline."""
        p = self.p
        z = bottom_profile(xy[:, 0], p.length, p.toe_spring, p.heel_rise)
        z = z - CROWN_M * smoothstep(p.feather_radius, 0.025, edge_dist)
        return z - p.leather * (1.0 - smoothstep(p.margin - 0.001, p.margin + 0.001, edge_dist))

    def side_point(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(m, 3) points of the side at outline parameter ``u`` and height ``t`` above the bottom's edge
        (``t`` >= feather radius; below it the side is the feather edge's quarter round)."""
        u = np.asarray(u, dtype=np.float64)
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), u.shape)
        base = self.outline.at(u)
        nrm = self.outline.normals_at(u)
        out = self._outward(u, t, base)
        xy = base + nrm * out[:, None]
        core = core_points(base, self.p.length)
        r = xy - core
        dist = np.linalg.norm(r, axis=1)
        d_in = np.minimum(self._inward(t, base), 0.6 * dist)
        xy = xy - r / np.maximum(dist, 1e-9)[:, None] * d_in[:, None]
        return np.column_stack([xy, self.edge_z(u) + t])

    def _outward(self, u: np.ndarray, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        p, s = self.p, self.style
        flare = s.flare_m * np.sin(0.5 * np.pi * np.clip(t / 0.008, 0.0, 1.0))
        band = smoothstep(0.0, 0.003, t) * (1.0 - smoothstep(0.010, 0.028, t))
        waist_u = _medial_waist_u(self.outline, p.length)
        waist = p.waist_loose * _bump(u, waist_u, 0.04) * band
        toe = p.toe_full * _bump(u, 0.5, 0.06) * (1.0 - smoothstep(0.012, 0.03, t))
        heel = p.heel_full * _bump(u, 0.0, 0.06) * (1.0 - smoothstep(0.015, 0.035, t))
        return flare + waist + toe + heel

    def _inward(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        s = self.style
        taper = np.tan(s.side_taper) * np.clip(t - 0.008, 0.0, None)
        fore = smoothstep(0.74, 0.9, base[:, 0] / self.p.length)
        toe_box = fore * np.clip(t - 0.006, 0.0, None) ** 2 / (2.0 * s.toe_box_m)
        return taper + toe_box

    def perimeter_at(self, t: float, n: int = 720) -> float:
        """Perimeter (m) of the side at height ``t`` above the edge."""
        from .geometry import perimeter

        u = np.arange(n) / n
        return perimeter(self.side_point(u, np.full(n, max(t, self.p.feather_radius)))[:, :2])


def _bump(u: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.mod(u - centre + 0.5, 1.0) - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def _medial_waist_u(outline: Outline, length: float) -> float:
    pts = outline.points
    med = np.flatnonzero(pts[:, 1] > 0)
    return float(outline.u[med[np.argmin(np.abs(pts[med, 0] - 0.42 * length))]])


def upper_params(style: Style, size: float, rng: np.random.Generator, cfg) -> UpperParams:
    """Draw this pair's last copy and lasting (ranges: :class:`~.config.World2Config`)."""
    grade = size - style.ref_size
    length = size * EU_MM * 1e-3 + rng.uniform(-1, 1) * cfg.last_length_var_m
    width = style.ball_width_m + 0.002 * grade + rng.uniform(-1, 1) * cfg.last_width_var_m
    return UpperParams(
        length=float(length),
        ball_width=float(width),
        toe_spring=float(style.toe_spring_m + rng.uniform(-1, 1) * cfg.last_spring_var_m),
        heel_rise=float(style.heel_rise_m),
        feather_radius=float(style.feather_radius_m * (1.0 + rng.uniform(-1, 1) * cfg.feather_radius_var)),
        leather=float(rng.uniform(*style.leather_m)),
        margin=float(rng.uniform(*cfg.lasting_margin_m)),
        waist_loose=float(rng.uniform(0.0, cfg.waist_loose_max_m)),
        toe_full=float(rng.uniform(-1, 1) * cfg.toe_heel_fullness_m),
        heel_full=float(rng.uniform(-1, 1) * cfg.toe_heel_fullness_m),
    )


def _side_heights(p: UpperParams, style: Style) -> np.ndarray:
    t1 = np.arange(max(p.feather_radius, 0.001), 0.036, 0.001)
    t2 = np.arange(0.04, style.body_height_m, 0.005)
    return np.concatenate([t1, t2, [style.body_height_m]])


def build_upper(style: Style, p: UpperParams, n: int) -> Upper:
    """Mesh the lasted upper: bottom (centre to edge), feather-edge round, side, collar."""
    outline = last_outline(style, p.length, p.ball_width, n, grow=p.leather)
    up = Upper(style, p, outline, np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), np.zeros(0), 0, n)
    u = outline.u
    edge = outline.points
    rf = p.feather_radius
    rings: list[np.ndarray] = []
    # bottom: rings from the centre outward, at distances e inside the feather-edge round's start
    core = core_points(edge, p.length)
    span = np.linalg.norm(edge - core, axis=1)
    e_out = np.minimum(0.03 + rf, 0.6 * span)  # the outer band (margin step, crown) gets fixed distances
    inner = [e_out + (0.97 * span - e_out) * g for g in np.linspace(1.0, 0.15, 6)]
    outer = [rf + (e_out - rf) * g for g in _OUTER_RINGS]
    for e in inner + outer:
        xy = edge - (edge - core) / span[:, None] * e[:, None]
        rings.append(np.column_stack([xy, up.bottom_z(xy, e)]))
    # feather-edge quarter round from the bottom to the side
    for phi in np.linspace(0.0, 0.5 * np.pi, 6):
        d = rf * (1.0 - np.sin(phi))
        xy = edge - (edge - core) / span[:, None] * d
        rings.append(np.column_stack([xy, up.edge_z(u) + rf * (1.0 - np.cos(phi))]))
    first_side = len(rings)
    side_t = _side_heights(p, style)
    for t in side_t[1:] if np.isclose(side_t[0], rf) else side_t:
        rings.append(up.side_point(u, np.full(n, t)))
    v, f = ring_mesh(rings, np.append(core.mean(axis=0), rings[0][:, 2].mean()), rings[-1].mean(axis=0))
    f = orient_outward(v, f)
    side_t = side_t[1:] if np.isclose(side_t[0], rf) else side_t
    return Upper(style, p, outline, v, f, side_t, first_side, n)
