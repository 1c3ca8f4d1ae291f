"""Per-station measurements of the scanned upper (bottom up) and sole (footbed up).

Upper, per station: the feather-edge *virtual corner* (intersection of the bottom plane near the edge
with the line fitted to the side just below it), the local bottom normal ``n_b`` and the side profile
``s(depth)`` (outward distance against depth along ``-n_b``, 1 mm bins).

Sole, per station: the footbed's virtual inner corner, the local footbed normal ``n_f``, the rim height
``h`` above the footbed (along ``n_f``), the inner wall's meridional length ``L_wall`` from the corner to
the rim and the wall thickness ``t``. Virtual corners make both parts independent of their fillet radii.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.core.errors import ValidationError
from gluecell.core.geometry import unit

from .sections import (
    OutlineFrame,
    fill_invalid,
    fit_line,
    outline_frame,
    smooth_closed,
    station_angles,
    wedge_index,
    wedge_members,
)

__all__ = ["UpperSections", "SoleSections", "upper_sections", "sole_sections", "DEPTH_BIN", "N_DEPTH_BINS"]

#: Side-profile bin size along the depth below the bottom, metres.
DEPTH_BIN = 1.0e-3
#: Number of depth bins (70 mm: deeper than any cup-sole sidewall plus toe spring).
N_DEPTH_BINS = 70
#: Normals with this z component or more count as "facing up" (bottom, footbed, rim top): 37 degrees.
UP_COS = 0.8
#: Depth band below the upper's bottom used to fit the side line for the virtual corner, metres.
UPPER_SIDE_FIT = (6e-3, 16e-3)
#: Height band under the highest rim points taken as the rim top (scan noise ~0.5-1 mm), metres.
RIM_CLUSTER = 2.0e-3
#: Plan radius around a sole station's corner in which its rim top is measured, metres (wall ~3-6 mm thick).
RIM_RADIUS = 7.0e-3
#: Normals of the rim's flat top face are within this of the footbed normal (cos 26 degrees).
RIM_FACE_COS = 0.9
#: Rim-top points may lie this far inside the wall's inner face (scan noise and the face's edge), metres.
RIM_INSIDE = 1.5e-3
#: Points within this depth below the bottom plane count as level with it when finding its edge, metres.
EDGE_DEPTH = 3.0e-3
#: Band of the bottom/footbed used for its local plane, metres inward from the edge.
EDGE_BAND = (4e-3, 25e-3)
#: The upper's bottom-plane points face up within this (cos; same reason as ``FOOTBED_COS``).
BOTTOM_COS = UP_COS
#: Band of the sole's footbed used for its local plane, metres inward from the inner wall: starts clear of the
#: footbed/wall fillet (the world's corner radii are a few millimetres; 4 mm took fillet points in).
SOLE_EDGE_BAND = (8e-3, 25e-3)
#: Footbed points face up within this (cos 11 degrees; was ``UP_COS``, 37 degrees). The plane is extrapolated
#: to the wall, so a patch normal tilted by fillet or heel-seat points moved the corner's level by the band's
#: width times the tilt: at the heel counter the normal flipped by ~18 degrees between neighbouring stations
#: and the wall height jumped 3-5 mm (the "knee" error), and on average the footbed read ~1.4 mm low. Chosen
#: on the world's *val* split (dataset seed 9001, 6 pairs): per-pair p95, median over pairs, 3.55 -> 2.43 mm
#: (scans only) and 2.54 -> 1.12 mm (nominal upper and sole references), no learnt offset in either.
FOOTBED_COS = 0.98
#: Looser footbed patches tried in turn where the strict one has too few points: (cos, band). (A cascade through
#: 0.94 and a wider band read smoother wall heights on the clean nominal soles but put the bite line further off
#: on the *val* pairs, 1.10 -> 1.16 mm p95 median with references: the former patch is kept as the fallback.)
FOOTBED_FALLBACKS = ((UP_COS, EDGE_BAND),)
#: Normals further than this from the median normal of a plane patch are left out of it (fillets), cos 12 deg.
PLANE_COS = 0.978
MIN_WEDGE_POINTS = 4
#: A station whose corner radius or wall height is this far from its neighbours' median is dropped, metres.
OUTLIER_TOL = 3.0e-3
#: Each station's wedge spans this many station spacings (neighbouring wedges overlap).
WEDGE_OVERLAP = 2.5
#: Measure every wedge at once (:mod:`.profiles_vec`, ~10x faster) instead of one wedge at a time with
#: ``_upper_station`` / ``_sole_station`` (the reference implementation the tests compare it with).
VECTORISED = True
#: Sole sections without the points facing down (:func:`.profiles_vec.trimmed_sole`: the same sections).
TRIM = True
#: Measure the stations by the compiled per-station loops (:mod:`.sectkernel`, numba; the same sections, several
#: times faster again) where numba is present; False: :mod:`.profiles_vec`'s numpy passes.
COMPILED = True


@dataclass(frozen=True)
class UpperSections:
    """Per-station geometry of the upper (all (K, ...) float64, metres, ``base_link``; invalid rows NaN)."""

    frame: OutlineFrame
    theta: np.ndarray  # (K,) station angles
    valid: np.ndarray  # (K,) bool: the bottom edge was measured
    full: np.ndarray  # (K,) bool: the side below it was measured too
    edge: np.ndarray  # (K, 3) outermost up-facing point of the bottom
    corner: np.ndarray  # (K, 3) virtual feather-edge corner (from the edge where the side is unseen)
    n_b: np.ndarray  # (K, 3) local bottom normal (outward, ~ +z)
    e1: np.ndarray  # (K, 3) outward unit vector in the section, orthogonal to n_b
    profile: np.ndarray  # (K, N_DEPTH_BINS) outward offset s from the corner per depth bin, NaN = no data
    resid: np.ndarray  # (K,) residual std of the side fit, metres
    z_top: float


@dataclass(frozen=True)
class SoleSections:
    """Per-station geometry of the sole in its free state (sole station, ``base_link``)."""

    frame: OutlineFrame
    theta: np.ndarray
    valid: np.ndarray
    corner: np.ndarray  # (K, 3) virtual inner corner footbed/wall
    rim: np.ndarray  # (K, 3) virtual inner rim corner
    n_f: np.ndarray  # (K, 3) local footbed normal (~ +z)
    height: np.ndarray  # (K,) rim height above the footbed along n_f
    wall_len: np.ndarray  # (K,) inner wall meridional length corner -> rim
    thickness: np.ndarray  # (K,) wall thickness
    resid: np.ndarray  # (K,) residual std of the wall fit
    body: np.ndarray  # (K,) sole body thickness under the footbed corner (footbed to tray), metres


def _pct(a: np.ndarray, q: float) -> float:
    """Percentile ``q`` (0-100, linear interpolation) of a small 1-D array; np.percentile's overhead dominates
    at the few hundred points of a wedge, and this is called thousands of times per pair."""
    v = np.sort(np.ravel(a))
    x = (len(v) - 1) * q / 100.0
    i = int(x)
    return float(v[i] if i + 1 >= len(v) else v[i] + (x - i) * (v[i + 1] - v[i]))


def _med(a: np.ndarray) -> float:
    return _pct(a, 50.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return unit(v, what="section frame vector")


def _patch_normal(N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean normal of a nearly flat patch after dropping normals more than 12 degrees off its median.

    Returns the unit normal (3,) and the (m,) bool mask of the normals that were kept.
    """
    n0 = _unit(np.sort(N, axis=0)[len(N) // 2])  # column-wise median (upper one for even counts)
    keep = N @ n0 > PLANE_COS
    if keep.sum() < 3:
        keep = np.ones(len(N), dtype=bool)
    return _unit(N[keep].mean(axis=0)), keep


def _upper_station(P: np.ndarray, N: np.ndarray, r: np.ndarray, e1: np.ndarray, z_top: float) -> dict | None:
    """Measure one wedge of the upper; None when the wedge has too little data."""
    bottom = (N[:, 2] > UP_COS) & (P[:, 2] > z_top - 0.06)
    if bottom.sum() < MIN_WEDGE_POINTS:
        return None
    r_edge = _pct(r[bottom], 98)
    near = bottom & (r > r_edge - EDGE_BAND[1]) & (r < r_edge - EDGE_BAND[0]) & (N[:, 2] > BOTTOM_COS)
    if near.sum() < MIN_WEDGE_POINTS:
        return None
    n_b, flat = _patch_normal(N[near])
    d_b = _med(P[near][flat] @ n_b)
    e1p = _unit(e1 - (e1 @ n_b) * n_b)
    O = P[near].mean(axis=0)
    depth = d_b - P @ n_b
    s = (P - O) @ e1p
    side = (N @ e1p > 0.3) & (N @ n_b < 0.6) & (depth > 0) & (depth < N_DEPTH_BINS * DEPTH_BIN)
    fit = side & (depth > UPPER_SIDE_FIT[0]) & (depth < UPPER_SIDE_FIT[1])
    # The edge: the outermost points still level with the bottom plane (toe spring turns the normals of
    # the last few millimetres past the "up" bound, so a normal test alone stops short of the edge).
    level = (depth > -1e-3) & (depth < EDGE_DEPTH) & (s > 0)
    if level.sum() >= MIN_WEDGE_POINTS:
        s_e = _pct(s[level], 95)
        edge = O + s_e * e1p + (d_b - EDGE_DEPTH / 2 - O @ n_b) * n_b
    else:
        edge = P[bottom][np.argmax(r[bottom])]
    if fit.sum() < MIN_WEDGE_POINTS:
        # The side below this stretch of edge is not in the scan (toe and heel seen from above).
        return {"edge": edge, "n_b": n_b, "e1": e1p}
    a, _, res = fit_line(depth[fit], s[fit])
    bins = np.floor(depth[side] / DEPTH_BIN).astype(np.int64)
    prof = np.full(N_DEPTH_BINS, np.nan)
    sums = np.bincount(bins, weights=s[side], minlength=N_DEPTH_BINS)
    cnt = np.bincount(bins, minlength=N_DEPTH_BINS)
    has = cnt > 0
    prof[has] = sums[has] / cnt[has]
    corner = O + a * e1p + (d_b - O @ n_b) * n_b
    return {"edge": edge, "corner": corner, "n_b": n_b, "e1": e1p, "profile": prof - a, "resid": res}


def _section_stations(
    frame: Any, P: np.ndarray, N: np.ndarray, n_stations: int, spec: dict, measure: Any
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Run ``measure(points, normals, radii, direction)`` on each wedge of points round ``frame``'s outline.

    Returns (station angles (k,), arrays per ``spec`` key filled where measured, valid (k,) bool).
    """
    theta, r = frame.polar(P)
    wedges = wedge_members(theta, n_stations, WEDGE_OVERLAP)
    th_k = station_angles(n_stations)
    dirs = frame.direction(th_k)
    out = _alloc(n_stations, spec)
    valid = np.zeros(n_stations, dtype=bool)
    for k in range(n_stations):
        idx = wedges[k]
        if len(idx) < 3 * MIN_WEDGE_POINTS:
            continue
        m = measure(P[idx], N[idx], r[idx], np.array([dirs[k, 0], dirs[k, 1], 0.0]))
        if m is None:
            continue
        valid[k] = True
        for key, val in m.items():
            out[key][k] = val
    return th_k, out, valid


def _constants() -> dict[str, Any]:
    """This module's thresholds, for the vectorised stations (:mod:`.profiles_vec`)."""
    return {"MIN": MIN_WEDGE_POINTS, "UP_COS": UP_COS, "EDGE_BAND": EDGE_BAND, "BOTTOM_COS": BOTTOM_COS,
            "PLANE_COS": PLANE_COS, "NBINS": N_DEPTH_BINS, "BIN": DEPTH_BIN, "SIDE_FIT": UPPER_SIDE_FIT,
            "EDGE_DEPTH": EDGE_DEPTH, "FOOTBED": ((FOOTBED_COS, SOLE_EDGE_BAND), *FOOTBED_FALLBACKS),
            "RIM_CLUSTER": RIM_CLUSTER, "RIM_RADIUS": RIM_RADIUS, "RIM_FACE_COS": RIM_FACE_COS,
            "RIM_INSIDE": RIM_INSIDE, "OVERLAP": WEDGE_OVERLAP}  # fmt: skip


def _all_stations(
    frame: Any, P: np.ndarray, N: np.ndarray, n_stations: int, kind: str, z: float
) -> tuple[np.ndarray, dict, np.ndarray]:
    """As :func:`_section_stations` with ``_upper_station`` / ``_sole_station`` (``kind``), every wedge at once
    (:mod:`.profiles_vec`); ``z``: the upper's top or the sole's tray level."""
    from .profiles_vec import Segments, sole_stations, upper_stations

    theta, r = frame.polar(P)
    th_k = station_angles(n_stations)
    dirs = frame.direction(th_k)
    got = _compiled_stations(theta, r, P, N, dirs, kind, z)
    if got is not None:
        return th_k, got[0], got[1]
    idx, lens = wedge_index(theta, n_stations, WEDGE_OVERLAP)
    S = Segments(np.repeat(np.arange(n_stations), lens), n_stations)
    E1 = np.column_stack([dirs, np.zeros(n_stations)])
    fn = upper_stations if kind == "upper" else sole_stations
    out, valid = fn(P[idx], N[idx], r[idx], E1, S, z, lens >= 3 * MIN_WEDGE_POINTS, _constants())
    return th_k, out, valid


def _compiled_stations(theta: np.ndarray, r: np.ndarray, P: np.ndarray, N: np.ndarray, dirs: np.ndarray, kind: str,
                       z: float) -> tuple[dict, np.ndarray] | None:  # fmt: skip
    """The stations by :mod:`.sectkernel` (:data:`COMPILED`), or None (not compiled, or a patch normal with no
    direction: the numpy path then raises as before)."""
    from . import sectkernel

    if not (COMPILED and sectkernel.available()):
        return None
    E1 = np.column_stack([dirs, np.zeros(len(dirs))])
    fn = sectkernel.upper_stations if kind == "upper" else sectkernel.sole_stations
    return fn(theta, r, P, N, E1, z, _constants())


def _check_finite(points: np.ndarray, normals: np.ndarray, what: str) -> None:
    """Refuse NaN/inf points or normals (no rule can measure them; every path refuses them alike)."""
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(normals))):
        raise ValidationError(f"{what}: points or normals hold NaN/inf", what=what)


def upper_sections(points: np.ndarray, normals: np.ndarray, n_stations: int) -> UpperSections:
    """Measure the upper's bottom edge and side at ``n_stations`` stations.

    Args:
        points: (n, 3) float64, metres, ``base_link``, the upper bottom up.
        normals: (n, 3) float64 unit outward normals.
        n_stations: number of stations round the outline.
    """
    _check_finite(points, normals, "upper sections")
    z_top = float(np.percentile(points[:, 2], 99.5))
    keep = points[:, 2] > z_top - 0.12
    P, N = (points, normals) if keep.all() else (points[keep], normals[keep])  # a registered reference: all kept
    bottom = (N[:, 2] > UP_COS) & (P[:, 2] > z_top - 0.06)
    frame = outline_frame(P[bottom] if bottom.sum() > 10 else P)
    if VECTORISED:
        th_k, out, valid = _all_stations(frame, P, N, n_stations, "upper", z_top)
    else:
        spec = {"edge": 3, "corner": 3, "n_b": 3, "e1": 3, "profile": N_DEPTH_BINS, "resid": 0}
        th_k, out, valid = _section_stations(
            frame, P, N, n_stations, spec, lambda p, n, r, d: _upper_station(p, n, r, d, z_top)
        )
    full = valid & np.isfinite(out["corner"][:, 0])
    full &= ~ring_outliers(th_k, out["corner"][:, :2], full, OUTLIER_TOL)
    valid &= ~ring_outliers(th_k, out["edge"][:, :2], valid, OUTLIER_TOL)
    full &= valid
    out["corner"][~full] = np.nan
    _corner_from_edge(out, valid & ~full, full)
    return UpperSections(frame=frame, theta=th_k, valid=valid, full=full, z_top=z_top, **out)


def _corner_from_edge(out: dict[str, np.ndarray], missing: np.ndarray, full: np.ndarray) -> None:
    """Virtual corners of edge-only stations: their bottom edge plus the median edge->corner offset of full ones."""
    if not missing.any() or full.sum() < 8:
        return
    d = out["corner"][full] - out["edge"][full]
    ds = _med(np.sum(d * out["e1"][full], axis=1))
    dn = _med(np.sum(d * out["n_b"][full], axis=1))
    out["corner"][missing] = out["edge"][missing] + ds * out["e1"][missing] + dn * out["n_b"][missing]


def ring_outliers(theta: np.ndarray, values: np.ndarray, valid: np.ndarray, tol: float) -> np.ndarray:
    """(K,) bool: valid stations further than ``tol`` from a low-pass ring through the valid ones.

    ``values`` is (K,) or (K, d); two passes, the second without the first pass's outliers.
    """
    vals = values.reshape(len(values), -1)
    bad = np.zeros(len(vals), dtype=bool)
    for _ in range(2):
        good = valid & ~bad
        if good.sum() < 16:
            return bad
        smooth = smooth_closed(fill_invalid(theta, vals, good), 12)
        bad = valid & (np.linalg.norm(vals - smooth, axis=1) > tol)
    return bad


def _alloc(n: int, spec: dict[str, int]) -> dict[str, np.ndarray]:
    return {k: np.full((n, c) if c else n, np.nan) for k, c in spec.items()}


def _sole_station(P: np.ndarray, N: np.ndarray, r: np.ndarray, e1: np.ndarray, z_tray: float) -> dict | None:
    """Measure one wedge of the sole; None when it shows no footbed, inner wall and rim."""
    # Facing the outline centre; wedges cross the wall obliquely near the ball and heel, so the bound is loose.
    inward = (N @ e1 < -0.25) & (np.abs(N[:, 2]) < 0.8)
    if inward.sum() < MIN_WEDGE_POINTS:
        return None
    r_w = _med(r[inward])
    z_w = _med(P[inward, 2])
    below = P[:, 2] < z_w
    for cos_up, band in ((FOOTBED_COS, SOLE_EDGE_BAND), *FOOTBED_FALLBACKS):  # steep heel seat, sparse scan
        fb = (N[:, 2] > cos_up) & (r > r_w - band[1]) & (r < r_w - band[0]) & below
        if fb.sum() >= MIN_WEDGE_POINTS:
            break
    else:
        return None
    n_f, flat = _patch_normal(N[fb])
    d_f = _med(P[fb][flat] @ n_f)
    height = P @ n_f - d_f
    # The rim is the top of the wall: the highest points near it (its top may be rounded, so not by normal).
    rim = (r > r_w - 3e-3) & (r < r_w + 10e-3) & (height > 2e-3)
    if rim.sum() < MIN_WEDGE_POINTS:
        return None
    # Top of the rim: the median of the uppermost cluster (a high percentile alone would add the noise).
    top = rim & (height > _pct(height[rim], 95) - RIM_CLUSTER)
    up = top & (N @ n_f > 0.5)  # the rim's top face, not the wall just under it
    if up.sum() < MIN_WEDGE_POINTS:
        # The rim's top face is not in the scan here (the cameras saw only the wall): no height is measured
        # rather than one read off the wall below it (that read 5-8 mm low on the world's boots).
        return None
    h = _med(height[up])
    e1p = _unit(e1 - (e1 @ n_f) * n_f)
    O = P[fb].mean(axis=0)
    s = (P - O) @ e1p
    wall = inward & (height > 0.25 * h) & (height < 0.75 * h)
    outer = (N @ e1p > 0.5) & (height > 0.25 * h) & (height < 0.75 * h)
    if wall.sum() < MIN_WEDGE_POINTS:
        return None
    # The wall's own offset (median, no extrapolation: sparse, noisy wedges make fitted slopes wild).
    a = _med(s[wall])
    res = float(np.std(s[wall]))
    t = float(_med(s[outer]) - a) if outer.sum() >= MIN_WEDGE_POINTS else np.nan
    base = O + (d_f - O @ n_f) * n_f
    # Re-measure the rim right above this corner: a wedge that cuts the wall obliquely spans a stretch of
    # the outline over which the rim height changes (the heel counter), so the wedge-wide value is blurred.
    corner = base + a * e1p
    h = _rim_top(P, N, height, s - a, corner, n_f, h)
    return {
        "corner": corner,
        "rim": base + a * e1p + h * n_f,
        "n_f": n_f,
        "height": h,
        "wall_len": h,
        "thickness": t,
        "resid": res,
        "body": float((base + a * e1p)[2] - z_tray),
    }


def _rim_top(
    P: np.ndarray, N: np.ndarray, height: np.ndarray, s: np.ndarray, corner: np.ndarray, n_f: np.ndarray, h0: float
) -> float:
    """Rim height above the footbed right above ``corner``: median of the rim's flat top face.

    Only points facing up within ``RIM_FACE_COS`` (the flat top, not its rounded or sharp edges, whose blurred
    normals pulled the former "top cluster" median low), outside the inner wall's face, within ``RIM_RADIUS``
    in plan of the corner (a wedge that cuts the wall obliquely spans a stretch of outline over which the rim
    height changes at the heel counter). ``h0`` (the wedge-wide reading) is kept when too few such points exist.
    Against the world's meshes on training pairs the rim-top level read this way scatters 0.52 mm (std over
    stations) against 0.79 mm for the former rule.
    """
    near = np.linalg.norm(P[:, :2] - corner[:2], axis=1) < RIM_RADIUS
    face = near & (N @ n_f > RIM_FACE_COS) & (s > -RIM_INSIDE) & (height > 0.4 * h0)
    if face.sum() >= MIN_WEDGE_POINTS - 1:
        return _med(height[face])
    return h0


def sole_sections(
    points: np.ndarray, normals: np.ndarray, n_stations: int, frame: OutlineFrame | None = None
) -> SoleSections:
    """Measure the sole's footbed corner, rim and wall at ``n_stations`` stations.

    Args:
        points: (n, 3) float64, metres, ``base_link``, the sole footbed up.
        normals: (n, 3) float64 unit outward normals.
        n_stations: number of stations round the outline.
        frame: outline frame to section in (default: this sole's own); a registered reference sole is
            sectioned in its scan's frame so that their stations coincide.
    """
    _check_finite(points, normals, "sole sections")
    frame = frame or outline_frame(points)
    spec = {"corner": 3, "rim": 3, "n_f": 3, "height": 0, "wall_len": 0, "thickness": 0, "resid": 0, "body": 0}
    z_tray = float(np.percentile(points[:, 2], 0.5))
    from .profiles_vec import trimmed_sole

    got = None
    if VECTORISED and COMPILED:
        theta, r = frame.polar(points)
        th_k = station_angles(n_stations)
        comp = _compiled_stations(theta, r, points, normals, frame.direction(th_k), "sole", z_tray)
        got = None if comp is None else (th_k, *comp)
    if got is None and VECTORISED and TRIM:
        got = trimmed_sole(frame, points, normals, n_stations, z_tray, _constants())
    if got is not None:  # the same sections without the points facing down (checked to enter no rule)
        th_k, out, valid = got
    elif VECTORISED:
        th_k, out, valid = _all_stations(frame, points, normals, n_stations, "sole", z_tray)
    else:
        th_k, out, valid = _section_stations(
            frame, points, normals, n_stations, spec, lambda p, n, r, d: _sole_station(p, n, r, d, z_tray)
        )
    valid &= ~ring_outliers(th_k, out["corner"][:, :2], valid, OUTLIER_TOL)
    valid &= ~ring_outliers(th_k, out["height"], valid, OUTLIER_TOL)
    return SoleSections(frame=frame, theta=th_k, valid=valid, **out)
