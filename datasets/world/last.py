"""Parametric shoe lasts, graded over EU sizes, as structured ring grids (right foot, as worn).

Frame of a last ("part frame"): x from heel to toe, y to the wearer's left (the medial side of a
right foot), z up; origin at the centre of the bottom outline's bounding box in x/y, z = 0 at the
ball tread line of the feather edge. Metres.

The surface is one grid of rings ``points[j, i]`` (ring j, perimeter station i, counter-clockwise
seen from +z): bottom rings from a thin loop around the spine out to the feather edge, the rounded
feather-edge corner, then the side up to a loop around the top ridge. Meshing the grid with a cap
at each end gives a closed, consistently wound surface by construction (:func:`grid_mesh`).

Grading (FACTS.md "Lasts and sizes"): last length = EU / 1.5 cm (Paris point); bottom width +2 mm
per size at the ball; heights +half the length rate; toe spring, heel rise, bottom crown,
feather-edge radius and bulge are held across sizes (grading is not proportional).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from .styles import StyleSpec

__all__ = [
    "LastGrid",
    "build_last",
    "last_length_m",
    "ball_width_m",
    "rocker",
    "rocker_spline",
    "grid_mesh",
    "grid_normals",
    "SPINE",
    "SPINE_STATIONS",
    "BULGE_STATIONS",
]

#: Ends of the straight spine (fractions of last length) that the rings shrink towards.
SPINE: tuple[float, float] = (0.14, 0.80)
#: Stations (fractions of length) of ``StyleSpec.top_heights_m``.
SPINE_STATIONS: tuple[float, ...] = (0.14, 0.30, 0.50, 0.68, 0.80)
#: Stations of ``StyleSpec.bulge_m``.
BULGE_STATIONS: tuple[float, ...] = (0.0, 0.15, 0.40, 0.65, 0.85, 1.0)
#: Base EU size of the design data and its ball width (bottom outline, m).
BASE_SIZE_EU = 42.0
BASE_BALL_WIDTH_M = 0.091
#: Right-foot bottom outline of the base last, counter-clockwise from the heel back:
#: (x fraction of length, y in metres at the base ball width). Medial side (big toe) is +y; the
#: 1st metatarsal head sits at ~0.70 L, the 5th at ~0.66 L, the toe tip slightly medial.
_OUTLINE = (
    (0.000, 0.000), (0.020, -0.018), (0.070, -0.028), (0.160, -0.031), (0.300, -0.030), (0.450, -0.033),
    (0.600, -0.040), (0.670, -0.043), (0.780, -0.040), (0.880, -0.031), (0.950, -0.018), (0.985, -0.006),
    (1.000, 0.006), (0.985, 0.018), (0.950, 0.030), (0.880, 0.040), (0.780, 0.047), (0.700, 0.048),
    (0.600, 0.042), (0.500, 0.031), (0.380, 0.027), (0.250, 0.028), (0.140, 0.030), (0.070, 0.027),
    (0.020, 0.017),
)  # fmt: skip
#: Number of bottom rings, their scale towards the spine (1 = corner start), and corner angles.
_BOTTOM_S = (0.06, 0.2, 0.35, 0.5, 0.6, 0.68, 0.75, 0.81, 0.86, 0.9, 0.94, 0.97, 1.0)
_CORNER_ALPHA = (np.pi / 8, np.pi / 4, 3 * np.pi / 8, np.pi / 2)
#: Side rings: ``_SIDE_FINE`` rings evenly up to ``_SIDE_FINE_ARC_M`` of arc (the bite-line band),
#: then ``_SIDE_COARSE`` rings to the top.
_SIDE_FINE, _SIDE_FINE_ARC_M, _SIDE_COARSE = 32, 0.040, 14
#: Half-width of the loop around the top ridge (the last's comb), metres.
_TOP_HALF_WIDTH_M = 0.010
#: Height above the feather edge of the side bulge's peak, metres (chosen).
_BULGE_PEAK_M = 0.012


def last_length_m(size_eu: float) -> float:
    """Last length by the Paris point (6.667 mm per EU size): EU 42 -> 0.280 m."""
    return float(size_eu) / 1.5 * 0.01


def ball_width_m(size_eu: float, spec: StyleSpec) -> float:
    """Bottom width of the last at the ball: base 91 mm at EU 42, +2 mm per size (FACTS)."""
    return (BASE_BALL_WIDTH_M + 0.002 * (float(size_eu) - BASE_SIZE_EU)) * spec.width_factor


def rocker_spline(toe_spring: float, heel_rise: float) -> PchipInterpolator:
    """Bottom-edge height of the last over the length fraction (a monotone piecewise cubic).

    The heel seat is nearly flat, the shank falls to the ball tread line at 0.70 L (z = 0) and the
    toe rises to ``toe_spring`` at the tip. With ``heel_rise = 0`` it is the toe-spring part only
    (exactly 0 behind the ball, PCHIP keeps flat data flat).
    """
    h, t = heel_rise, toe_spring
    kx = (0.0, 0.15, 0.40, 0.55, 0.66, 0.70, 0.78, 0.88, 0.95, 1.0)
    kz = (h, 0.97 * h, 0.55 * h, 0.2 * h, 0.02 * h, 0.0, 0.1 * t, 0.4 * t, 0.72 * t, t)
    return PchipInterpolator(kx, kz, extrapolate=True)


def rocker(xf: np.ndarray, toe_spring: float, heel_rise: float) -> np.ndarray:
    """Height of the last's bottom edge above the ball tread line at length fractions ``xf``.

    Args:
        xf: (n,) float64 fraction of last length from the heel back (clipped to [0, 1]).
        toe_spring, heel_rise: metres (held across sizes).

    Returns:
        (n,) float64 metres.
    """
    return rocker_spline(toe_spring, heel_rise)(np.clip(np.asarray(xf, dtype=float), 0.0, 1.0))


def _outline(length: float, yscale: float, n: int) -> np.ndarray:
    """(n, 2) bottom outline, CCW from the heel back, even arc-length spacing."""
    c = np.array(_OUTLINE, dtype=float)
    pts = np.column_stack([c[:, 0] * length, c[:, 1] * yscale])
    closed = np.vstack([pts, pts[:1]])
    u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    spl = CubicSpline(u, closed, bc_type="periodic")
    dense = spl(np.linspace(0.0, u[-1], 4001))
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    target = np.linspace(0.0, s[-1], n + 1)[:-1]
    out = np.column_stack([np.interp(target, s, dense[:, 0]), np.interp(target, s, dense[:, 1])])
    return out


@dataclass(frozen=True)
class LastGrid:
    """A last as a ring grid (right foot, part frame, metres).

    Attributes:
        points: (M, N, 3) float64 ring grid; ring 0 is the innermost bottom loop, ring M-1 the top loop.
        outline: (N, 2) bottom outline (the last's feather edge in plan), CCW.
        spine: (N, 2) spine point each column shrinks towards.
        direction: (N, 2) unit horizontal outward direction of each column.
        n_bottom: number of bottom rings (ring ``n_bottom - 1`` is the corner start).
        j_feather: ring index of the feather edge (45° on the corner).
        j_side: ring index where the side starts (90° on the corner).
        bottom_s: (n_bottom,) scale of the bottom rings towards the spine.
        corner_alpha: (n_corner,) corner angles, radians.
        length_m: last length (Paris point).
        spec: the style design.
        size_eu: the size.
    """

    points: np.ndarray
    outline: np.ndarray
    spine: np.ndarray
    direction: np.ndarray
    n_bottom: int
    j_feather: int
    j_side: int
    bottom_s: np.ndarray
    corner_alpha: np.ndarray
    length_m: float
    spec: StyleSpec
    size_eu: float


def _side_profile(
    h_span: np.ndarray, reach: np.ndarray, expo: np.ndarray, bulge: np.ndarray, n_dense: int = 400
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense side profile of every column: (N, n_dense) height above the side start, inward offset, arc."""
    phi = np.linspace(0.0, np.pi / 2, n_dense)[None, :]
    e = expo[:, None]
    g = np.sin(phi) ** (2.0 / e)
    h = h_span[:, None] * g
    d = reach[:, None] * (1.0 - np.cos(phi) ** (2.0 / e))
    bump = (h / _BULGE_PEAK_M) * np.exp(1.0 - h / _BULGE_PEAK_M)
    d = d - bulge[:, None] * bump
    arc = np.concatenate([np.zeros((h.shape[0], 1)), np.cumsum(np.hypot(np.diff(h), np.diff(d)), axis=1)], axis=1)
    return h, d, arc


def _side_rings(p3: np.ndarray, dirs: np.ndarray, h: np.ndarray, d: np.ndarray, arc: np.ndarray) -> np.ndarray:
    """(K, N, 3) side rings resampled by arc length (fine band, then coarse to the top)."""
    total = arc[:, -1]
    fine = np.minimum(_SIDE_FINE_ARC_M, 0.7 * total)
    k1 = np.arange(1, _SIDE_FINE + 1) / _SIDE_FINE
    k2 = np.arange(1, _SIDE_COARSE + 1) / _SIDE_COARSE
    targets = np.concatenate(
        [fine[None, :] * k1[:, None], fine[None, :] + (total - fine)[None, :] * k2[:, None]], axis=0
    )  # (K, N)
    n = p3.shape[0]
    rings = np.empty((targets.shape[0], n, 3))
    for i in range(n):
        hi = np.interp(targets[:, i], arc[i], h[i])
        di = np.interp(targets[:, i], arc[i], d[i])
        rings[:, i, :2] = p3[i, :2] - di[:, None] * dirs[i]
        rings[:, i, 2] = p3[i, 2] + hi
    return rings


def _bottom_and_corner(
    spec: StyleSpec, out: np.ndarray, spine: np.ndarray, dirs: np.ndarray, z_fe: np.ndarray, x0: float, length: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bottom rings ((n_bottom, N, 3)) and feather-edge corner rings ((n_corner, N, 3)) of a last."""
    r = spec.feather_radius_m
    n = len(out)
    # bottom rings: corner start B = p - r*d, scaled towards the spine; the crown lowers the centre
    b_xy = out - r * dirs
    s = np.asarray(_BOTTOM_S)
    bxy = spine[None] + (b_xy - spine)[None] * s[:, None, None]
    bxf = (bxy[..., 0] - x0) / length
    bz = rocker(bxf.ravel(), spec.toe_spring_m, spec.heel_rise_m).reshape(bxf.shape)
    bz = bz - spec.crown_m * (1.0 - s[:, None] ** 2)
    bottom = np.concatenate([bxy, bz[..., None]], axis=2)
    # corner: arc of radius r in the column's vertical plane
    a = np.asarray(_CORNER_ALPHA)[:, None]
    cxy = b_xy[None] + r * np.sin(a)[..., None] * dirs[None]
    cz = z_fe[None] + r * (1.0 - np.cos(a))
    corner = np.concatenate([cxy, np.broadcast_to(cz[..., None], (len(a), n, 1))], axis=2)
    return bottom, corner


def build_last(spec: StyleSpec, size_eu: float, n: int = 256) -> LastGrid:
    """Build the right-foot last of ``spec`` at ``size_eu`` as a ring grid.

    Args:
        spec: style design.
        size_eu: EU size (already validated).
        n: perimeter stations.
    """
    length = last_length_m(size_eu)
    yscale = ball_width_m(size_eu, spec) / BASE_BALL_WIDTH_M
    hscale = 1.0 + 0.5 * (length / last_length_m(BASE_SIZE_EU) - 1.0)
    out = _outline(length, yscale, n)
    centre = 0.5 * (out.min(axis=0) + out.max(axis=0))
    out = out - centre
    x0 = -centre[0]  # heel back x in the part frame
    y_sp = 0.0015 * yscale - centre[1]
    xa, xb = x0 + SPINE[0] * length, x0 + SPINE[1] * length
    spine = np.column_stack([np.clip(out[:, 0], xa, xb), np.full(n, y_sp)])
    vec = out - spine
    reach = np.linalg.norm(vec, axis=1)
    dirs = vec / reach[:, None]
    xf = (out[:, 0] - x0) / length
    z_fe = rocker(xf, spec.toe_spring_m, spec.heel_rise_m)
    r = spec.feather_radius_m
    bottom, corner = _bottom_and_corner(spec, out, spine, dirs, z_fe, x0, length)
    # side: superellipse from the side start up to a loop around the top ridge
    top_h = PchipInterpolator(SPINE_STATIONS, np.asarray(spec.top_heights_m) * hscale, extrapolate=True)
    sxf = (spine[:, 0] - x0) / length
    z_top = rocker(sxf, spec.toe_spring_m, spec.heel_rise_m) + top_h(sxf)
    h_span = z_top - (z_fe + r)
    expo = PchipInterpolator((0.0, 0.2, 0.7, 1.0), (4.0, 3.0, 2.6, 2.0))(np.clip(xf, 0, 1))
    bulge = PchipInterpolator(BULGE_STATIONS, spec.bulge_m)(np.clip(xf, 0, 1))
    h, d, arc = _side_profile(h_span, reach - _TOP_HALF_WIDTH_M, expo, bulge)
    p3 = np.column_stack([out, z_fe + r])
    side = _side_rings(p3, dirs, h, d, arc)
    pts = np.concatenate([bottom, corner, side], axis=0)
    nb = len(_BOTTOM_S)
    return LastGrid(
        points=pts,
        outline=out,
        spine=spine,
        direction=dirs,
        n_bottom=nb,
        j_feather=nb + 1,
        j_side=nb + 3,
        bottom_s=np.asarray(_BOTTOM_S),
        corner_alpha=np.asarray(_CORNER_ALPHA),
        length_m=length,
        spec=spec,
        size_eu=float(size_eu),
    )


def grid_normals(points: np.ndarray) -> np.ndarray:
    """(M, N, 3) unit normals of a ring grid (outward for a grid ordered like a last)."""
    dt = np.roll(points, -1, axis=1) - np.roll(points, 1, axis=1)
    dr = np.empty_like(points)
    dr[1:-1] = points[2:] - points[:-2]
    dr[0] = points[1] - points[0]
    dr[-1] = points[-1] - points[-2]
    n = np.cross(dt, dr)
    return n / np.linalg.norm(n, axis=2, keepdims=True)


def _cap(loop: np.ndarray, first: bool) -> np.ndarray:
    """Triangulate a closed, thin, x-elongated loop ((N, 3), CCW in xy) by zipping its two chains.

    Returns (N-2, 3) int64 local indices, wound so that ring edges are traversed against the
    quads next to them (first cap: CW in xy; last cap: CCW).
    """
    n = len(loop)
    i0, i1 = int(np.argmin(loop[:, 0])), int(np.argmax(loop[:, 0]))
    a = [(i0 + k) % n for k in range((i1 - i0) % n + 1)]  # i0 -> i1 counter-clockwise
    b = [(i0 - k) % n for k in range((i0 - i1) % n + 1)]  # i0 -> i1 clockwise
    tris = []
    ia = ib = 0
    while ia < len(a) - 1 or ib < len(b) - 1:
        adv_a = ib >= len(b) - 1 or (ia < len(a) - 1 and loop[a[ia + 1], 0] <= loop[b[ib + 1], 0])
        if adv_a:
            tris.append((a[ia], a[ia + 1], b[ib]))
            ia += 1
        else:
            tris.append((a[ia], b[ib + 1], b[ib]))
            ib += 1
    t = np.asarray([tr for tr in tris if len(set(tr)) == 3], dtype=np.int64)
    p = loop[:, :2]
    e1, e2 = p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    want_ccw = not first
    flip = (area > 0) != want_ccw
    t[flip] = t[flip][:, ::-1]
    return t


def grid_mesh(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a closed ring grid (both ends capped).

    Face order: first cap, then quads ring by ring (two triangles per (j, i), see :func:`quad_face`),
    then the last cap.

    Args:
        points: (M, N, 3) float64 ring grid, every ring CCW in xy.

    Returns:
        vertices (M*N, 3) float64 (index j*N + i) and faces (F, 3) int64 wound consistently; the
        caller fixes the global orientation (see :func:`orient_outward`).
    """
    m, n, _ = points.shape
    verts = points.reshape(-1, 3)
    j = np.arange(m - 1)[:, None]
    i = np.arange(n)[None, :]
    a = j * n + i
    b = j * n + (i + 1) % n
    c = (j + 1) * n + (i + 1) % n
    d = (j + 1) * n + i
    quads = np.stack([np.stack([a, b, c], -1), np.stack([a, c, d], -1)], axis=2).reshape(-1, 3)
    cap0 = _cap(points[0], first=True)
    cap1 = _cap(points[-1], first=False) + (m - 1) * n
    return verts, np.concatenate([cap0, quads, cap1]).astype(np.int64)


def quad_face(j: np.ndarray, i: np.ndarray, n: int) -> np.ndarray:
    """Index of the first triangle of quad (ring band j, station i) in :func:`grid_mesh` faces."""
    return (n - 2) + 2 * (np.asarray(j) * n + np.asarray(i))


def orient_outward(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces flipped if needed so that the enclosed signed volume is positive."""
    v = verts[faces]
    vol = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0
    return faces if vol > 0 else faces[:, ::-1].copy()


__all__ += ["quad_face", "orient_outward"]
