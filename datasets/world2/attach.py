"""World 2's attach: how the sole stretches over the upper and settles under the press.

Three pieces, each with a closed form for simple cases (tests/datasets/test_world2_physics.py):

1. **Hoop stretch.** The wall is a closed elastic band: pulled over the upper it takes one uniform
   hoop strain ``eps = P_upper(h) / P_cavity(h) - 1`` (friction-free band: the tension is the same
   all round). A thin wall stretched along its length shortens in height by Poisson's ratio:
   ``h_wall' = h_wall (1 - nu eps)``. A loose cavity (``eps < 0``) does not grip; its rim keeps its height.
2. **Settling under the press.** The press pushes the upper's bottom into the footbed with a uniform
   pressure ``P``. The footbed is a bed of springs (a thin layer bonded to the outsole is laterally
   confined, so its stiffness per area is the constrained modulus over its thickness,
   ``k = E (1 - nu) / ((1 + nu)(1 - 2 nu)) / t``). The sole moves as a rigid body (height and two
   tilts) until the spring forces balance the press in force and moment, with unilateral contact
   (where the footbed does not reach the upper there is no force: an active-set solve). The
   compression at the footbed's edge, ``delta``, raises the rim against the upper.
3. **Placement.** The operator places the sole with a small shift and turn. The gripping wall pulls
   it back square to the upper (the normal part of the error is taken up by the stretch), but
   friction keeps the tangential part: the wall's material slides round the upper by
   ``D . t``, so the rim profile (with its sharp corners) lands shifted.

The bite height at outline parameter ``u`` is ``h(u) = rim(u - D.t / P) (1 - nu eps+) + delta(u)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sole import Sole
from .upper import Upper, core_points

__all__ = ["Placement", "AttachResult", "attach", "constrained_modulus", "settle"]


@dataclass(frozen=True)
class Placement:
    """Operator's placement error of the sole on the upper: shift (m) and turn (rad) about the outline centre."""

    dx: float = 0.0
    dy: float = 0.0
    yaw: float = 0.0


def constrained_modulus(E: float, nu: float) -> float:
    """Constrained (oedometric) modulus (Pa) of a laterally confined layer."""
    return E * (1.0 - nu) / ((1.0 + nu) * (1.0 - 2.0 * nu))


def settle(
    xy: np.ndarray, gap: np.ndarray, k: np.ndarray, area: np.ndarray, pressure: float, max_iter: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """Rigid settle of a spring bed under a uniform pressure, unilateral contact.

    Args:
        xy: (m, 2) contact sample points (m). gap: (m,) footbed minus upper height at rest (m; the
            compression is ``gap + Z + a (x - xc) + b (y - yc)``). k: (m,) spring stiffness per area
            (Pa/m). area: (m,) sample areas (m^2). pressure: press pressure (Pa).

    Returns:
        ``(Z, a, b)`` rigid motion (m, rad, rad) and (m,) compressions (m; negative = not in contact).
    """
    c = (xy * area[:, None]).sum(axis=0) / area.sum()
    A = np.column_stack([np.ones(len(xy)), xy[:, 0] - c[0], xy[:, 1] - c[1]])
    rhs_load = pressure * (A * area[:, None]).sum(axis=0)  # force and moments of the press
    active = np.ones(len(xy), dtype=bool)
    sol = np.zeros(3)
    for _ in range(max_iter):
        w = k * area * active
        M = (A * w[:, None]).T @ A
        rhs = rhs_load - (A * w[:, None]).T @ gap
        sol = np.linalg.lstsq(M, rhs, rcond=None)[0]
        delta = gap + A @ sol
        new = delta > 0
        if np.array_equal(new, active):
            break
        active = new if new.any() else delta >= delta.max()
    return sol, gap + A @ sol


@dataclass(frozen=True)
class AttachResult:
    """What the attach produced (shoe frame of the right-shoe build)."""

    u: np.ndarray
    height: np.ndarray
    bite_line: np.ndarray
    feather_edge: np.ndarray
    eps: float
    rigid: np.ndarray
    delta_edge: np.ndarray
    contact_fraction: float
    upper_bond_faces: np.ndarray
    sole_bond_faces: np.ndarray
    deformed_sole: np.ndarray


def _bottom_samples(up: Upper, step: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    from matplotlib.path import Path as MplPath
    from scipy.spatial import cKDTree

    dense = up.outline.at(np.arange(4000) / 4000.0)
    lo, hi = dense.min(axis=0), dense.max(axis=0)
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], step) + step / 2, np.arange(lo[1], hi[1], step) + step / 2)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    xy = xy[MplPath(dense).contains_points(xy)]
    e = cKDTree(dense).query(xy)[0]
    keep = e > up.p.feather_radius
    return xy[keep], e[keep]


