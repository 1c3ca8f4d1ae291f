"""Input checks: is this a usable scan of a cup sole (footbed up) and of a lasted upper (bottom up)?

Every failure raises its own :mod:`gluecell.deformation.errors` class; nothing here guesses.
Shape limits come from FACTS.md ("Lasts and sizes": EU 36-46 is a last length of 240-307 mm) widened
for the sole's wall and for children's/large sizes; they are checks for *wrong objects*, not for sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gluecell.core.types import PartScan

from .errors import (
    NonFiniteScanError,
    NotAnUpperError,
    NotASoleError,
    SizeMismatchError,
    SoleUpsideDownError,
    TooFewPointsError,
)
from .profiles import SoleSections, UpperSections, sole_sections, upper_sections
from .sections import fill_invalid, smooth_closed
from .sole_reference import blend_with_reference

__all__ = [
    "check_finite_scan",
    "check_upper_scan",
    "check_sole_shape",
    "scan_from_arrays",
    "estimate_normals",
    "MIN_POINTS",
    "LENGTH_RANGE",
    "section_pair",
    "check_size",
    "perimeter",
]

#: Fewest points a part scan may have (about 1 point per 4 mm^2 of a sole's bond area).
MIN_POINTS = 3000
#: Plan length of a sole or an upper's bottom, metres (EU 36-46 lasts are 240-307 mm; margins both ways).
LENGTH_RANGE = (0.18, 0.38)
#: Plan width / length of a shoe outline (narrow racing flats ~0.3, wide boots ~0.45).
ASPECT_RANGE = (0.22, 0.60)
#: Height of a sole from tray to rim, metres (flat sandal soles excluded: no cup; cup soles stay under 70 mm).
SOLE_HEIGHT_RANGE = (0.012, 0.07)
#: Least height of a lasted upper's scan standing bottom up, metres (a low shoe's upper is ~ 60 mm tall). A
#: profiler straight above sees only the top ~30 mm of its side (world 2's laser cloud: 29 mm), but lowering this
#: lets a sole given as the upper through (its footbed passes the bottom-cover test below), and such a cloud
#: still fails for want of the sole's wall: kept at 50 mm until a test that tells a cup from a bottom exists.
UPPER_HEIGHT_MIN = 0.05
#: Fraction of the plan outline that the bottom (top-facing points near the top) must cover.
UPPER_BOTTOM_COVER = 0.45


def check_finite_scan(scan: PartScan) -> None:
    """Raise :class:`NonFiniteScanError` for NaN/inf and :class:`TooFewPointsError` below :data:`MIN_POINTS`."""
    for name, arr in (("points", scan.points), ("normals", scan.normals)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise NonFiniteScanError(f"{scan.part} scan: {name} contain NaN or inf", stage="deformation")
    if len(scan.points) < MIN_POINTS:
        raise TooFewPointsError(
            f"{scan.part} scan has {len(scan.points)} points, at least {MIN_POINTS} are needed: rescan",
            stage="deformation",
            n_points=len(scan.points),
        )
    if scan.normals is None:
        raise TooFewPointsError(f"{scan.part} scan has no normals", stage="deformation")


def scan_from_arrays(part: str, points: np.ndarray, normals: np.ndarray | None = None, item_id: str = "") -> PartScan:
    """Build a PartScan from raw arrays, raising :class:`NonFiniteScanError` on NaN (not a generic error).

    Normals are estimated (:func:`estimate_normals`) when ``normals`` is None.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise TooFewPointsError(f"{part} scan: points must be (n, 3), got {pts.shape}", stage="deformation")
    if not np.all(np.isfinite(pts)) or (normals is not None and not np.all(np.isfinite(normals))):
        raise NonFiniteScanError(f"{part} scan: points or normals contain NaN or inf", stage="deformation")
    if len(pts) < MIN_POINTS:
        raise TooFewPointsError(f"{part} scan has {len(pts)} points, at least {MIN_POINTS} are needed")
    nrm = estimate_normals(pts, part=part) if normals is None else np.asarray(normals, dtype=np.float64)
    nrm = nrm / np.linalg.norm(nrm, axis=1, keepdims=True)
    return PartScan(part=part, points=pts, normals=nrm, item_id=item_id)


