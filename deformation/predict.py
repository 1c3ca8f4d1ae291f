"""Predict the attach of one pair: scans in, :class:`~gluecell.core.types.AttachPrediction` out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.core.types import AttachPrediction, PartScan

from .attach_pose import AttachPose, find_attach_pose
from .biteline import sole_bonds_and_deformed, surface_polyline, upper_bond_region
from .calibration import DepthCalibration
from .errors import LowConfidenceError, SolverError
from .inputs import check_size, check_upper_scan, section_pair
from .material import Material, UpperContact, get_material
from .parallel import MISS, beside, lookup_check, sole_prefetch
from .pose_given import given_attach_pose
from .profiles import SoleSections, UpperSections
from .reference import augment_with_reference
from .sections import fill_invalid, periodic_interp, smooth_closed
from .sigma_terms import line_sigma, term_matrix
from .solver import RingResult, outline_normals, solve_ring, station_sides
from .surrogate import RingProblem, Surrogate, SurrogateOutOfDistribution
from .taught import TaughtPair, moved_line, register_taught_line

__all__ = [
    "PredictConfig",
    "predict_attach",
    "ring_problem",
    "StationSolution",
    "solve_stations",
    "BITE_HARMONICS",
    "DEPTH_HARMONICS",
]

#: Sides seen deep enough at fewer stations than this share: refuse (metres of side are not guessed).
MIN_SIDE_SEEN = 0.25
#: Extra sigma per radian (normalised outline angle) of distance to the nearest station with a seen side.
GAP_SIGMA_PER_RAD = 0.5e-3
#: Fourier terms kept of the per-station bite points (features down to 1/64 of the perimeter, ~10 mm).
BITE_HARMONICS = 32
#: Fourier terms kept of the bite depth and the corner ring it hangs from (features down to ~20 mm; 8 terms
#: rounded the knee where the wall height steps at the heel counter, 24 let more noise through).
DEPTH_HARMONICS = 16
#: Farthest a station's bite point is moved onto the upper's surface, metres. On a scan, a point further from
#: every scan point lies over surface the cameras did not see (it would land on some other face); on the
#: registered reference (complete) the interpolated side offsets at the heel's high-curvature stations put
#: points 6-7 mm off the surface, which the 6 mm reach left there (the worst errors on the world's train pairs).
PARTIAL_SURFACE_REACH = 6e-3
COMPLETE_SURFACE_REACH = 15e-3
#: Thinnest plausible cup-sole wall, metres (FACTS.md has no figure; the world's walls are 2.5-6 mm, a moulded
#: wall under 1 mm would tear): thinner readings are replaced by the pair's median.
MIN_WALL = 1.0e-3
#: Wall thickness used when no station's outer wall was seen, metres (mid-range of typical cup soles, chosen).
DEFAULT_WALL = 4.0e-3
#: 1-sigma share of the rim's pull-down (height x nu x hoop strain) at a station whose wall thickness was
#: substituted (chosen: the world's walls span 2.5-6 mm, a factor ~2 in the ring's stiffness, about 50 % in
#: the strain it settles at).
WALL_FALLBACK_SIGMA = 0.5


@dataclass(frozen=True)
class PredictConfig:
    """Settings of the reference predictor.

    Attributes:
        n_stations: stations round the outline (128: about 5 mm apart on an EU 42 outline; each wedge spans 2.5).
        spacing: bite-line point spacing, metres (<= 1 mm by contract).
        min_valid: fewest share of stations that must be measured on each part.
        strain_range: allowed perimeter strain (upper outline / sole footbed outline - 1). A sole more than
            ~1 % too large leaves > 1 mm gaps (FACTS.md: a maker flags gaps > 1 mm), but the two virtual-corner
            outlines of sparse ~1 mm scans differ by -2 +- 1 % on the world's pairs (measured), so the lower
            bound is -5 %: this check catches a sole two or more sizes off (one EU size is 2.2 % of length),
            not one. Above 8 % it is not this upper's size (FACTS.md has no undersize figure).
        max_sigma: p95 of the per-point 1-sigma above which the prediction is refused (metres).
        sensor_sigma: floor of the per-point uncertainty from the scans, metres (FACTS.md, D405 at 200 mm 0.4 mm
            per pixel, averaged over ~16 points and several views).
        reference_replaces_scan: with a nominal upper given, section the registered reference (clean surface at
            this upper's pose) instead of the scan filled by it (``augment_with_reference(replace=...)``).
    """

    n_stations: int = 128
    spacing: float = 0.8e-3
    min_valid: float = 0.75
    strain_range: tuple[float, float] = (-0.05, 0.08)
    max_sigma: float = 1.0e-3
    sensor_sigma: float = 0.1e-3
    reference_replaces_scan: bool = True


@dataclass(frozen=True)
class StationSolution:
    """Per upper-station result (K rows)."""

    bite: np.ndarray  # (K, 3) bite points in the section plane (before projection onto the scan)
    sigma: np.ndarray  # (K,) metres
    wall_len: np.ndarray  # (K,) matched sole wall length, free state
    ring: RingResult
    seen: np.ndarray  # (K,) bool: the upper's side was seen at this station
    depth: np.ndarray  # (K,) bite depth below the virtual corner along n_b, metres
    matched: dict  # sole quantities at each upper station (``_match_sole``)
    slope: np.ndarray  # (K,) |d depth / d outline length| at each station, dimensionless
    #: (K,) metres: uncertainty of the fallbacks (interpolated side, substituted wall thickness) at each station;
    #: added in quadrature *after* the calibration's sigma model, which never saw it.
    fallback_sigma: np.ndarray | None = None
    #: what fell back and where (``predict_attach`` copies it into ``diagnostics["fallbacks"]``)
    fallbacks: dict | None = None


def _match_sole(upper: UpperSections, sole: SoleSections, pose: AttachPose) -> dict[str, np.ndarray]:
    """Sole quantities at the point of the sole's footbed outline that lands on each upper station.

    The upper's corners are taken back into the sole station by the attach pose and matched to the nearest
    point of the sole's own corner ring (a ray from the sole's centre would cross the ring obliquely near the
    heel and slide the match along it).
    """
    from scipy.spatial import cKDTree

    cu = fill_invalid(upper.theta, upper.corner, upper.valid)
    back = pose.inverse(cu)
    ok = sole.valid
    ring = smooth_closed(fill_invalid(sole.theta, sole.corner, ok))
    fine = np.linspace(-np.pi, np.pi, 16 * len(sole.theta), endpoint=False)
    dense = periodic_interp(fine, sole.theta, ring)
    _, j = cKDTree(dense[:, :2]).query(back[:, :2])
    th = fine[j]
    out = {}
    for name in ("corner", "height", "wall_len", "thickness", "resid", "body"):
        vals = getattr(sole, name)
        good = ok & np.all(np.isfinite(vals.reshape(len(vals), -1)), axis=1)
        if not good.any():
            if name == "thickness":  # no station saw the outer wall: solve_stations substitutes DEFAULT_WALL
                out[name] = np.full(len(th), np.nan)
                continue
            raise SolverError(f"no station of the sole scan shows its {name}: rescan the sole", stage="deformation")
        out[name] = periodic_interp(th, sole.theta[good], vals[good])
    out["theta"] = th
    return out


def solve_stations(
    upper: UpperSections,
    sole: SoleSections,
    pose: AttachPose,
    material: Material,
    contact: UpperContact,
    depth_offset: float | np.ndarray = 0.0,
    ring_fn: Callable[..., RingResult] | None = None,
) -> StationSolution:
    """Ring + meridional solution at every upper station (invalid stations filled from neighbours).

    ``ring_fn`` replaces :func:`~.solver.solve_ring` (same arguments, e.g. the learnt surrogate's
    :meth:`~.surrogate.Surrogate.ring_fn`); None = the FE solver.
    """
    m = _match_sole(upper, sole, pose)
    cu = smooth_closed(fill_invalid(upper.theta, upper.corner, upper.valid))
    cs = smooth_closed(m["corner"])
    rest = np.linalg.norm(np.roll(cs, -1, axis=0) - cs, axis=1)
    h = m["height"]
    # A wall thinner than MIN_WALL is a misread (outer face not seen): a negative stiffness is not physics.
    t_ok = np.isfinite(m["thickness"]) & (m["thickness"] > MIN_WALL)
    t = np.where(t_ok, m["thickness"], np.median(m["thickness"][t_ok]) if t_ok.any() else DEFAULT_WALL)
    fallbacks: dict[str, Any] = {"wall_thickness_substituted": int((~t_ok).sum()),
                                 "wall_thickness_default": bool(not t_ok.any())}  # fmt: skip
    # Thickness was measured along the section ray; the wall's own thickness is across the outline.
    radial = cu[:, :2] - upper.frame.centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    t = t * np.abs(np.sum(radial * outline_normals(cu[:, :2]), axis=1))
    EA = material.E * t * 0.5 * (h + np.roll(h, -1))
    ring = (ring_fn or solve_ring)(cu[:, :2], rest, EA, h, contact)
    # Wall height and the bottom's level vary slowly round a shoe (heel rise, toe spring, sidewall design);
    # per-station scan noise does not: low-pass them harder than the plan shape. (A running median that
    # keeps the heel counter's step in the wall height measured worse on the world's training pairs.)
    depth = smooth_closed(m["height"] * (1.0 - material.nu * ring.strain), DEPTH_HARMONICS) + depth_offset
    n_b = fill_invalid(upper.theta, upper.n_b, upper.valid)
    e1 = fill_invalid(upper.theta, upper.e1, upper.valid)
    s_side = np.full(len(cu), np.nan)
    full = np.flatnonzero(upper.full)
    s_side[full] = station_sides(upper.profile[full], depth[full])  # NaN: the side does not reach the depth
    failed = int(np.isnan(s_side[full]).sum())  # those are interpolated, sigma widened
    placed = np.isfinite(s_side)
    fallbacks.update(side_seen_fraction=float(placed.mean()), side_solver_failures=failed,
                     side_interpolated_stations=int((~placed).sum()))  # fmt: skip
    if placed.mean() < MIN_SIDE_SEEN:
        raise SolverError(
            f"the upper's side is seen deep enough at only {placed.mean():.0%} of the outline: rescan",
            stage="deformation", fallbacks=fallbacks,
        )  # fmt: skip
    # Where the scan does not show the side (toe and heel seen from above) its offset is interpolated.
    s_side = fill_invalid(upper.theta, s_side, placed)
    raw = smooth_closed(cu, DEPTH_HARMONICS) + s_side[:, None] * e1 - depth[:, None] * n_b
    bite = smooth_closed(raw, BITE_HARMONICS)
    # Scatter of the stations about the smoothed line estimates the measurement noise left in it.
    dev = np.linalg.norm(raw - bite, axis=1)
    local = sum(np.roll(dev, i) for i in range(-3, 4)) / 7.0
    gap = _gap_penalty(placed, per_station=GAP_SIGMA_PER_RAD * 2 * np.pi / len(placed))
    sig_mat = m["wall_len"] * np.abs(ring.strain) * material.nu_sigma
    sigma = np.sqrt(local**2 / 2 + sig_mat**2)
    # A substituted wall thickness sets the ring's stiffness, so the strain and the depth it pulls the rim down
    # by are known only to WALL_FALLBACK_SIGMA of that pull.
    sig_wall = np.where(t_ok, 0.0, WALL_FALLBACK_SIGMA * np.abs(h * material.nu * ring.strain))
    fallback_sigma = np.sqrt(gap**2 + sig_wall**2)
    # Depth change per metre of outline: where the wall height steps (the heel counter's knee) a small error in
    # where the sole's stations land on the upper's moves the bite line by this slope times that error.
    ring_s = smooth_closed(cu, DEPTH_HARMONICS)
    ds = np.linalg.norm(np.roll(ring_s, -1, axis=0) - np.roll(ring_s, 1, axis=0), axis=1)
    slope = np.abs(np.roll(depth, -1) - np.roll(depth, 1)) / np.maximum(ds, 1e-9)
    return StationSolution(
        bite=bite, sigma=sigma, wall_len=m["wall_len"], ring=ring, seen=placed, depth=depth, matched=m, slope=slope,
        fallback_sigma=fallback_sigma, fallbacks=fallbacks,
    )  # fmt: skip


def _ring_with_fallback(surrogate: Surrogate | None) -> tuple[Callable[..., RingResult], dict[str, Any]]:
    """A ring solver that uses ``surrogate`` inside its training distribution and the FE solver elsewhere.

    Returns the function and a dict whose ``"state"`` becomes ``"none"``, ``"used"`` or ``"fallback: <reason>"``
    and whose ``"ring_ms"`` is the time of the ring stage.
    """
    state: dict[str, Any] = {"state": "none"}

    def ring(*args: Any) -> RingResult:
        t0 = time.perf_counter()
        try:
            if surrogate is None:
                return solve_ring(*args)
            try:
                out = surrogate.ring_fn(*args)
            except SurrogateOutOfDistribution as exc:
                state["state"] = f"fallback: {exc}"
                return solve_ring(*args)
            state["state"] = "used"
            return out
        finally:
            state["ring_ms"] = (time.perf_counter() - t0) * 1e3

    return ring, state


def ring_problem(
    upper: PartScan,
    sole: PartScan,
    *,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    cfg: PredictConfig | None = None,
    sole_reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> RingProblem:
    """The ring problem (:class:`~.surrogate.RingProblem`) of one pair, as the solver sees it (training data)."""
    cfg = cfg or PredictConfig()
    if reference is not None:
        check_upper_scan(upper)
        upper, _ = augment_with_reference(upper, *reference, replace=cfg.reference_replaces_scan)
    us, ss = section_pair(upper, sole, cfg, sole_reference)
    pose = find_attach_pose(us, ss)
    check_size(us, ss, cfg, upper.item_id)
    mat = get_material(None)
    seen: dict[str, RingProblem] = {}

    def record(X: np.ndarray, rest: np.ndarray, EA: np.ndarray, h: np.ndarray, contact: UpperContact) -> RingResult:
        seen["p"] = RingProblem(X=X.copy(), rest=rest.copy(), area=EA / mat.E, height=h.copy())
        return solve_ring(X, rest, EA, h, contact)

    solve_stations(us, ss, pose, mat, UpperContact(), ring_fn=record)
    return seen["p"]


def _taught_line(
    taught: TaughtPair,
    upper: PartScan,
    us: UpperSections,
    sol: StationSolution,
    model: tuple[Material, UpperContact, PredictConfig, Callable[..., RingResult], DepthCalibration | None],
    refs: tuple[tuple[np.ndarray, np.ndarray] | None, tuple[np.ndarray, np.ndarray] | None],
    style: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """The taught line moved by the model's mean depth change from the taught pair (see :mod:`.taught`).

    The taught pair is of the same style: its learnt style offset is the same as this pair's and cancels.
    """
    mat, contact, cfg, ring_fn, cal = model
    mat_t = get_material(taught.material) if taught.material is not None else mat
    offset_t = cal.offset(mat_t.name, style) if cal is not None else 0.0
    key = (mat_t.name, offset_t, refs[0] is not None, refs[1] is not None)
    if key not in taught.cache:
        up, so = taught.scans()
        if refs[0] is not None:
            up, _ = augment_with_reference(up, *refs[0], replace=cfg.reference_replaces_scan)
        us_t, ss_t = section_pair(up, so, cfg, refs[1])
        pose_t = find_attach_pose(us_t, ss_t)
        sol_t = solve_stations(us_t, ss_t, pose_t, mat_t, contact, depth_offset=offset_t, ring_fn=ring_fn)
        taught.cache[key] = (us_t.theta, sol_t.depth)
    th_t, d_t = taught.cache[key]
    diff = sol.depth - periodic_interp(us.theta, th_t, d_t)
    shift = float(np.mean(diff))
    line0, rms = register_taught_line(taught, upper)
    line, sigma = moved_line(line0, shift, us, upper, sol.sigma, cfg.spacing)
    return line, sigma, {"taught_shift_m": shift, "taught_registration_rms_m": rms}


def _gap_penalty(valid: np.ndarray, per_station: float) -> np.ndarray:
    """Extra sigma at stations filled by interpolation: grows with the distance to a measured station."""
    K = len(valid)
    idx = np.flatnonzero(valid)
    k = np.arange(K)
    dist = np.min(np.abs(((k[:, None] - idx[None, :]) + K // 2) % K - K // 2), axis=1)
    return dist * per_station


def predict_attach(
    upper: PartScan,
    sole: PartScan,
    *,
    material: str | Material | None = None,
    contact: UpperContact | None = None,
    cfg: PredictConfig | None = None,
    check_confidence: bool = True,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    calibration: DepthCalibration | None = None,
    surrogate: Surrogate | None = None,
    sole_reference: tuple[np.ndarray, np.ndarray] | None = None,
    taught: TaughtPair | None = None,
    style: str | None = None,
    attach_pose: np.ndarray | None = None,
) -> AttachPrediction:
    """Predict the bite line, bond regions and deformed sole of one pair with the reference solver.

    Args:
        upper: lasted upper, bottom up at the upper station (``base_link``, with normals).
        sole: sole in its free state, footbed up at the sole station (``base_link``, with normals).
        material: "eva", "rubber", "pu", "tpu" or None (unknown: wider uncertainty).
        contact: the upper's foundation (default :class:`UpperContact`).
        cfg: predictor settings.
        check_confidence: raise :class:`LowConfidenceError` when the uncertainty is over ``cfg.max_sigma``.
        reference: optional (points, normals) (m, 3) of the style's nominal upper (any placement near the
            station); fills the overhangs the cameras do not see (:mod:`.reference`).
        calibration: learnt depth offset and sigma scale (:mod:`.calibration`); None = the pure solver.
        sole_reference: optional (points, normals) (m, 3) of the style's nominal sole, footbed up near the sole
            station: the wall-height profile is read from it, the scan sets its level (:mod:`.sole_reference`).
        taught: optional taught pair of the style (:mod:`.taught`): the taught line, registered onto this
            upper and moved by the model's mean depth change from the taught pair to this one.
        surrogate: learnt ring solver (:mod:`.surrogate`), used where its input is inside its training
            distribution; otherwise the FE solver runs and ``diagnostics["surrogate"]`` says why.
        style: the work item's style ("sneaker", ...): selects the calibration's learnt style offset, if any.
        attach_pose: optional (4, 4) rigid sole station -> upper station transform (base_link) of where the press
            puts the sole; replaces the outline ICP's estimate (:mod:`.pose_given`; the error budget's true pose).

    Raises:
        ScanInputError subclasses for bad scans, SizeMismatchError, AttachPoseError, LowConfidenceError.
    """
    cfg = cfg or PredictConfig()
    contact = contact or UpperContact()
    mat = get_material(material)
    t0 = time.perf_counter()
    ref_rms = None
    scan = upper
    # the sole reference's ICP on the other core; with a reference, the scans' checks there too (beside this ICP)
    with sole_prefetch(sole, cfg.n_stations, sole_reference, upper=upper if reference is not None else None):
        if reference is not None:
            check = lookup_check("upper", upper)
            if check is MISS:
                check_upper_scan(upper)
            try:
                upper, ref_rms = augment_with_reference(upper, *reference, replace=cfg.reference_replaces_scan)
            finally:
                if check is not MISS:
                    check.result()  # the raw scan's check, run beside: its error comes first, as before
        us, ss = section_pair(upper, sole, cfg, sole_reference)
    pose = find_attach_pose(us, ss) if attach_pose is None else given_attach_pose(attach_pose, us, ss)
    strain0 = check_size(us, ss, cfg, upper.item_id)
    sole_side = beside(sole_bonds_and_deformed, sole, ss, pose, upper, len(us.theta))  # beside the station solve
    if calibration is not None:  # an unknown style (no references) takes the calibration's unreferenced part
        calibration = calibration.for_prediction(reference is not None and sole_reference is not None)
    offset = calibration.offset(mat.name, style) if calibration is not None else 0.0
    ring_fn, sur_state = _ring_with_fallback(surrogate)
    sol = solve_stations(us, ss, pose, mat, contact, depth_offset=offset, ring_fn=ring_fn)
    up_side = beside(upper_bond_region, scan, us, sol.bite)  # on the other core while the line is laid
    taught_diag: dict[str, float] = {}
    if taught is not None:
        refs = (reference, sole_reference)
        model = (mat, contact, cfg, ring_fn, calibration)
        line, sigma, taught_diag = _taught_line(taught, upper, us, sol, model, refs, style)
    else:
        complete = reference is not None and upper is not scan and cfg.reference_replaces_scan
        reach = COMPLETE_SURFACE_REACH if complete else PARTIAL_SURFACE_REACH
        line, sigma = surface_polyline(sol.bite, sol.sigma, upper.points, upper.normals, cfg.spacing, reach)
    sigma_model = np.sqrt(sigma**2 + cfg.sensor_sigma**2)
    theta_line = us.frame.polar(line)[0]
    slope = periodic_interp(theta_line, us.theta, sol.slope)
    fallback = periodic_interp(theta_line, us.theta, sol.fallback_sigma)
    pair = {"pose_rms_mm": pose.rms * 1e3, "side_seen_share": float(sol.seen.mean()),
            "abs_perimeter_strain_pct": abs(float(strain0)) * 100, "valid_sole": float(ss.valid.mean())}  # fmt: skip
    sigma, sigma_info = line_sigma(calibration, sigma_model, slope, fallback,
                                   lambda: term_matrix(pair, theta_line, us.theta, sol.seen, sol.slope))  # fmt: skip
    if not np.all(np.isfinite(sigma)) or not np.all(np.isfinite(line)):
        raise SolverError("the predicted bite line or its sigma has NaN/inf points", stage="deformation",
                          item_id=upper.item_id)  # fmt: skip
    up_mask, (sole_mask, deformed) = up_side.result(), sole_side.result()
    diag = {
        "material": mat.name,
        "mean_hoop_strain": float(np.mean(sol.ring.strain)),
        "perimeter_strain": float(strain0),
        "pose_rms_m": pose.rms,
        "attach_pose_given": attach_pose is not None,
        "max_indent_m": float(sol.ring.indent.max()),
        "valid_upper": float(us.valid.mean()),
        "valid_sole": float(ss.valid.mean()),
        "solver_ms": (time.perf_counter() - t0) * 1e3,
        "reference_rms_m": ref_rms,
        "depth_offset_m": float(np.mean(offset)),
        "taught": taught is not None,
        **taught_diag,
        "surrogate": sur_state["state"],
        "ring_ms": sur_state.get("ring_ms", float("nan")),
        "T_attach": pose.T_rigid.tolist(),
        "calibrated": calibration is not None,
        "sigma": sigma_info,
        "fallbacks": {**sol.fallbacks, "fallback_sigma_p95_m": float(np.percentile(fallback, 95))},
        # per-point parts of the sigma (for `gluecell deform calibrate`; not written to attach.json)
        "sigma_parts": {"model_m": sigma_model, "slope": slope,
                        "stations": {"us": us, "sol": sol, "upper": upper}},  # per-station state: learnt residual
    }
    pred = AttachPrediction(
        bite_line=line,
        bite_line_sigma=sigma,
        upper_bond=scan.points[up_mask],
        sole_bond=sole.points[sole_mask],
        deformed_sole=deformed,
        item_id=upper.item_id,
        diagnostics=diag,
    )
    p95 = float(np.percentile(sigma, 95))
    if check_confidence and p95 > cfg.max_sigma:
        raise LowConfidenceError(
            f"bite-line uncertainty p95 {p95 * 1e3:.2f} mm over {cfg.max_sigma * 1e3:.2f} mm: send the pair to a human"
            + _why(calibration, reference is not None and sole_reference is not None, sigma_info),
            stage="deformation",
            item_id=upper.item_id,
            partial=pred,
        )
    return pred


def _why(calibration: DepthCalibration | None, with_refs: bool, info: dict[str, Any]) -> str:
    """What widens the sigma, for the LowConfidenceError's message (the operator reads it)."""
    parts = [] if with_refs else ["no style reference (unknown style)"]
    if calibration is None:
        parts.append("no depth calibration")
    parts += [f"{d}" for d in info.get("drivers", [])]
    return f" ({'; '.join(parts)})" if parts else ""
