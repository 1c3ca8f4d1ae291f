"""Measure what really happened when the sole was pressed on: the actual bite line and the sole's deformation.

Inputs are two scans a real cell has after the press: the free sole (footbed up at the sole station, taken
before pressing) and the attached pair (at the upper station, the sole on top). The free sole's scan is
registered onto the attached one (:mod:`.nonrigid`: rigid flip + ICP on the outer wall, then CPD), and:

- the **actual bite line** is the sole's top inner edge (where the rim's top meets the inner wall, measured
  on the free scan per outline station: a virtual corner of the rim plane and a line fitted to the top of
  the inner wall), carried through the registration onto the attached pair; the rim edge sits on the upper;
- the **deformed sole** is every free-sole point carried through the registration;
- **confidence** per point (0..1) says how directly the attached scan supports it: the kernel-weighted share
  of fitted outer-wall points near it that found data, times a penalty for the fit residual there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gluecell.core.types import PartScan

from .attach_pose import closed_resample
from .errors import MeasureError
from .nonrigid import check_cloud
from .profiles import ring_outliers
from .sections import fill_invalid, outline_frame, smooth_closed, station_angles, wedge_members
from .sole_registration import RegistrationConfig, SoleRegistration, register_sole

__all__ = ["MeasureConfig", "Measured", "measure_attached", "rim_edge", "measured_to_plan", "snap_to_upper"]


@dataclass(frozen=True)
class MeasureConfig:
    """Settings of :func:`measure_attached` (metres).

    Attributes:
        registration: the non-rigid registration.
        n_stations: outline stations of the rim measurement.
        wall_fit_band: (lo, hi) depth below the rim top of the inner-wall points the edge line is fitted on.
        min_station_points: fewest inner-wall / rim-top points a station needs.
        min_valid_fraction: share of stations with a rim measurement below which it is a :class:`MeasureError`.
        outlier_tol: stations farther than this from a 12-harmonic ring through the others are dropped (as
            the predictor's sections do).
        rim_top_percentile: percentile of the rim top's uppermost cluster taken as its height. The scan's voxel
            means round the rim's edges down, so the median read the rim ~0.5 mm low; 90 halved the bite
            line's height bias on the val split of d9001 (0.69 -> 0.40 mm; 75: 0.50 mm).
        snap_radius_m: radius of the upper's patch the bite point is snapped onto (:func:`snap_to_upper`);
            0 turns the snap off. sole_clearance_m: attached points farther than this from the registered
            sole are the upper's (twice the fit's ~0.6 mm surface error).
        harmonics: Fourier terms kept when smoothing the rim ring (24: features of ~14 mm, as the predictor).
        spacing: bite-line spacing (<= 1 mm, the plan contract).
        confidence_residual_m: fit residual at which the confidence halves (sensor noise x 2, FACTS.md).
    """

    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    n_stations: int = 128
    wall_fit_band: tuple[float, float] = (0.001, 0.008)
    min_station_points: int = 4
    min_valid_fraction: float = 0.6
    harmonics: int = 24
    rim_top_percentile: float = 90.0
    outlier_tol: float = 3.0e-3
    snap_radius_m: float = 0.006
    sole_clearance_m: float = 0.0012
    spacing: float = 0.8e-3
    confidence_residual_m: float = 0.6e-3


@dataclass(frozen=True)
class Measured:
    """The measured attach (upper station, ``base_link``, metres).

    Attributes:
        bite_line: (m, 3) closed, ordered polyline, spacing <= ``MeasureConfig.spacing``.
        bite_confidence: (m,) 0..1 per bite-line point.
        deformed_sole: (n, 3) free-sole scan points after pressing (same order as the free scan).
        displacement: (n, 3) non-rigid part of their motion (after the rigid pose).
        confidence: (n,) 0..1 per deformed-sole point.
        registration: the registration behind it.
        rim_valid_fraction: share of outline stations where the rim edge was measured on the free scan.
    """

    bite_line: np.ndarray
    bite_confidence: np.ndarray
    deformed_sole: np.ndarray
    displacement: np.ndarray
    confidence: np.ndarray
    registration: SoleRegistration
    rim_valid_fraction: float


def _station_edge(P: np.ndarray, N: np.ndarray, e: np.ndarray, cfg: MeasureConfig) -> np.ndarray | None:
    """Rim inner edge of one wedge (3,) or None: virtual corner of the rim top and the inner wall's top.

    Offsets ``s`` are along the outline normal ``e`` (plan, outward) from the wedge's inner-wall centroid.
    """
    inner = ((N[:, :2] @ e) < -0.25) & (np.abs(N[:, 2]) < 0.8)
    if inner.sum() < cfg.min_station_points:
        return None
    c = P[inner, :2].mean(axis=0)
    s = (P[:, :2] - c) @ e
    s_in = float(np.median(s[inner]))
    top = (N[:, 2] > 0.7) & (s > s_in - 0.003) & (s < s_in + 0.008)
    if top.sum() < cfg.min_station_points:
        return None
    z_top = P[top, 2]
    h = float(np.percentile(z_top[z_top > np.percentile(z_top, 90) - 0.0015], cfg.rim_top_percentile))
    band = inner & (P[:, 2] > h - cfg.wall_fit_band[1]) & (P[:, 2] < h - cfg.wall_fit_band[0])
    if band.sum() < cfg.min_station_points:
        return None
    z, sw = P[band, 2], s[band]
    if np.ptp(z) > 0.002:
        b, a = np.polyfit(z, sw, 1)
        b = float(np.clip(b, -1.0, 1.0))  # walls lean by well under 45 degrees
        a = float(np.median(sw - b * z))
    else:
        b, a = 0.0, float(np.median(sw))
    return np.array([*(c + (a + b * h) * e), h])


def rim_edge(points: np.ndarray, normals: np.ndarray, cfg: MeasureConfig | None = None) -> tuple[np.ndarray, float]:
    """The free sole's top inner edge (the line that will sit on the upper), sole station.

    Args:
        points: (n, 3) float64 free sole scan, footbed up, metres, base_link. normals: (n, 3) unit, outward.
        cfg: settings.

    Returns:
        ((K, 3) closed ring, ordered round the outline, metres; share of stations measured).

    Raises:
        MeasureError: the rim was found at too few stations.
    """
    cfg = cfg or MeasureConfig()
    frame = outline_frame(points)
    theta, _ = frame.polar(points)
    th_k = station_angles(cfg.n_stations)
    dirs = frame.normal(th_k)
    ring = np.full((cfg.n_stations, 3), np.nan)
    for k, idx in enumerate(wedge_members(theta, cfg.n_stations, 1.5)):
        if len(idx) >= cfg.min_station_points:
            edge = _station_edge(points[idx], normals[idx], dirs[k], cfg)
            if edge is not None:
                ring[k] = edge
    valid = np.all(np.isfinite(ring), axis=1)
    # a station that read the wall or a fold for the rim (boot toes) is far off its neighbours' ring
    valid &= ~ring_outliers(th_k, np.where(valid[:, None], ring, 0.0), valid, cfg.outlier_tol)
    frac = float(valid.mean())
    if frac < cfg.min_valid_fraction:
        raise MeasureError(
            f"the sole's rim edge was measured at only {frac:.0%} of the outline (< {cfg.min_valid_fraction:.0%}): "
            "rescan the free sole",
            stage="deformation",
            rim_valid_fraction=frac,
        )
    return smooth_closed(fill_invalid(th_k, ring, valid), cfg.harmonics), frac


def snap_to_upper(
    ring: np.ndarray, points: np.ndarray, normals: np.ndarray, sole: np.ndarray, cfg: MeasureConfig
) -> np.ndarray:
    """Move each bite point across the upper's side onto the upper's surface seen just under the sole.

    The bite line lies on the upper. The registration places it to within the rim's read width (1-4 mm
    sideways at some stations); the attached scan shows the upper's side right under the sole's rim (the
    cameras look down past the rim, so it is seen to within ~0.5 mm of the junction). Attached points more
    than ``sole_clearance_m`` from the registered sole are the upper's; the bite point moves along the
    horizontal part of their local plane normal onto that plane (its height, from the registration, stays).

    Args:
        ring: (K, 3) bite points (upper station). points, normals: (N, 3) attached scan. sole: (n, 3) the
            registered (deformed) sole. cfg: radii.

    Returns:
        (K, 3) moved points (unchanged where fewer than ``min_station_points`` upper points are near).
    """
    from scipy.spatial import cKDTree

    upper = cKDTree(sole).query(points)[0] > cfg.sole_clearance_m
    P, N = points[upper], normals[upper]
    out = ring.copy()
    if len(P) < cfg.min_station_points:
        return out
    for k, idx in enumerate(cKDTree(P).query_ball_point(ring, cfg.snap_radius_m)):
        idx = np.asarray(idx, dtype=np.int64)
        idx = idx[(P[idx, 2] < ring[k, 2] + 0.5e-3)] if len(idx) else idx
        if len(idx) < cfg.min_station_points:
            continue
        n = N[idx].mean(axis=0)
        n[2] = 0.0
        if np.linalg.norm(n) < 0.3:  # not a side wall here
            continue
        n /= np.linalg.norm(n)
        out[k] -= float((ring[k] - P[idx].mean(axis=0)) @ n) * n
    return out


def _confidence(reg: SoleRegistration, cfg: MeasureConfig, *queries: np.ndarray) -> list[np.ndarray]:
    """Per query (n, 3): (n,) 0..1, data support of the fit near each point x a penalty for the fit's residual there.

    Uses the fitted outer-wall point nearest to each query point: how much data it explained (its CPD
    responsibility ``p1``, relative to the 90th percentile), a Gaussian of the distance in kernel widths
    (the field is an interpolation farther away), and its residual to the attached scan (halving the
    confidence every ``confidence_residual_m``). Points the cameras cannot see (the footbed, the rim edge)
    get the confidence of the wall that carries them.
    """
    from scipy.spatial import cKDTree

    fit_pts = reg.deformed[reg.fitted]
    p1 = reg.cpd.p1
    seen_cpd = np.clip(p1 / max(float(np.percentile(p1, 90)), 1e-12), 0.0, 1.0) if p1.any() else np.ones(len(p1))
    # p1 belongs to the CPD's thinned points: carry it to every fitted point by its nearest thinned one
    seen = seen_cpd[cKDTree(reg.cpd.points).query(reg.rigid_points[reg.fitted])[1]]
    tree, resid_fit = cKDTree(fit_pts), reg.residual_m[reg.fitted]
    out = []
    for q in queries:
        d, j = tree.query(q)
        support = seen[j] * np.exp(-0.5 * (d / reg.cpd.beta_m) ** 2)
        out.append(np.clip(support * 0.5 ** (resid_fit[j] / cfg.confidence_residual_m), 0.0, 1.0))
    return out


def measure_attached(
    attached_scan: PartScan,
    free_sole_scan: PartScan,
    cfg: MeasureConfig | None = None,
    *,
    tray_plane: np.ndarray | None = None,
) -> Measured:
    """Measure the actual bite line and the sole's deformation from the scans after pressing.

    Args:
        attached_scan: the attached pair at the upper station (points + outward normals, base_link).
        free_sole_scan: the same sole free, footbed up at the sole station (points + normals).
        cfg: settings.
        tray_plane: (4,) ``[nx, ny, nz, d]`` the sole station's tray; default: the last support plane
            perception fitted under the free sole (``free_sole_scan.diagnostics["support_planes"]``), else
            level under its lowest point (see :class:`~gluecell.deformation.nonrigid.RegistrationConfig`).

    Returns:
        the measured bite line (closed, <= 0.8 mm spacing), deformed sole and per-point confidence.

    Raises:
        NonFiniteScanError, TooFewPointsError: bad scans (NaN, too few points, no normals).
        RegistrationError: the sole does not fit the attached pair. MeasureError: no rim found.
    """
    cfg = cfg or MeasureConfig()
    for scan in (attached_scan, free_sole_scan):
        check_cloud(f"{scan.part} scan", scan.points)
        if scan.normals is None:
            raise MeasureError(f"{scan.part} scan has no normals", stage="deformation")
    if tray_plane is None and free_sole_scan.diagnostics.get("support_planes"):
        tray_plane = np.asarray(free_sole_scan.diagnostics["support_planes"][-1], dtype=np.float64)
    reg = register_sole(
        free_sole_scan.points,
        free_sole_scan.normals,
        attached_scan.points,
        attached_scan.normals,
        cfg.registration,
        tray_plane=tray_plane,
    )
    ring, frac = rim_edge(free_sole_scan.points, free_sole_scan.normals, cfg)
    rim = reg.apply(ring)
    if cfg.snap_radius_m > 0:
        rim = smooth_closed(
            snap_to_upper(rim, attached_scan.points, attached_scan.normals, reg.deformed, cfg), cfg.harmonics
        )
    line = closed_resample(rim, cfg.spacing)
    bite_conf, sole_conf = _confidence(reg, cfg, line, reg.deformed)
    return Measured(
        bite_line=line,
        bite_confidence=bite_conf,
        deformed_sole=reg.deformed,
        displacement=reg.displacement,
        confidence=sole_conf,
        registration=reg,
        rim_valid_fraction=frac,
    )


def measured_to_plan(m: Measured, *, timing_ms: dict[str, float] | None = None) -> object:
    """A :class:`gluecell.core.plan.Plan` (``gluecell.plan/1``) holding the measured bite line, no paths.

    Extra keys: ``measured`` (format ``gluecell.measured/1``: bite confidence, deformed sole, confidence,
    registration diagnostics).
    """
    from gluecell.core.plan import Plan

    reg = m.registration
    extra = {
        "measured": {
            "format": "gluecell.measured/1",
            "bite_confidence": np.round(m.bite_confidence, 4).tolist(),
            "deformed_sole": np.round(m.deformed_sole, 7).tolist(),
            "confidence": np.round(m.confidence, 4).tolist(),
            "rim_valid_fraction": round(m.rim_valid_fraction, 4),
            "rigid_rms_m": round(reg.rigid_rms_m, 7),
            "cpd_sigma_m": round(reg.cpd.sigma_m, 7),
            "cpd_iterations": reg.cpd.iterations,
            "cpd_converged": reg.cpd.converged,
            "T_rigid": np.round(reg.T_rigid, 9).tolist(),
        }
    }
    return Plan(bite_line=m.bite_line, paths=(), timing_ms=timing_ms or {}, extra=extra)