def estimate_normals(points: np.ndarray, k: int = 16, part: str = "upper") -> np.ndarray:
    """(n, 3) unit normals by PCA of the ``k`` nearest neighbours, oriented for a part scanned from above.

    Near-horizontal patches face up (a surface facing down is never seen from above). Walls face away from
    the part's vertical axis, except a sole's inner wall: wall points more than 2.5 mm inside the outer
    outline at their bearing face the axis (the footbed cavity).
    """
    from scipy.spatial import cKDTree

    _, idx = cKDTree(points).query(points, k=min(k, len(points)))
    nb = points[idx] - points[idx].mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", nb, nb)
    _, vecs = np.linalg.eigh(cov)
    n = vecs[:, :, 0]
    out = points - points.mean(axis=0)
    out[:, 2] = 0.0
    if part == "sole":
        r = np.hypot(out[:, 0], out[:, 1])
        b = np.floor((np.arctan2(out[:, 1], out[:, 0]) + np.pi) / (2 * np.pi) * 256).astype(np.int64) % 256
        r_max = np.zeros(256)
        np.maximum.at(r_max, b, r)
        out[r < r_max[b] - 2.5e-3] *= -1.0
    ref = np.where(np.abs(n[:, 2:3]) > 0.5, np.array([[0.0, 0.0, 1.0]]), out)
    n *= np.where(np.sum(n * ref, axis=1) < 0, -1.0, 1.0)[:, None]
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _plan_extent(points: np.ndarray) -> tuple[float, float]:
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov(xy.T))
    proj = xy @ vecs
    # both percentiles of a column in one call on a contiguous copy: the same values, in half the time
    ext = [float(np.subtract(*np.percentile(np.ascontiguousarray(proj[:, c]), [99.5, 0.5]))) for c in range(2)]
    return max(ext), min(ext)


def check_upper_scan(scan: PartScan) -> None:
    """Raise :class:`NotAnUpperError` unless ``scan`` looks like a lasted upper standing bottom up."""
    check_finite_scan(scan)
    P, N = scan.points, scan.normals
    length, width = _plan_extent(P)
    z_top = np.percentile(P[:, 2], 99.5)
    height = float(z_top - P[:, 2].min())
    why = _shape_problem(length, width)
    if why is None and height < UPPER_HEIGHT_MIN:
        why = (f"it is only {height * 1e3:.0f} mm tall (an upper is over {UPPER_HEIGHT_MIN * 1e3:.0f} mm); a cloud "
               f"taken from straight above (a laser profiler) shows the bottom but not the side down to the bite "
               f"line: scan the upper with views from the side (the cell's cameras)")
    if why is None:
        top = (N[:, 2] > 0.8) & (P[:, 2] > z_top - 0.04)
        cover = _covered_fraction(P[top], P)
        if cover < UPPER_BOTTOM_COVER:
            why = f"its top is not a shoe bottom (covers {cover:.0%} of the outline): is the upper bottom up?"
    if why is not None:
        raise NotAnUpperError(f"upper scan is not a lasted upper: {why}", stage="deformation", item_id=scan.item_id)


def check_sole_shape(scan: PartScan) -> None:
    """Raise :class:`NotASoleError` unless the plan extents and height fit a sole."""
    check_finite_scan(scan)
    length, width = _plan_extent(scan.points)
    height = float(np.percentile(scan.points[:, 2], 99.5) - np.percentile(scan.points[:, 2], 0.5))
    why = _shape_problem(length, width)
    if why is None and not SOLE_HEIGHT_RANGE[0] <= height <= SOLE_HEIGHT_RANGE[1]:
        lo, hi = SOLE_HEIGHT_RANGE
        why = f"height {height * 1e3:.0f} mm outside {lo * 1e3:.0f}-{hi * 1e3:.0f} mm"
    if why is not None:
        raise NotASoleError(f"sole scan is not a sole: {why}", stage="deformation", item_id=scan.item_id)


