"""Spray deposition: an elliptic double-Gaussian footprint with standoff and incidence angle.

The gun emits glue at ``flow`` (m^3/s, already times transfer efficiency) into a cone whose angular
density is a sum of two elliptic Gaussians in tangent-plane coordinates (u, w) = (tan of the angle
across, along the path). A surface element at ``r`` from the tip (``h = r . axis``, incidence
cosine ``ci``) then gets film at the rate ``flow * g(u, w) * ci * |r| / h^3`` (metres/second): the
footprint widens linearly and thins with the square of the standoff, and oblique incidence spreads
it. Summed over the path's dwell times this gives the wet film thickness. Occlusion is ignored.

Chosen values (FACTS.md has coating practice only: HVLP guns 100-150 mm from the surface at about
460 mm/s, which would mist far past a 1 mm bite-line tolerance): a shoe-glue gun is a small,
low-pressure nozzle close to the part, so we take 35 mm standoff for the band and an edge pass at
8 mm along the bite line (5 mm on the upper, see ``pipeline._upper_defaults``), both at 250 mm/s
(slow enough that the arm holds it round most of the
shoe). A core cone sigma of 4 deg gives a 2.4 mm footprint sigma at 35 mm (0.56 mm at 8 mm); an 8 %
shoulder of 8 deg models the mist. 0.3 ml/s of wet glue then lays ~0.14 mm on the band with ~9 mm
between passes (FACTS.md: manual layer 0.1-0.3 mm). A spot counts as covered from 0.05 mm wet film
and as glued (a trace, e.g. above the bite line) from 0.005 mm; a continuous film that a UV lamp shows as a
reject above the line from 0.01 mm wet (~4 um dry at the ~40 % solids of a PU dispersion; chosen).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.core.types import SprayPath

from . import filmkernel
from .errors import NonFiniteError
from .geom import matrix_from_quat, unit

#: Edge (m) of the cell grid of the compiled film sum and standoff ray cast (footprint balls are 3-57 mm;
#: 10 mm was the fastest of 3-14 mm on a bench upper).
GRID_CELL = 10e-3
#: A nozzle axis meets the part at the first cloud point within this distance of it (m).
STANDOFF_RADIUS = 2.5e-3

__all__ = ["DepositionParams", "path_samples", "film_thickness", "spray_metrics", "SpraySamples", "Footprints",
           "footprints", "film_at"]


@dataclass(frozen=True)
class DepositionParams:
    """Gun and film thresholds (see the module docstring for where each value comes from)."""

    flow_ml_s: float = 0.3
    core_sigma_deg: tuple[float, float] = (4.0, 4.0)
    halo_sigma_deg: tuple[float, float] = (8.0, 8.0)
    halo_weight: float = 0.08
    covered_mm: float = 0.05
    trace_mm: float = 0.005
    visible_mm: float = 0.01
    step_mm: float = 1.0
    reach_sigmas: float = 3.5

    def __post_init__(self) -> None:
        if not (self.flow_ml_s > 0 and 0 <= self.halo_weight < 1 and self.covered_mm > self.trace_mm > 0
                and self.covered_mm > self.visible_mm >= self.trace_mm):  # fmt: skip
            raise ValueError("need flow_ml_s > 0, 0 <= halo_weight < 1, covered_mm > visible_mm >= trace_mm > 0")


@dataclass(frozen=True)
class SpraySamples:
    """Dense gun-on samples of a path: tip (k, 3), axis (k, 3), along-path unit (k, 3), dwell (k,) s, and an
    optional class label (k,) int >= 0 per sample (e.g. edge / main pass) for films split by class."""

    tip: np.ndarray
    axis: np.ndarray
    along: np.ndarray
    dwell: np.ndarray
    label: np.ndarray | None = None


def path_samples(path: SprayPath, step: float = 1e-3, labels: np.ndarray | None = None) -> SpraySamples:
    """Cut every gun-on segment of ``path`` into pieces of at most ``step`` metres (midpoints, dwell times).

    ``labels`` (n,) int >= 0 per waypoint: each segment's samples carry the label of its first waypoint.
    """
    on = np.flatnonzero(path.spray[:-1])
    a, b = path.xyz[on], path.xyz[on + 1]
    dt = path.t[on + 1] - path.t[on]
    seg = np.linalg.norm(b - a, axis=1)
    n = np.maximum(np.ceil(seg / step).astype(int), 1)
    rep = np.repeat(np.arange(len(on)), n)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    f = ((k + 0.5) / n[rep])[:, None]
    R = matrix_from_quat(path.quat_xyzw)
    za, zb = R[on, :, 2], R[on + 1, :, 2]
    tip = a[rep] + f * (b - a)[rep]
    axis = unit(za[rep] * (1 - f) + zb[rep] * f)
    along = unit((b - a)[rep] - np.einsum("ij,ij->i", (b - a)[rep], axis)[:, None] * axis)
    lab = None if labels is None else np.asarray(labels, dtype=np.int64)[on][rep]
    return SpraySamples(tip, axis, along, (dt / n)[rep], lab)


def film_thickness(
    samples: SpraySamples, points: np.ndarray, normals: np.ndarray, params: DepositionParams | None = None,
    max_standoff: float = 0.08, surface: np.ndarray | None = None, n_labels: int = 0, kernel: str | None = None,
) -> np.ndarray:  # fmt: skip
    """Wet film thickness (n,) metres at ``points`` (n, 3) with outward ``normals`` (n, 3).

    ``surface`` (k, 3) is the whole part's cloud, used to find where each nozzle axis meets the part
    (default: ``points``, which must then cover the sprayed surface). With ``n_labels`` > 0 (and
    ``samples.label`` set) the film is returned per label, (n_labels, n): one pass for every class.
    ``kernel``: ``"compiled"`` (:mod:`~gluecell.pathplan.filmkernel`), ``"arrays"`` (numpy) or None (compiled
    where numba is there); both sum the same pairs with the same float32 steps.
    """
    p = params or DepositionParams()
    by_label = n_labels > 0 and samples.label is not None
    if len(samples.tip) == 0 or len(points) == 0:
        return np.zeros((n_labels, len(points)) if by_label else len(points))
    if kernel is None:
        kernel = "compiled" if filmkernel.available() else "arrays"
    if kernel == "compiled":
        grid = filmkernel.cell_grid(points, GRID_CELL)
        fp = footprints(samples, p, max_standoff, points if surface is None else surface,
                        grid if surface is None or surface is points else None)  # fmt: skip
        return film_at(fp, points, normals, n_labels, grid)
    tan_max, spacing, step = _reach(samples, p)
    surf = points if surface is None else surface
    samples, aim, radius, tree = _footprints(samples, points, tan_max, max_standoff, surf, spacing, step)
    label = samples.label if by_label else np.zeros(len(samples.tip), dtype=np.int64)
    out = _film_arrays(samples, points, normals, aim, radius, tree, _frames(samples), label, max(n_labels, 1),
                       _gauss(p), p.flow_ml_s * 1e-6)  # fmt: skip
    return out if by_label else out[0]


@dataclass(frozen=True)
class Footprints:
    """Spray samples ready to be summed on any points of one surface (:func:`footprints`): the merged samples,
    their aim points (k, 3) and ball radii (k,) metres, frames (k, 3, 3), Gaussian table and flow (m^3/s)."""

    samples: SpraySamples
    aim: np.ndarray
    radius: np.ndarray
    frame: np.ndarray
    gauss: np.ndarray
    flow: float


def footprints(samples: SpraySamples, params: DepositionParams, max_standoff: float, surface: np.ndarray,
               surface_grid: Any = None) -> Footprints:  # fmt: skip
    """The standoffs (ray cast against ``surface`` (k, 3), the part's cloud) and merged footprints of ``samples``,
    computed once for :func:`film_at` on any points of that surface (issue 15 item 4: the tuner sums the film beyond
    the line first and the rest only when the round is safe). ``surface_grid``: :func:`~.filmkernel.cell_grid` of
    ``surface`` (kept between rounds; built here when None). Compiled kernels only.

    ``film_at(footprints(s, p, m, surface), pts, nrm)`` is :func:`film_thickness` ``(s, pts, nrm, p, m, surface)``
    bit for bit, for every subset ``pts`` of the points: each point's terms come from the same samples in the same
    order (tests/pathplan/test_planlat_subset.py).
    """
    tan_max, spacing, step = _reach(samples, params)
    sgrid = surface_grid if surface_grid is not None else filmkernel.cell_grid(surface, GRID_CELL)
    samples, aim, radius, _ = _footprints(samples, surface, tan_max, max_standoff, surface, spacing, step, sgrid)
    return Footprints(samples, aim, radius, _frames(samples), _gauss(params), params.flow_ml_s * 1e-6)


def film_at(fp: Footprints, points: np.ndarray, normals: np.ndarray, n_labels: int = 0,
            grid: Any = None) -> np.ndarray:  # fmt: skip
    """Film (n,) metres, or (n_labels, n) per label, of the prepared :func:`footprints` at ``points`` (n, 3) with
    outward ``normals``; ``grid``: :func:`~.filmkernel.cell_grid` of ``points`` (built when None)."""
    by_label = n_labels > 0 and fp.samples.label is not None
    if len(fp.samples.tip) == 0 or len(points) == 0:
        return np.zeros((n_labels, len(points)) if by_label else len(points))
    grid = grid if grid is not None else filmkernel.cell_grid(points, GRID_CELL)
    label = fp.samples.label if by_label else np.zeros(len(fp.samples.tip), dtype=np.int64)
    out = filmkernel.film_sum(grid, points, normals, fp.aim, fp.radius, fp.samples.tip, fp.frame, fp.samples.dwell,
                              label, max(n_labels, 1), fp.gauss, fp.flow)  # fmt: skip
    return out if by_label else out[0]


def _reach(samples: SpraySamples, p: DepositionParams) -> tuple[float, float, float]:
    """(tan of the footprint's reach, merge spacing as a tangent, sample spacing m) of :func:`film_thickness`."""
    tan_max = float(np.tan(min(np.deg2rad(sig_max_deg(p)) * p.reach_sigmas, 1.3)))
    spacing = 0.7 * float(np.tan(np.deg2rad(min(*p.core_sigma_deg))))
    step = float(np.median(np.linalg.norm(np.diff(samples.tip, axis=0), axis=1))) if len(samples.tip) > 1 else 1e-3
    return tan_max, spacing, max(step, 1e-4)


def _frames(samples: SpraySamples) -> np.ndarray:
    """(k, 3, 3) rows across, along, axis of every sample."""
    return np.stack([np.cross(samples.axis, samples.along), samples.along, samples.axis], axis=1)


def _gauss(p: DepositionParams) -> np.ndarray:
    """(2, 3) per Gaussian of the footprint: weight / (2 pi s_u s_w), 1 / s_u, 1 / s_w (tangent units)."""
    sig = np.tan(np.deg2rad(np.array([p.core_sigma_deg, p.halo_sigma_deg])))  # (2, 2): across, along
    return np.array([[wk / (2 * np.pi * s[0] * s[1]), 1 / s[0], 1 / s[1]]
                     for wk, s in zip((1.0 - p.halo_weight, p.halo_weight), sig)])  # fmt: skip


def _film_arrays(samples: SpraySamples, points: np.ndarray, normals: np.ndarray, aim: np.ndarray,
                 radius: np.ndarray, tree, frame: np.ndarray, label: np.ndarray, n_labels: int, gauss: np.ndarray,
                 flow: float) -> np.ndarray:  # fmt: skip
    """The film sum with numpy arrays over every (sample, point) pair (the fallback where numba is missing, and the
    reference of :mod:`gluecell.pathplan.filmkernel`): (n_labels, n) metres."""
    i, j = _ball_pairs(aim, radius, tree)
    # per-pair arithmetic in float32 (positions are ~1 m, so ~0.1 um resolution): half the memory traffic; the
    # offset r goes into each sample's frame (rows: across, along, axis) in one product: (u h, w h, h)
    f32 = np.float32
    r = points.astype(f32)[j] - samples.tip.astype(f32)[i]
    loc = np.einsum("nk,nlk->nl", r, frame.astype(f32)[i])
    rn = np.einsum("nk,nk->n", r, normals.astype(f32)[j])  # r . n = -cos(incidence) |r|
    ok = (loc[:, 2] > f32(1e-3)) & (rn < 0)  # in front of the nozzle, surface facing it
    i, j, loc, rn = i[ok], j[ok], loc[ok], rn[ok]
    inv_h = f32(1) / loc[:, 2]
    u, w = loc[:, 0] * inv_h, loc[:, 1] * inv_h
    gs = gauss.astype(f32)
    g = sum(gk[0] * np.exp(f32(-0.5) * ((u * gk[1]) ** 2 + (w * gk[2]) ** 2)) for gk in gs)
    rate = (g * -rn * inv_h**3).astype(np.float64) * flow  # cos(inc) |r| / h^3 = -(r . n) / h^3
    key = label[i] * len(points) + j
    wgt = rate * samples.dwell[i]
    return np.bincount(key, weights=wgt, minlength=n_labels * len(points)).reshape(n_labels, len(points))


def sig_max_deg(p: DepositionParams) -> float:
    """Widest footprint sigma, degrees."""
    return float(max(*p.core_sigma_deg, *p.halo_sigma_deg))


def standoffs(tip: np.ndarray, axis: np.ndarray, tree, max_standoff: float,
              radius: float = STANDOFF_RADIUS) -> np.ndarray:  # fmt: skip
    """Distance (k,) metres along each nozzle axis to the first surface point within ``radius`` of the axis
    (a ray cast against the cloud); ``max_standoff`` where the ray hits nothing.

    Sphere tracing: where the nearest cloud point is ``d`` away, no point lies within ``radius`` of the axis
    for the next ``d - radius``, so the ray advances by that (at least 1 mm, the old marching step) in a
    handful of k-d tree queries instead of one per millimetre.
    """
    k = len(tip)
    t = np.full(k, 1e-3)
    out = np.full(k, float(max_standoff))
    live = np.arange(k)
    for _ in range(64):
        if live.size == 0:
            break
        d, _ = tree.query(tip[live] + t[live, None] * axis[live], distance_upper_bound=max_standoff)
        hit = d <= radius
        out[live[hit]] = t[live[hit]]
        step = np.where(np.isfinite(d), np.maximum(np.floor((d - radius) * 1e3) * 1e-3, 1e-3), max_standoff)
        t[live] += step
        live = live[~hit & (t[live] < max_standoff)]
    return out


def coalesce(samples: SpraySamples, h: np.ndarray, spacing_tan: float, step: float) -> tuple[SpraySamples, np.ndarray]:
    """Merge runs of consecutive samples whose sprayed spots (aim points) lie within ``h * spacing_tan`` of each
    other into one (``step``: sample spacing).

    A sum of Gaussian footprints spaced at most one sigma apart along the path is flat to ~1e-8 (Poisson
    summation), so far from the part (wide footprint) fewer, longer pieces give the same film. Returns the
    merged samples (dwell summed; tip, axis, direction dwell-weighted) and their standoffs.
    """
    n = len(h)
    if n < 2:
        return samples, h
    turn = np.einsum("ij,ij->i", samples.along[1:], samples.along[:-1]) < 0.95  # corners, reversals
    tilt = np.einsum("ij,ij->i", samples.axis[1:], samples.axis[:-1]) < 0.995
    # the spacing that matters is that of the sprayed spots (aim points), not of the tips: where the nozzle
    # pivots on the spot (a tight corner) the tip hardly moves while the spray sweeps h * angle across the
    # surface; merging by tip distance piled such a sweep onto one spot (3.6x the film at a sole's heel)
    aim = samples.tip + h[:, None] * samples.axis
    dist = np.linalg.norm(np.diff(aim, axis=0), axis=1)
    gap = (dist > 2.0 * max(step, float(np.median(dist)))) | turn | tilt
    if samples.label is not None:
        gap |= samples.label[1:] != samples.label[:-1]
    run = np.r_[0, np.cumsum(gap)]
    seg = np.r_[0.0, np.where(gap, 0.0, dist)]
    s = np.cumsum(seg)
    s -= np.minimum.reduceat(s, np.r_[0, np.flatnonzero(gap) + 1])[run]
    length = np.maximum(h * spacing_tan, 1e-5)
    cell = np.floor(s / length).astype(np.int64)
    key = np.r_[True, (run[1:] != run[:-1]) | (cell[1:] != cell[:-1])]
    g = np.cumsum(key) - 1
    m = int(g[-1]) + 1
    if m == n:
        return samples, h
    w = samples.dwell
    wsum = np.bincount(g, weights=w, minlength=m)

    def avg(x: np.ndarray) -> np.ndarray:
        return (
            np.column_stack([np.bincount(g, weights=w * x[:, c], minlength=m) for c in range(x.shape[1])])
            / wsum[:, None]
        )

    axis = unit(avg(samples.axis))
    along = avg(samples.along)
    along = unit(along - np.einsum("ij,ij->i", along, axis)[:, None] * axis)
    hm = np.bincount(g, weights=w * h, minlength=m) / wsum
    label = None if samples.label is None else samples.label[np.flatnonzero(key)]
    return SpraySamples(avg(samples.tip), axis, along, wsum, label), hm


def _footprints(samples: SpraySamples, points: np.ndarray, tan_max: float, max_standoff: float,
                surface: np.ndarray, spacing_tan: float, step: float, grid: Any = None) -> tuple[Any, ...]:  # fmt: skip
    """Each sample's footprint, a ball round its aim point on the surface, after merging samples far from the
    part (:func:`coalesce`). Returns (merged samples, aim (k, 3), radius (k,) metres, k-d tree of ``points``, None
    with a ``grid``: then the standoffs are cast in it (:func:`~.filmkernel.cell_grid` of ``points``), compiled).

    The radius, 1.3 x the standoff x the footprint's reach plus 1 mm, is rounded up to whole 3 mm (the array
    version searches every radius class with one tree; the compiled one keeps the same balls)."""
    from scipy.spatial import cKDTree

    if grid is not None:
        tree = None
        sgrid = grid if surface is points else filmkernel.cell_grid(surface, GRID_CELL)
        h = filmkernel.standoffs(sgrid, surface, samples.tip, samples.axis, max_standoff, STANDOFF_RADIUS)
    else:
        tree = cKDTree(points)
        h = standoffs(samples.tip, samples.axis, tree if surface is points else cKDTree(surface), max_standoff)
    samples, h = coalesce(samples, h, spacing_tan, step)
    aim = samples.tip + h[:, None] * samples.axis
    q = 3e-3
    radius = np.ceil((1.3 * h * tan_max + 1e-3) / q).astype(int) * q
    return samples, aim, radius, tree


def _ball_pairs(aim: np.ndarray, radius: np.ndarray, tree) -> tuple[np.ndarray, np.ndarray]:
    """(sample, point) index pairs with the point within ``radius`` of the sample's ``aim`` (k-d trees)."""
    from scipy.spatial import cKDTree

    ii, jj = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for r in np.unique(radius):
        sel = np.flatnonzero(radius == r)
        m = cKDTree(aim[sel]).sparse_distance_matrix(tree, r, output_type="ndarray")
        ii.append(sel[m["i"]])
        jj.append(m["j"].astype(np.int64))
    return np.concatenate(ii), np.concatenate(jj)


def _check_finite(thickness: np.ndarray, signed: np.ndarray, area: np.ndarray) -> None:
    """Raise :class:`NonFiniteError` where the glue beyond the line cannot be judged: a NaN compares False
    (it would read as "no glue there"), and with no evaluated point beyond the line "nothing above" is unknown,
    not zero."""
    for what, x in (("predicted film thickness", thickness), ("signed distance from the line", signed),
                    ("point area", area)):  # fmt: skip
        bad = int(np.sum(~np.isfinite(x)))
        if bad:
            raise NonFiniteError(f"spray metrics: {bad} of {x.size} values of the {what} are NaN/inf; the glue "
                                 "beyond the line cannot be judged (check the scan and the bite line)", what=what)
    if thickness.size and not np.any(signed < 0):
        raise NonFiniteError("spray metrics: no evaluated point lies beyond the line, so the glue beyond it cannot "
                             "be predicted (the scan must show the surface past the line)", what="points beyond")


def spray_metrics(
    thickness: np.ndarray, signed: np.ndarray, band: np.ndarray, area: np.ndarray | float,
    params: DepositionParams | None = None, tolerance_mm: float = 1.0,
) -> dict[str, float]:  # fmt: skip
    """Coverage of the band and glue beyond the boundary from film ``thickness`` (n,) metres.

    Args:
        signed: (n,) metres, signed surface distance from the bite line (< 0 beyond it).
        band: (n,) bool, points that must be covered.
        area: (n,) or scalar m^2 per point.
    Returns:
        coverage (0..1), coverage_1mm (of the band farther than ``tolerance_mm`` from the line: DESIGN.md asks
        glue to reach the line within 1 mm), gap_area_mm2, above_line_mm (max, trace level), above_line_p99_mm,
        above_visible_mm / above_visible_p99_mm (max / p99 distance beyond the line of film >= ``visible_mm``),
        film_mean_mm, film_p05_mm.
    """
    p = params or DepositionParams()
    thickness, signed = np.asarray(thickness, dtype=float), np.asarray(signed, dtype=float)
    area = np.broadcast_to(np.asarray(area, dtype=float), thickness.shape)
    _check_finite(thickness, signed, area)
    cov = thickness >= p.covered_mm * 1e-3
    band_area = float(area[band].sum())
    above = (signed < 0) & (thickness >= p.trace_mm * 1e-3)
    dist_above = -signed[above] * 1e3
    vis = (signed < 0) & (thickness >= p.visible_mm * 1e-3)
    tb = thickness[band] * 1e3
    inner = band & (signed > tolerance_mm * 1e-3)
    inner_area = float(area[inner].sum())
    return {
        "coverage": float(area[band & cov].sum() / band_area) if band_area > 0 else 0.0,
        "coverage_1mm": float(area[inner & cov].sum() / inner_area) if inner_area > 0 else 0.0,
        "gap_area_mm2": float(area[band & ~cov].sum() * 1e6),
        "above_line_mm": float(dist_above.max()) if dist_above.size else 0.0,
        "above_line_p99_mm": float(np.percentile(dist_above, 99)) if dist_above.size else 0.0,
        "above_visible_mm": float(-signed[vis].min() * 1e3) if np.any(vis) else 0.0,
        "above_visible_p99_mm": float(np.percentile(-signed[vis], 99) * 1e3) if np.any(vis) else 0.0,
        "film_mean_mm": float(tb.mean()) if tb.size else 0.0,
        "film_p05_mm": float(np.percentile(tb, 5)) if tb.size else 0.0,
    }