def attach(up: Upper, so: Sole, place: Placement, pressure: float) -> AttachResult:
    """Press ``so`` onto ``up`` with placement error ``place`` at ``pressure`` (Pa)."""
    c_u = up.outline.points.mean(axis=0)
    c_s = so.cavity.points.mean(axis=0)
    cy, sy = np.cos(place.yaw), np.sin(place.yaw)
    R = np.array([[cy, -sy], [sy, cy]])
    shift = np.array([place.dx, place.dy])

    def to_sole(p: np.ndarray) -> np.ndarray:
        return c_s + (p - c_u - shift) @ R  # inverse placement: upper plan point -> sole plan point

    xy, e = _bottom_samples(up)
    ps = to_sole(xy)
    gap = so.footbed_z(ps, e) - up.bottom_z(xy, e)
    k = constrained_modulus(so.p.E, so.p.nu) / so.thickness(ps, e)
    area = np.full(len(xy), 0.002**2)
    rigid, delta = settle(xy, gap, k, area, pressure)
    centre = (xy * area[:, None]).sum(axis=0) / area.sum()

    n_line = int(np.ceil(up.outline.length / 0.001))
    u = np.arange(n_line) / n_line
    pe = up.outline.at(u)
    core = core_points(pe, up.p.length)
    to_core = (core - pe) / np.linalg.norm(core - pe, axis=1, keepdims=True)
    pin = pe + to_core * (up.p.feather_radius + 0.0005)
    e_in = np.full(n_line, up.p.feather_radius + 0.0005)
    d_edge = (so.footbed_z(to_sole(pin), 0.0) - up.bottom_z(pin, e_in)
              + rigid[0] + rigid[1] * (pin[:, 0] - centre[0]) + rigid[2] * (pin[:, 1] - centre[1]))  # fmt: skip

    h_mean = float(np.mean(so.rim(u)))
    eps = up.perimeter_at(h_mean) / so.cavity_perimeter(h_mean) - 1.0
    disp = shift[None, :] + place.yaw * np.column_stack([-(pe[:, 1] - c_u[1]), pe[:, 0] - c_u[0]])
    slide = np.einsum("ij,ij->i", disp, up.outline.tangents_at(u)) / up.perimeter_at(h_mean)
    height = so.rim(u - slide) * (1.0 - so.p.nu * max(eps, 0.0)) + d_edge
    height = np.maximum(height, up.p.feather_radius)
    bite = up.side_point(u, height)
    rf = up.p.feather_radius
    s45 = np.sqrt(0.5)
    fe_xy = pe + to_core * rf * (1.0 - s45)
    feather = np.column_stack([fe_xy, up.edge_z(u) + rf * (1.0 - s45)])
    return AttachResult(
        u=u, height=height, bite_line=bite, feather_edge=feather, eps=float(eps), rigid=rigid,
        delta_edge=d_edge, contact_fraction=float(np.mean(delta > 0)),
        upper_bond_faces=_upper_bond(up, u, height), sole_bond_faces=_sole_bond(so),
        deformed_sole=_deformed(so, c_s, c_u, R, shift, rigid, centre, eps),
    )  # fmt: skip


def _upper_bond(up: Upper, u: np.ndarray, height: np.ndarray) -> np.ndarray:
    n = up.n
    f = up.faces
    ring = f // n  # apexes get ring ids past the last ring
    n_rings = (len(up.vertices) - 2) // n
    t_ring = np.concatenate([np.full(up.first_side_ring, -1.0), up.side_t, [-1.0, np.inf]])  # + bottom, top apex
    ring = np.where(f >= n_rings * n, n_rings + (f - n_rings * n), ring)
    t_face = t_ring[ring].max(axis=1)
    u_face = (f[:, 0] % n) / n
    h_face = np.interp(u_face, u, height, period=1.0)
    return t_face <= h_face


def _sole_bond(so: Sole) -> np.ndarray:
    n = so.n
    n_rings = len(so.ring_kind)
    kinds = np.array([*so.ring_kind, "tread", "footbed"])  # bottom apex (tread), top apex (footbed)
    f = so.faces
    ring = np.where(f >= n_rings * n, n_rings + (f - n_rings * n), f // n)
    k = kinds[ring]
    return np.all((k == "inner") | (k == "footbed"), axis=1)


def _deformed(so: Sole, c_s: np.ndarray, c_u: np.ndarray, R: np.ndarray, shift: np.ndarray, rigid: np.ndarray,
              centre: np.ndarray, eps: float) -> np.ndarray:  # fmt: skip
    """Sole vertices after the attach, in the upper's shoe frame: placed, settled, the wall stretched
    round the upper (plan scale ``1 + eps`` about the centre) and shortened by Poisson."""
    v = so.vertices
    n = so.n
    kinds = np.array([*so.ring_kind, "tread", "footbed"])
    idx = np.arange(len(v))
    m = len(so.ring_kind) * n
    ring = np.where(idx >= m, len(so.ring_kind) + idx - m, idx // n)
    wall = np.isin(kinds[ring], ("outer", "inner"))
    xy = c_u + shift + (v[:, :2] - c_s) @ R.T
    e = max(eps, 0.0)
    xy[wall] = c_u + (xy[wall] - c_u) * (1.0 + e)
    z = v[:, 2] + rigid[0] + rigid[1] * (xy[:, 0] - centre[0]) + rigid[2] * (xy[:, 1] - centre[1])
    base = so.footbed_z(so.cavity.points, 0.0).min()
    z[wall] = z[wall] - (v[wall, 2] - base).clip(0.0) * so.p.nu * e
    return np.column_stack([xy, z])