def check_sole_cavity(scan: PartScan, valid_fraction: float, min_fraction: float) -> None:
    """After sectioning: raise :class:`SoleUpsideDownError` or :class:`NotASoleError` when no cup is seen.

    A sole that lies tread up shows a closed top (the tread, its highest area in the middle of the
    outline); any other object without a footbed cavity and rim is not a sole.
    """
    if valid_fraction >= min_fraction:
        return
    P, N = scan.points, scan.normals
    d = P[:, :2] - P[:, :2].mean(axis=0)
    r = np.linalg.norm(d, axis=1)
    inner = r < np.percentile(r, 40)
    ring = r > np.percentile(r, 80)
    up_in = inner & (N[:, 2] > 0.8)
    up_ring = ring & (N[:, 2] > 0.8)
    if (up_in.sum() > 10 and up_ring.sum() > 10 and np.median(P[up_in, 2]) >= np.median(P[up_ring, 2]) - 1e-3
            and _rim_rise(P, N) < 1e-3):  # fmt: skip
        raise SoleUpsideDownError(
            "sole lies tread up (no footbed cavity seen, its middle is its highest part): turn it over",
            stage="deformation",
            item_id=scan.item_id,
        )
    raise NotASoleError(
        f"sole scan shows a footbed, wall and rim at only {valid_fraction:.0%} of the outline (at least "
        f"{min_fraction:.0%} needed): the cup's inner wall is not in the scan; a cloud taken from straight above (a "
        f"laser profiler) misses it: scan the sole with views that look into the cup (the cell's cameras)",
        stage="deformation", item_id=scan.item_id,
    )  # fmt: skip


def _rim_rise(P: np.ndarray, N: np.ndarray, bins: int = 64) -> float:
    """Median over bearings of how far the top of the outermost 4 mm stands above the top of the band 8-25 mm
    inside it, metres (up-facing points only). A cup sole footbed up shows its rim above the footbed (a wall's
    height); a sole lying tread up shows no such rim (its tread edge rounds down). Tells the two apart where the
    footbed rises towards toe and heel above the middle (the median test alone called such a cup "tread up")."""
    up = N[:, 2] > 0.8
    d = P[up, :2] - P[up, :2].mean(axis=0)
    r, z = np.linalg.norm(d, axis=1), P[up, 2]
    b = np.floor((np.arctan2(d[:, 1], d[:, 0]) + np.pi) / (2 * np.pi) * bins).astype(np.int64) % bins
    rises = []
    for k in range(bins):
        rk, zk = r[b == k], z[b == k]
        if len(rk) < 10:
            continue
        edge = rk.max()
        outer, inner = zk[rk > edge - 4e-3], zk[(rk > edge - 25e-3) & (rk < edge - 8e-3)]
        if len(outer) and len(inner):
            rises.append(outer.max() - inner.max())
    return float(np.median(rises)) if rises else 0.0


def _shape_problem(length: float, width: float) -> str | None:
    if not LENGTH_RANGE[0] <= length <= LENGTH_RANGE[1]:
        return f"plan length {length * 1e3:.0f} mm outside {LENGTH_RANGE[0] * 1e3:.0f}-{LENGTH_RANGE[1] * 1e3:.0f} mm"
    if not ASPECT_RANGE[0] <= width / length <= ASPECT_RANGE[1]:
        return f"width/length {width / length:.2f} outside {ASPECT_RANGE[0]}-{ASPECT_RANGE[1]}"
    return None


def _covered_fraction(sub: np.ndarray, full: np.ndarray, cell: float = 0.005) -> float:
    """Share of the plan-view cells occupied by ``full`` that ``sub`` also occupies (5 mm cells)."""
    if len(sub) == 0:
        return 0.0
    from .icpkernel import col_max, col_min

    lo = col_min(full[:, :2])
    cf = np.floor((full[:, :2] - lo) / cell).astype(np.int64)
    cs = np.floor((sub[:, :2] - lo) / cell).astype(np.int64)
    dims = col_max(cf) + 1
    if cs.min() >= 0 and np.all(col_max(cs) < dims) and dims[0] * dims[1] <= 4_000_000 and dims[0] < 1 << 20:
        # the cells marked in one plan grid (the same count as the sets below, without sorting or hashing)
        grid = np.zeros(int(dims[0] * dims[1]), dtype=np.uint8)
        grid[cf[:, 0] * dims[1] + cf[:, 1]] = 1
        grid[cs[:, 0] * dims[1] + cs[:, 1]] |= 2
        return int(np.count_nonzero(grid == 3)) / max(int(np.count_nonzero(grid & 1)), 1)
    key = lambda p: np.unique(np.floor((p[:, :2] - lo) / cell).astype(np.int64) @ np.array([1, 1 << 20]))  # noqa: E731
    cf, cs = key(full), key(sub)
    return len(np.intersect1d(cs, cf)) / max(len(cf), 1)


