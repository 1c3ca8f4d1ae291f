"""Plan-view outlines and ring meshes of world 2 (shoe frame: x heel->toe, y to the medial side of a
right shoe, z up from the last's bottom at the ball; metres).

A footprint is a closed counter-clockwise outline sampled uniformly in arc length, parameter
``u`` in [0, 1) starting at the back of the heel. Surfaces are stacks of closed rings of the
same point count joined by quads, closed by a fan at each end, so every mesh is watertight
by construction (no boolean operations, no remeshing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Outline", "half_widths", "make_outline", "ring_mesh", "orient_outward", "perimeter", "inset", "smoothstep"]


def smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    """0 below ``a``, 1 above ``b``, C1 cubic between (works for ``a > b`` too: reversed)."""
    t = np.clip((np.asarray(x, dtype=np.float64) - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def half_widths(xi: np.ndarray, ctrl: tuple[tuple[float, float], ...], toe_q: float) -> np.ndarray:
    """Half-width (same unit as ``ctrl``) at normalised length ``xi`` in [0, 1].

    ``ctrl`` holds (xi, half-width) control points of the body (monotone cubic between them);
    the ends are closed by ``sqrt`` at the heel (a round heel) and ``(1 - xi)^toe_q`` at the toe
    (0.5 round, larger = pointier), so the outline's tangent is across the x axis at both ends.
    """
    from scipy.interpolate import PchipInterpolator

    cx, cy = np.array(ctrl, dtype=np.float64).T
    body = PchipInterpolator(cx, cy, extrapolate=True)(np.clip(xi, cx[0], cx[-1]))
    heel = np.sqrt(np.clip(xi / 0.12, 0.0, 1.0))
    toe = np.clip((1.0 - xi) / 0.25, 0.0, 1.0) ** toe_q
    return body * heel * toe


@dataclass(frozen=True)
class Outline:
    """A closed CCW plan outline: ``points`` (n, 2), unit ``tangents`` and outward ``normals`` (n, 2),
    ``u`` (n,) arc-length parameter in [0, 1), ``length`` (m)."""

    points: np.ndarray
    tangents: np.ndarray
    normals: np.ndarray
    u: np.ndarray
    length: float

    def at(self, u: np.ndarray) -> np.ndarray:
        """(m, 2) points at parameters ``u`` (periodic linear interpolation of the dense samples)."""
        return _periodic_interp(self.u, self.points, np.mod(u, 1.0))

    def normals_at(self, u: np.ndarray) -> np.ndarray:
        """(m, 2) unit outward normals at ``u``."""
        n = _periodic_interp(self.u, self.normals, np.mod(u, 1.0))
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    def tangents_at(self, u: np.ndarray) -> np.ndarray:
        """(m, 2) unit tangents (direction of increasing ``u``)."""
        n = self.normals_at(u)
        return np.column_stack([-n[:, 1], n[:, 0]])


def _periodic_interp(u: np.ndarray, values: np.ndarray, q: np.ndarray) -> np.ndarray:
    uu = np.concatenate([u, [1.0]])
    vv = np.vstack([values, values[:1]])
    return np.column_stack([np.interp(q, uu, vv[:, k]) for k in range(vv.shape[1])])


def perimeter(points: np.ndarray) -> float:
    """Length (m) of the closed polygon ``points`` (n, 2|3)."""
    p = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1).sum())


def _frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    t = d / np.linalg.norm(d, axis=1, keepdims=True)
    return t, np.column_stack([t[:, 1], -t[:, 0]])  # CCW: outward normal is the tangent turned clockwise


def make_outline(medial: np.ndarray, lateral: np.ndarray, length: float, n: int) -> Outline:
    """Outline of a right shoe from half-width functions sampled on ``xi = linspace(0, 1, k)``.

    Args:
        medial / lateral: (k,) half-widths (m) on each side (medial is +y on a right shoe).
        length: last length (m); x runs from 0 (heel) to ``length`` (toe).
        n: points of the uniform resampling.
    """
    k = len(medial)
    xi = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))  # dense at heel and toe, where it curves most
    x = xi * length
    lat = np.column_stack([x, -np.asarray(lateral)])  # heel -> toe along the lateral side (y < 0)
    med = np.column_stack([x, np.asarray(medial)])[::-1]  # toe -> heel along the medial side
    poly = np.vstack([lat[:-1], med[:-1]])
    seg = np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(s[-1])
    q = np.linspace(0.0, total, n, endpoint=False)
    closed = np.vstack([poly, poly[:1]])
    pts = np.column_stack([np.interp(q, s, closed[:, 0]), np.interp(q, s, closed[:, 1])])
    t, nrm = _frame(pts)
    return Outline(points=pts, tangents=t, normals=nrm, u=q / total, length=perimeter(pts))


def inset(points: np.ndarray, d: np.ndarray | float) -> np.ndarray:
    """Move a CCW outline's points inward by ``d`` (m, scalar or per point) along their normals."""
    _, nrm = _frame(np.asarray(points, dtype=np.float64))
    return points - nrm * np.reshape(d, (-1, 1))


def ring_mesh(rings: list[np.ndarray], cap_start: np.ndarray, cap_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Watertight mesh from closed rings (each (n, 3), same n) and two cap apexes.

    Ring ``i`` joins ring ``i + 1`` with quads; ``cap_start`` is joined to the first ring and
    ``cap_end`` to the last by fans. The winding is consistent over the whole mesh; whether it
    faces outward depends on the rings' direction, so callers pass the result through
    :func:`orient_outward`.

    Returns:
        vertices (v, 3) float64 (apexes last), faces (f, 3) int64.
    """
    n = len(rings[0])
    m = len(rings)
    verts = np.vstack([*rings, cap_start[None], cap_end[None]])
    j = np.arange(n)
    jn = (j + 1) % n
    faces = []
    for i in range(m - 1):
        a, b = i * n + j, i * n + jn
        c, d = (i + 1) * n + jn, (i + 1) * n + j
        faces.append(np.column_stack([a, b, c]))
        faces.append(np.column_stack([a, c, d]))
    s, e = m * n, m * n + 1
    faces.append(np.column_stack([np.full(n, s), jn, j]))
    faces.append(np.column_stack([np.full(n, e), (m - 1) * n + j, (m - 1) * n + jn]))
    return verts, np.vstack(faces).astype(np.int64)


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces flipped if needed so the signed volume is positive (normals out)."""
    v = vertices[faces]
    vol = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0
    return faces if vol > 0 else faces[:, ::-1].copy()
