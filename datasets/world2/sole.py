"""The cup sole of world 2: designed on its own CAD last, moulded, shrunk and warped (shoe frame).

The sole's designer never sees the upper it will be pressed onto: the cavity is the style's CAD
last (its own copy: own length and toe spring) grown by the nominal leather thickness and made
``undersize`` smaller all round, so the wall grips. The wall is thin, straight and sharp-cornered:
a flat rim, no fillet where the inner wall meets the footbed, a moulding draft on the inner wall.
After demoulding the part shrinks (``shrink_x``/``shrink_y`` in plan about the cavity's centroid,
``shrink_z`` in height) and bows along its length (``bow``; positive lifts the middle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SOLE_MATERIALS, Style
from .geometry import Outline, inset, orient_outward, perimeter, ring_mesh
from .upper import BALL_XI, CROWN_M, bottom_profile, core_points, last_outline, make_outline_from_points

__all__ = ["SoleParams", "Sole", "sole_params", "build_sole", "rim_height"]


@dataclass(frozen=True)
class SoleParams:
    """Hidden parameters of one sole (metres, pascals)."""

    cad_length: float
    cad_width: float
    cad_spring: float
    heel_rise: float
    undersize: float
    leather_nominal: float
    shrink_x: float
    shrink_y: float
    shrink_z: float
    bow: float
    draft_deg: float
    material: str
    E: float
    nu: float


def rim_height(style: Style, u: np.ndarray) -> np.ndarray:
    """Designed rim height (m) above the footbed at cavity parameter ``u`` (straight lines between
    the style's corners)."""
    cu, ch = np.array(style.rim, dtype=np.float64).T
    return np.interp(np.mod(u, 1.0), cu, ch)


def sole_params(style: Style, size: float, rng: np.random.Generator, cfg) -> SoleParams:
    """Draw this sole's CAD last, fit, moulding and compound."""
    from .config import EU_MM

    grade = size - style.ref_size
    sx, sy = rng.uniform(*cfg.shrink, size=2)
    mat = SOLE_MATERIALS[style.sole_materials[int(rng.integers(len(style.sole_materials)))]]
    return SoleParams(
        cad_length=float(size * EU_MM * 1e-3 + rng.uniform(-1, 1) * cfg.cad_length_var_m),
        cad_width=float(style.ball_width_m + 0.002 * grade),
        cad_spring=float(style.toe_spring_m + rng.uniform(-1, 1) * cfg.cad_spring_var_m),
        heel_rise=float(style.heel_rise_m),
        undersize=float(rng.uniform(*cfg.undersize_m)),
        leather_nominal=float(np.mean(style.leather_m)),
        shrink_x=float(sx),
        shrink_y=float(sy),
        shrink_z=float(cfg.shrink_z_ratio * 0.5 * (sx + sy)),
        bow=float(rng.uniform(-1, 1) * cfg.warp_bow_m),
        draft_deg=float(cfg.draft_deg),
        material=mat.name,
        E=float(rng.uniform(*mat.E_pa)),
        nu=float(rng.uniform(*mat.nu)),
    )


@dataclass(frozen=True)
class Sole:
    """A moulded, shrunk sole (shoe frame, not yet placed) and its functions for the attach."""

    style: Style
    p: SoleParams
    cavity: Outline
    centre: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    ring_kind: tuple[str, ...]
    n: int

    def _unshrink(self, xy: np.ndarray) -> np.ndarray:
        c = self.centre
        return np.column_stack([c[0] + (xy[:, 0] - c[0]) / (1.0 - self.p.shrink_x),
                                c[1] + (xy[:, 1] - c[1]) / (1.0 - self.p.shrink_y)])  # fmt: skip

    def footbed_z(self, xy: np.ndarray, edge_dist: np.ndarray | float = 0.03) -> np.ndarray:
        """Footbed height (m) at plan points ``xy`` of the shrunk sole (``edge_dist``: inside the cavity edge)."""
        q = self._unshrink(np.atleast_2d(xy))
        return (1.0 - self.p.shrink_z) * _footbed_mould(self.p, q, edge_dist)

    def thickness(self, xy: np.ndarray, edge_dist: np.ndarray | float = 0.03) -> np.ndarray:
        """Sole thickness (m) under the footbed at ``xy``: footbed minus tread."""
        q = self._unshrink(np.atleast_2d(xy))
        return (1.0 - self.p.shrink_z) * (_footbed_mould(self.p, q, edge_dist) - _tread_mould(self.p, self.style, q))

    def rim(self, u: np.ndarray) -> np.ndarray:
        """Rim height (m) above the footbed edge at cavity parameter ``u``, after shrinkage."""
        return (1.0 - self.p.shrink_z) * rim_height(self.style, u)

    def cavity_perimeter(self, h: float) -> float:
        """Inner perimeter (m) of the shrunk cavity at height ``h`` above the footbed (the draft widens it:
        an offset ``d`` of a simple closed curve adds ``2 pi d``)."""
        return self.cavity.length + 2.0 * np.pi * np.tan(np.radians(self.p.draft_deg)) * h


def _footbed_mould(p: SoleParams, q: np.ndarray, edge_dist: np.ndarray | float) -> np.ndarray:
    from .geometry import smoothstep

    z = bottom_profile(q[:, 0], p.cad_length, p.cad_spring, p.heel_rise)
    z = z - CROWN_M * smoothstep(0.0, 0.025, np.asarray(edge_dist, dtype=np.float64))
    return z + _bow(p, q[:, 0])


def _tread_mould(p: SoleParams, style: Style, q: np.ndarray) -> np.ndarray:
    xi = q[:, 0] / p.cad_length
    toe = p.cad_spring * np.clip((xi - BALL_XI) / (1.0 - BALL_XI), 0.0, None) ** 2.2
    return toe - style.footbed_m + _bow(p, q[:, 0])


def _bow(p: SoleParams, x: np.ndarray) -> np.ndarray:
    xi = np.clip(x / p.cad_length, 0.0, 1.0)
    return p.bow * (1.0 - (2.0 * xi - 1.0) ** 2)


def build_sole(style: Style, p: SoleParams, n: int) -> Sole:
    """Mould the sole (tread, outer wall, rim, inner wall, footbed), then shrink it."""
    cad = last_outline(style, p.cad_length, p.cad_width, n, grow=p.leather_nominal - p.undersize)
    pts = cad.points
    centre = pts.mean(axis=0)
    core = core_points(pts, p.cad_length)
    span = np.linalg.norm(pts - core, axis=1)
    outer = inset(pts, -style.wall_m)
    u = cad.u
    z_edge = _footbed_mould(p, pts, 0.0)
    rim = z_edge + rim_height(style, u)
    tan_d = np.tan(np.radians(p.draft_deg))
    rings, kinds = [], []

    def add(xy: np.ndarray, z: np.ndarray, kind: str) -> None:
        rings.append(np.column_stack([xy, z]))
        kinds.append(kind)

    ocore = core_points(outer, p.cad_length)
    for g in np.linspace(0.1, 1.0, 8):  # tread, from the middle out
        xy = ocore + (outer - ocore) * g
        add(xy, _tread_mould(p, style, xy), "tread")
    add(outer, rim, "outer")
    for g in np.linspace(0.0, 1.0, 6):  # inner wall, from the rim down to the sharp corner
        h = (1.0 - g) * (rim - z_edge)
        add(inset(pts, -tan_d * h), z_edge + h, "inner")
    for g in np.linspace(0.06, 0.95, 10):  # footbed, from the corner in
        e = g * span
        xy = pts - (pts - core) / span[:, None] * e[:, None]
        add(xy, _footbed_mould(p, xy, e), "footbed")
    top = np.append(core.mean(axis=0), rings[-1][:, 2].mean())
    bottom = np.append(ocore.mean(axis=0), rings[0][:, 2].mean())
    v, f = ring_mesh(rings, bottom, top)
    v = _shrink(v, centre, p)
    corner = len(kinds) - 1 - kinds[::-1].index("inner")
    cavity = make_outline_from_points(v[corner * n : (corner + 1) * n, :2])
    return Sole(style, p, cavity, centre, v, orient_outward(v, f), tuple(kinds), n)


def _shrink(v: np.ndarray, centre: np.ndarray, p: SoleParams) -> np.ndarray:
    out = v.copy()
    out[:, 0] = centre[0] + (v[:, 0] - centre[0]) * (1.0 - p.shrink_x)
    out[:, 1] = centre[1] + (v[:, 1] - centre[1]) * (1.0 - p.shrink_y)
    out[:, 2] = v[:, 2] * (1.0 - p.shrink_z)
    return out


def cavity_perimeter_mould(style: Style, p: SoleParams, n: int) -> float:
    """Cavity perimeter (m) before shrinkage (for tests and the README's figures)."""
    return perimeter(last_outline(style, p.cad_length, p.cad_width, n, grow=p.leather_nominal - p.undersize).points)