__all__ += ["check_sole_cavity", "scan_sole_sections", "checked"]


def scan_sole_sections(sole: PartScan, n_stations: int) -> SoleSections:
    """``sole_sections`` of the scan, taken from :func:`~.parallel.sole_prefetch`'s worker when it runs."""
    from .parallel import MISS, lookup_scan_sections

    got = lookup_scan_sections(sole.points, sole.normals, n_stations)
    return sole_sections(sole.points, sole.normals, n_stations) if got is MISS else got


def checked(check: Any, kind: str, scan: PartScan) -> None:
    """``check(scan)`` (``check_upper_scan``, ``kind`` "upper", or ``check_sole_shape``, "sole"), or the same check
    that :func:`~.parallel.sole_prefetch`'s worker ran on this very scan: its error is raised here all the same."""
    from .parallel import MISS, lookup_check

    got = lookup_check(kind, scan)
    if got is MISS:
        check(scan)
    else:
        got.result()


def _upper_sections_or_error(upper: PartScan, n_stations: int) -> tuple[UpperSections | None, Exception | None]:
    try:
        return upper_sections(upper.points, upper.normals, n_stations), None
    except Exception as exc:  # raised by the caller where upper_sections was called before
        return None, exc


def section_pair(
    upper: PartScan, sole: PartScan, cfg: Any, sole_reference: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[UpperSections, SoleSections]:
    """Check both scans and section them (``cfg``: a :class:`~.predict.PredictConfig`).

    The sole's wall height is blended with ``sole_reference`` when given (:mod:`.sole_reference`); too few
    measured stations on either part raise (:class:`NotASoleError`, :class:`TooFewPointsError`).
    """
    checked(check_upper_scan, "upper", upper)
    checked(check_sole_shape, "sole", sole)
    ss = scan_sole_sections(sole, cfg.n_stations)
    check_sole_cavity(sole, float(ss.valid.mean()), cfg.min_valid)
    # the upper's sections before the blend, which may wait on the sole's thread; its error raised after, as before
    us, upper_error = _upper_sections_or_error(upper, cfg.n_stations)
    if sole_reference is not None:
        ss, _ = blend_with_reference(sole, ss, *sole_reference)
    if upper_error is not None:
        raise upper_error
    assert us is not None
    if us.valid.mean() < cfg.min_valid:
        raise TooFewPointsError(
            f"upper scan shows its bottom edge and side at only {us.valid.mean():.0%} of the outline: rescan",
            stage="deformation",
            item_id=upper.item_id,
        )
    return us, ss


def check_size(us: UpperSections, ss: SoleSections, cfg: Any, item_id: str) -> float:
    """Perimeter strain upper/sole - 1; raise :class:`SizeMismatchError` outside ``cfg.strain_range``."""
    cu = smooth_closed(fill_invalid(us.theta, us.corner, us.valid))
    cs = smooth_closed(fill_invalid(ss.theta, ss.corner, ss.valid))
    strain0 = perimeter(cu) / perimeter(cs) - 1.0
    if not cfg.strain_range[0] <= strain0 <= cfg.strain_range[1]:
        kind = "too small" if strain0 > 0 else "too large"
        raise SizeMismatchError(
            f"sole is {kind} for the upper: outline perimeters differ by {strain0:+.1%} "
            f"(allowed {cfg.strain_range[0]:+.0%} to {cfg.strain_range[1]:+.0%}); wrong size or wrong pair?",
            stage="deformation",
            item_id=item_id,
            strain=strain0,
        )
    return strain0


def perimeter(ring: np.ndarray) -> float:
    """Length of a closed (K, d) polyline, metres."""
    return float(np.linalg.norm(np.roll(ring, -1, axis=0) - ring, axis=1).sum())
