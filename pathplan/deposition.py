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
8 mm along the bite line, both at 250 mm/s (slow enough that the arm holds it round most of the
shoe). A core cone sigma of 4 deg gives a 2.4 mm footprint sigma at 35 mm (0.56 mm at 8 mm); an 8 %
shoulder of 8 deg models the mist. 0.3 ml/s of wet glue then lays ~0.14 mm on the band with ~9 mm
between passes (FACTS.md: manual layer 0.1-0.3 mm). A spot counts as covered from 0.05 mm wet film
and as glued (visible, e.g. above the bite line) from 0.005 mm (a trace UV inspection would show).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gluecell.core.types import SprayPath

from .geom import matrix_from_quat, unit

__all__ = ["DepositionParams", "path_samples", "film_thickness", "spray_metrics", "SpraySamples"]


@dataclass(frozen=True)
class DepositionParams:
    """Gun and film thresholds (see the module docstring for where each value comes from)."""

    flow_ml_s: float = 0.3
    core_sigma_deg: tuple[float, float] = (4.0, 4.0)
    halo_sigma_deg: tuple[float, float] = (8.0, 8.0)
    halo_weight: float = 0.08
    covered_mm: float = 0.05
    trace_mm: float = 0.005
    step_mm: float = 1.0
    reach_sigmas: float = 3.5

    def __post_init__(self) -> None:
        if not (self.flow_ml_s > 0 and 0 <= self.halo_weight < 1 and self.covered_mm > self.trace_mm > 0):
            raise ValueError("need flow_ml_s > 0, 0 <= halo_weight < 1 and covered_mm > trace_mm > 0")


@dataclass(frozen=True)
class SpraySamples:
    """Dense gun-on samples of a path: tip (k, 3), axis (k, 3), along-path unit (k, 3), dwell (k,) s."""

    tip: np.ndarray
    axis: np.ndarray
    along: np.ndarray
    dwell: np.ndarray


def path_samples(path: SprayPath, step: float = 1e-3) -> SpraySamples:
    """Cut every gun-on segment of ``path`` into pieces of at most ``step`` metres (midpoints, dwell times)."""
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
    return SpraySamples(tip, axis, along, (dt / n)[rep])


def film_thickness(
    samples: SpraySamples, points: np.ndarray, normals: np.ndarray, params: DepositionParams | None = None,
    max_standoff: float = 0.08, surface: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Wet film thickness (n,) metres at ``points`` (n, 3) with outward ``normals`` (n, 3).

    ``surface`` (k, 3) is the whole part's cloud, used to find where each nozzle axis meets the part
    (default: ``points``, which must then cover the sprayed surface).
    """
    p = params or DepositionParams()
    if len(samples.tip) == 0 or len(points) == 0:
        return np.zeros(len(points))
    sig = np.tan(np.deg2rad(np.array([p.core_sigma_deg, p.halo_sigma_deg])))  # (2, 2): across, along
    tan_max = float(np.tan(min(np.deg2rad(sig_max_deg(p)) * p.reach_sigmas, 1.3)))
    i, j = _pairs(samples, points, tan_max, max_standoff, points if surface is None else surface)
    r = points[j] - samples.tip[i]
    h = np.einsum("ij,ij->i", r, samples.axis[i])
    dist = np.linalg.norm(r, axis=1)
    ci = -np.einsum("ij,ij->i", r, normals[j]) / np.maximum(dist, 1e-9)
    ok = (h > 1e-3) & (ci > 0)
    i, j, r, h, dist, ci = i[ok], j[ok], r[ok], h[ok], dist[ok], ci[ok]
    across = np.cross(samples.axis, samples.along)[i]
    u = np.einsum("ij,ij->i", r, across) / h
    w = np.einsum("ij,ij->i", r, samples.along[i]) / h
    wts = (1.0 - p.halo_weight, p.halo_weight)
    g = sum(
        wk / (2 * np.pi * s[0] * s[1]) * np.exp(-0.5 * ((u / s[0]) ** 2 + (w / s[1]) ** 2)) for wk, s in zip(wts, sig)
    )
    rate = p.flow_ml_s * 1e-6 * g * ci * dist / h**3
    return np.bincount(j, weights=rate * samples.dwell[i], minlength=len(points)).astype(np.float64)


def sig_max_deg(p: DepositionParams) -> float:
    """Widest footprint sigma, degrees."""
    return float(max(*p.core_sigma_deg, *p.halo_sigma_deg))


def standoffs(tip: np.ndarray, axis: np.ndarray, tree, max_standoff: float, radius: float = 2.5e-3) -> np.ndarray:
    """Distance (k,) metres along each nozzle axis to the first surface point within ``radius`` of the axis
    (a ray cast against the cloud); ``max_standoff`` where the ray hits nothing."""
    steps = np.arange(1e-3, max_standoff, 1e-3)
    q = tip[:, None, :] + steps[None, :, None] * axis[:, None, :]
    d, _ = tree.query(q.reshape(-1, 3), distance_upper_bound=radius)
    hit = np.isfinite(d).reshape(len(tip), len(steps))
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), steps[first], max_standoff)


def _pairs(samples: SpraySamples, points: np.ndarray, tan_max: float, max_standoff: float,
           surface: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """(sample, point) index pairs within each sample's footprint: a ball round its aim point on the surface."""
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    h = standoffs(samples.tip, samples.axis, tree if surface is points else cKDTree(surface), max_standoff)
    aim = samples.tip + h[:, None] * samples.axis
    r = 1.3 * h * tan_max + 1e-3
    q = 3e-3
    grp = np.ceil(r / q).astype(int)
    ii, jj = [], []
    for g in np.unique(grp):
        sel = np.flatnonzero(grp == g)
        m = cKDTree(aim[sel]).sparse_distance_matrix(tree, g * q, output_type="ndarray")
        ii.append(sel[m["i"]])
        jj.append(m["j"])
    return np.concatenate(ii), np.concatenate(jj)


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
        glue to reach the line within 1 mm), gap_area_mm2, above_line_mm (max), above_line_p99_mm,
        film_mean_mm, film_p05_mm.
    """
    p = params or DepositionParams()
    area = np.broadcast_to(np.asarray(area, dtype=float), thickness.shape)
    cov = thickness >= p.covered_mm * 1e-3
    band_area = float(area[band].sum())
    above = (signed < 0) & (thickness >= p.trace_mm * 1e-3)
    dist_above = -signed[above] * 1e3
    tb = thickness[band] * 1e3
    inner = band & (signed > tolerance_mm * 1e-3)
    inner_area = float(area[inner].sum())
    return {
        "coverage": float(area[band & cov].sum() / band_area) if band_area > 0 else 0.0,
        "coverage_1mm": float(area[inner & cov].sum() / inner_area) if inner_area > 0 else 0.0,
        "gap_area_mm2": float(area[band & ~cov].sum() * 1e6),
        "above_line_mm": float(dist_above.max()) if dist_above.size else 0.0,
        "above_line_p99_mm": float(np.percentile(dist_above, 99)) if dist_above.size else 0.0,
        "film_mean_mm": float(tb.mean()) if tb.size else 0.0,
        "film_p05_mm": float(np.percentile(tb, 5)) if tb.size else 0.0,
    }
