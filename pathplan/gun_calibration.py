"""Gun calibration: fit the planner's deposition model (:class:`~.deposition.DepositionParams`) to a sprayed coupon.

A cell sprays a flat coupon with a few straight passes it knows (standoff, speed, nozzle roll: the
:class:`CouponPass` list of a :data:`DEFAULT_PROGRAM`), measures each stripe's film with a laser line profiler
(height after minus height before, lines across the stripe) and weighs the coupon, then fits the deposited flow,
the core and halo cone sigmas and the halo weight by least squares. The fitted values go into a calibration file
(``gluecell.gun_calibration/1``) that the planner loads (``gluecell plan --gun FILE``, ``gluecell bench --gun FILE``,
or the same values in ``cell.toml``'s ``[pathplan.deposition]`` table).

The model of one pass at normal incidence on a flat plate is the planner's own (``deposition.film_thickness``
with ``cos(inc) |r| / h^3``): a straight pass at speed ``v`` and standoff ``h`` lays across it

    film(x) = flow / (v h) * [(1 - a) N(x / h; s_c) + a N(x / h; s_h)]

with ``N`` a centred normal density in ``u = x / h`` (tan of the angle across the path), ``s = tan(sigma)``. A pass
whose nozzle is rolled 90 deg (``rolled``) shows the cone's sigma along the path instead. The measured profiles
(lines averaged along the steady middle of each stripe) and the weighed volume (flow x time over the plate) are
fitted together; residuals are weighted by ``1 / (noise + REL x film)`` so that the stripe's faint edges, where the
planner's trace and visible levels lie (5-10 um against a 0.1-0.7 mm peak), count as much as its crest.

Nothing here knows the gun that sprayed: it sees the commanded program and the measured films only.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import FormatError

from .deposition import DepositionParams
from .errors import PathplanError

__all__ = ["CouponPass", "CouponMeasurement", "GunCalibration", "GunFitError", "DEFAULT_PROGRAM", "GUN_FORMAT",
           "model_profile", "weighed_flow", "fit_gun", "save_gun", "load_gun", "with_gun", "stripe_reach",
           "WORLD1_GUN", "DESIGN_FILM_FACTOR", "with_design_film"]  # fmt: skip

GUN_FORMAT = "gluecell.gun_calibration/1"
#: The coupon calibration of the embedded simulated cell's gun (``gluecell gun calibrate --world 1 --seed 0``),
#: shipped beside the planner; ``--gun world1`` names it. NOT the planner's default (``DepositionParams()`` stays as it
#: was; pathplan/README.md "Gun calibration" says why).
WORLD1_GUN = Path(__file__).parent / "models" / "gun_world1.json"
#: Relative error allowed per profile point in the fit's weights (chosen: the model's Gaussian tails cannot follow a
#: bounded fan exactly; 10 % of the local film keeps the crest from outweighing the edges 100:1).
REL = 0.10
#: A fitted halo weight below this is no halo (the planner's footprint radius follows the widest sigma).
MIN_HALO = 1e-3
#: Film levels (um) whose stripe half-widths are compared, model against measurement: trace, visible, covered.
LEVELS_UM = (5.0, 10.0, 50.0)
#: Film levels (um) whose stripe widths the fit matches (each stripe: those below 0.8 x its peak), with this
#: uncertainty (m): the planner decides from where its trace (5 um), visible (10 um) and covered (50 um) film
#: edges lie, and a Gaussian cone fitted to the profile alone put them 0.3-1.5 mm inside the measured edges of the
#: world's bounded (double-beta) fan.
FIT_LEVELS_UM = (3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
WIDTH_SD = 0.05e-3
#: At the trace and visible levels (<= ``EDGE_LEVEL_M``) a model stripe NARROWER than the measured one costs this
#: many times more than a wider one: the planner must not believe its glue stops short of where it lands. The world's
#: film is levelled over ~0.6 mm and the robot's path scatters ~0.1 mm, a blur in millimetres that the cone model
#: (sigmas in degrees) cannot follow at 5 mm and at 35 mm alike; symmetric, the fit put the 5 mm edge pass's visible
#: edge 0.28 mm inside the measured one (world 1 motion bench: true glue above the line 0.35 -> 0.60 mm); with 10 x,
#: 0.12-0.14 mm inside, and the stripes of 8-70 mm 0.1-0.9 mm wider than measured at the trace level (coupon seed 1).
EDGE_ASYM = 10.0
EDGE_LEVEL_M = 10e-6
#: Weight of the whole-profile residual (per stripe, RMS of the weighted residuals) beside the widths.
PROFILE_WEIGHT = 3.0


class GunFitError(PathplanError):
    """The coupon measurements cannot be fitted (too few passes, NaN, a stripe with no film)."""


@dataclass(frozen=True)
class CouponPass:
    """One commanded straight pass over a flat coupon: standoff (m), tip speed (m/s), and ``rolled``: the nozzle
    turned 90 deg about its axis (its x axis across the motion), so the stripe shows the cone along the path."""

    standoff_m: float
    speed_m_s: float
    rolled: bool = False

    def __post_init__(self) -> None:
        if not (0.002 <= self.standoff_m <= 0.1 and 0.01 <= self.speed_m_s <= 2.0):
            raise ValueError("CouponPass: standoff 2-100 mm and speed 10-2000 mm/s")


#: The coupon program: the planner's standoffs (5 / 8 mm edge passes, graded 12-25 mm rings, 35 mm main rings,
#: 70 mm sole raster) at its 460 mm/s, one slower pass (speed scaling), and three rolled passes (the cone along
#: the path). 10 stripes, ~1 s of spraying.
DEFAULT_PROGRAM: tuple[CouponPass, ...] = (
    CouponPass(0.005, 0.46), CouponPass(0.008, 0.46), CouponPass(0.012, 0.46), CouponPass(0.020, 0.46),
    CouponPass(0.035, 0.46), CouponPass(0.070, 0.46), CouponPass(0.035, 0.23),
    CouponPass(0.005, 0.46, rolled=True), CouponPass(0.035, 0.46, rolled=True), CouponPass(0.070, 0.46, rolled=True),
)  # fmt: skip


@dataclass(frozen=True)
class CouponMeasurement:
    """What the cell measured on one stripe.

    Attributes:
        spec: the commanded pass.
        x_m: (n,) float64, profiler points across the stripe, metres from the commanded path.
        film_m: (lines, n) float64, measured wet film (height after minus before), metres; may be < 0 (noise).
        weighed_m3: glue on the coupon (weighed mass / the glue's density), m^3; NaN if not weighed.
        plate_len_m: the coupon's length along the pass, metres (the pass runs over all of it, gun on).
        noise_m: the profiler's per-point noise (1 sigma, metres), as its datasheet states it.
        weigh_noise_m3: the balance's noise (1 sigma) in m^3 of glue.
    """

    spec: CouponPass
    x_m: np.ndarray
    film_m: np.ndarray
    weighed_m3: float = float("nan")
    plate_len_m: float = 0.0
    noise_m: float = 1.5e-6
    weigh_noise_m3: float = 1e-9

    def profile(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean film (n,), its standard error (n,)) over the measured lines, metres."""
        f = np.asarray(self.film_m, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != len(self.x_m) or f.shape[0] < 1 or not np.all(np.isfinite(f)):
            raise GunFitError(f"coupon stripe {self.spec}: film must be finite (lines, {len(self.x_m)}), got "
                              f"{f.shape}")  # fmt: skip
        se = np.full(f.shape[1], self.noise_m / math.sqrt(f.shape[0]))
        if f.shape[0] > 2:
            se = np.maximum(se, f.std(axis=0, ddof=1) / math.sqrt(f.shape[0]))
        return f.mean(axis=0), se


@dataclass(frozen=True)
class GunCalibration:
    """A fitted gun: the deposition values the planner uses and how well they fit the coupon."""

    params: DepositionParams
    metrics: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


def _tan(deg: float) -> float:
    return math.tan(math.radians(deg))


def model_profile(params: DepositionParams, spec: CouponPass, x: np.ndarray) -> np.ndarray:
    """The planner's film (m) across a straight pass ``spec`` on a flat plate at ``x`` (n,) metres."""
    k = 1 if spec.rolled else 0  # sigma (across, along): a rolled nozzle shows the cone along the path
    h, v = spec.standoff_m, spec.speed_m_s
    u = np.asarray(x, dtype=np.float64) / h
    sc, sh = _tan(params.core_sigma_deg[k]), _tan(params.halo_sigma_deg[k])
    a = params.halo_weight

    def norm(s: float) -> np.ndarray:
        return np.exp(-0.5 * (u / s) ** 2) / (math.sqrt(2 * math.pi) * s)

    return params.flow_ml_s * 1e-6 / (v * h) * ((1 - a) * norm(sc) + a * norm(sh))


def stripe_reach(x: np.ndarray, film: np.ndarray, level_m: float) -> float:
    """Mean half-width (m) of the stripe where ``film`` >= ``level_m``: the outermost crossing on each side,
    interpolated (0 when the film never reaches the level)."""
    above = np.flatnonzero(film >= level_m)
    if above.size == 0:
        return 0.0
    out = []
    for i, j in ((above[0], above[0] - 1), (above[-1], above[-1] + 1)):
        if j < 0 or j >= len(x):
            out.append(abs(float(x[i])))
            continue
        f = (film[i] - level_m) / max(film[i] - film[j], 1e-18)
        out.append(abs(float(x[i] + f * (x[j] - x[i]))))
    return 0.5 * (out[0] + out[1])


#: Bounds of the fitted values: flow (ml/s), core sigma (deg, across / along), halo sigma as a multiple of the core's
#: (at most 2: the planner's footprint reaches 3.5 x the widest sigma, and a 3-6 x halo of 1-3 % weight, which the fit
#: chose on the world's coupon, made every footprint 2-3 x wider for a few um of film; the shipped halo is 2 x),
#: halo weight.
_LO = np.array([0.01, 0.5, 0.5, 1.05, 1.05, 0.0])
_HI = np.array([20.0, 20.0, 20.0, 2.0, 2.0, 0.5])


def _unpack(p: np.ndarray, base: DepositionParams) -> DepositionParams:
    flow, c0, c1, r0, r1, a = (float(v) for v in p)
    return replace(base, flow_ml_s=flow, core_sigma_deg=(c0, c1), halo_sigma_deg=(c0 * r0, c1 * r1), halo_weight=a)


def _pack(d: DepositionParams) -> np.ndarray:
    c, h = d.core_sigma_deg, d.halo_sigma_deg
    p = np.array([d.flow_ml_s, c[0], c[1], h[0] / c[0], h[1] / c[1], d.halo_weight])
    return np.clip(p, _LO + 1e-6, _HI - 1e-6)


def _widths(x: np.ndarray, film: np.ndarray, levels: np.ndarray) -> np.ndarray:
    return np.array([stripe_reach(x, film, lv) for lv in levels])


def _fit_levels(prof: np.ndarray) -> np.ndarray:
    """The film levels (m) whose stripe widths are fitted: :data:`FIT_LEVELS_UM` below 0.8 x the stripe's peak."""
    lv = np.asarray(FIT_LEVELS_UM) * 1e-6
    return lv[lv < 0.8 * prof.max()]


def _residuals(p: np.ndarray, data: list[tuple[Any, ...]], base: DepositionParams, rel: float = REL,
               edge_asym: float = EDGE_ASYM) -> np.ndarray:  # fmt: skip
    d = _unpack(p, base)
    out = []
    for m, prof, se, levels, widths in data:
        w = 1.0 / (se + rel * np.maximum(prof, 0.0))
        out.append(PROFILE_WEIGHT * (model_profile(d, m.spec, m.x_m) - prof) * w / math.sqrt(len(prof)))
        fine = np.arange(m.x_m[0], m.x_m[-1], 0.02e-3)
        err = (_widths(fine, model_profile(d, m.spec, fine), levels) - widths) / WIDTH_SD
        out.append(np.where((levels <= EDGE_LEVEL_M) & (err < 0), edge_asym * err, err))
        if np.isfinite(m.weighed_m3):
            laid = d.flow_ml_s * 1e-6 * m.plate_len_m / m.spec.speed_m_s
            sd = math.hypot(m.weigh_noise_m3, 0.01 * m.weighed_m3)
            out.append(np.array([(laid - m.weighed_m3) / sd]))
    return np.concatenate(out)


def weighed_flow(measurements: list[CouponMeasurement]) -> float | None:
    """Deposited flow (ml/s) from the weighed stripes: total glue over total time over the coupons (None: none
    weighed). Each coupon lies wholly under its pass, so it holds flow x its length / speed."""
    w = [m for m in measurements if np.isfinite(m.weighed_m3)]
    if not w:
        return None
    t = sum(m.plate_len_m / m.spec.speed_m_s for m in w)
    if t <= 0:
        return None
    flow = sum(m.weighed_m3 for m in w) / t * 1e6
    if not 0.01 < flow < 20.0:
        raise GunFitError(f"weighed coupons give {flow:.4g} ml/s: outside 0.01-20 (check the balance and the program)")
    return float(flow)


def _check(measurements: list[CouponMeasurement]) -> None:
    if len(measurements) < 3:
        raise GunFitError(f"need at least 3 measured coupon stripes to fit the gun, got {len(measurements)}")
    if not any(m.spec.rolled for m in measurements) or all(m.spec.rolled for m in measurements):
        raise GunFitError("the coupon program needs passes with the nozzle along the path and rolled 90 deg (both "
                          "cone axes)")  # fmt: skip
    for m in measurements:
        prof, _ = m.profile()
        if prof.max() <= 0:
            raise GunFitError(f"coupon stripe {m.spec}: no film measured (gun off, or the profiler missed it)")


def fit_gun(measurements: list[CouponMeasurement], start: DepositionParams | None = None, rel: float = REL,
            edge_asym: float = EDGE_ASYM) -> GunCalibration:
    """Least-squares fit of flow, core and halo sigmas (across, along) and halo weight to the coupon stripes.

    ``start``: the initial values (default: the shipped ``DepositionParams()``); its film thresholds are kept.
    ``edge_asym``: the cost of a model stripe narrower than the measured one at the trace and visible levels
    (:data:`EDGE_ASYM`; 1: a plain least-squares fit).
    Returns the calibration with its residuals (``metrics``: weighted RMS, RMS in um, relative RMS over the
    film >= 10 um, and per pass the stripe half-widths at the trace / visible / covered levels, model - measured).
    """
    from scipy.optimize import least_squares

    _check(measurements)
    base = start or DepositionParams()
    data = []
    for m in measurements:
        prof, se = m.profile()
        levels = _fit_levels(prof)
        data.append((m, prof, se, levels, _widths(m.x_m, prof, levels)))
    flow = weighed_flow(measurements)
    lo, hi, x0 = _LO.copy(), _HI.copy(), _pack(base)
    if flow is not None:  # the balance measures the flow; the profiles then fit the cone's shape only
        x0[0] = flow
        lo[0], hi[0] = flow * (1 - 1e-9), flow * (1 + 1e-9)
    sol = least_squares(_residuals, x0, args=(data, base, rel, edge_asym), bounds=(lo, hi), method="trf", x_scale="jac",
                        max_nfev=400)
    params = _unpack(sol.x, base)
    if params.halo_weight < MIN_HALO:  # no halo seen: a zero-weight halo as wide as the core (its sigma would
        params = replace(params, halo_weight=0.0, halo_sigma_deg=params.core_sigma_deg)  # widen every footprint)
    if not sol.success or not np.all(np.isfinite(sol.x)):
        raise GunFitError(f"gun fit did not converge: {sol.message}")
    return GunCalibration(params, _fit_metrics(params, data, sol), {})


def _fit_metrics(params: DepositionParams, data: list[tuple[Any, ...]], sol: Any) -> dict[str, Any]:
    per_pass, err_um, rel = [], [], []
    for m, prof, *_ in data:
        mod = model_profile(params, m.spec, m.x_m)
        err_um.append((mod - prof) * 1e6)
        big = prof >= 10e-6
        rel.append((mod[big] - prof[big]) / prof[big])
        row = {"standoff_mm": m.spec.standoff_m * 1e3, "speed_mm_s": m.spec.speed_m_s * 1e3, "rolled": m.spec.rolled,
               "peak_um": float(prof.max() * 1e6), "rms_um": float(np.sqrt(np.mean(err_um[-1] ** 2)))}  # fmt: skip
        for lv in LEVELS_UM:
            meas, fit = stripe_reach(m.x_m, prof, lv * 1e-6), stripe_reach(m.x_m, mod, lv * 1e-6)
            row[f"reach_{lv:g}um_mm"] = meas * 1e3
            row[f"reach_{lv:g}um_err_mm"] = (fit - meas) * 1e3
        if np.isfinite(m.weighed_m3):
            laid = params.flow_ml_s * 1e-6 * m.plate_len_m / m.spec.speed_m_s
            row["weighed_err"] = float(laid / m.weighed_m3 - 1)
        per_pass.append(row)
    allr = np.concatenate(rel)
    rms = float(np.sqrt(np.mean(np.concatenate(err_um) ** 2)))
    return {"weighted_rms": float(np.sqrt(np.mean(sol.fun**2))), "rms_um": rms,
            "rel_rms": float(np.sqrt(np.mean(allr**2))), "n_points": int(sum(len(d[0].x_m) for d in data)),
            "n_passes": len(data), "passes": per_pass}  # fmt: skip


def _params_dict(d: DepositionParams) -> dict[str, Any]:
    keep = ("flow_ml_s", "core_sigma_deg", "halo_sigma_deg", "halo_weight")
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(d).items() if k in keep}


def save_gun(path: str | os.PathLike[str], gun: GunCalibration) -> None:
    """Write ``gun`` as a ``gluecell.gun_calibration/1`` JSON file (atomically)."""
    from gluecell.core.fileio import atomic_write_json

    atomic_write_json(path, {"format": GUN_FORMAT, "deposition": _params_dict(gun.params), "fit": gun.metrics,
                             "source": gun.source})  # fmt: skip


def load_gun(path: str | os.PathLike[str], base: DepositionParams | None = None) -> GunCalibration:
    """Read a calibration file; its deposition values replace those of ``base`` (default ``DepositionParams()``),
    the film thresholds stay. Raises :class:`~gluecell.core.errors.FormatError` on a bad file."""
    from gluecell.core.fileio import check_version, read_json

    data = read_json(path, max_bytes=16 * 1024 * 1024)
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a JSON object ({GUN_FORMAT})")
    check_version(data.get("format"), GUN_FORMAT, what=str(path))
    dep = data.get("deposition")
    if not isinstance(dep, dict) or set(dep) != {"flow_ml_s", "core_sigma_deg", "halo_sigma_deg", "halo_weight"}:
        raise FormatError(f"{path}: 'deposition' must hold flow_ml_s, core_sigma_deg, halo_sigma_deg, halo_weight")
    try:
        vals = {k: (tuple(float(x) for x in v) if isinstance(v, list) else float(v)) for k, v in dep.items()}
        sig = (*vals["core_sigma_deg"], *vals["halo_sigma_deg"])
        if len(sig) != 4 or not all(0.2 <= s <= 45.0 for s in sig) or not 0.01 <= vals["flow_ml_s"] <= 20.0:
            raise ValueError("sigmas 0.2-45 deg (two each) and flow 0.01-20 ml/s")
        params = replace(base or DepositionParams(), **vals)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{path}: bad deposition values ({exc})") from exc
    return GunCalibration(params, data.get("fit") or {}, data.get("source") or {})


def with_gun(cfg: Any, gun: GunCalibration | str | os.PathLike[str] | None) -> Any:
    """``cfg`` (a ``PathplanConfig``) planning with the calibrated gun (a calibration, its file, or ``"world1"``: the
    shipped :data:`WORLD1_GUN`; None: as is)."""
    if gun is None:
        return cfg
    if not isinstance(gun, GunCalibration):
        gun = load_gun(WORLD1_GUN if str(gun) == "world1" else gun, cfg.deposition)
    return replace(cfg, deposition=replace(cfg.deposition, **{k: (tuple(v) if isinstance(v, list) else v)
                                                               for k, v in _params_dict(gun.params).items()}))


#: The film the embedded cell's plans are designed for, as a multiple of the inspected covered level
#: (``DepositionParams.covered_mm``, 50 um): see :func:`with_design_film`.
DESIGN_FILM_FACTOR = 2.0


def _edge_pass(cfg: Any) -> tuple[float, float]:
    """(standoff m, speed m/s) of the upper's edge passes in ``cfg`` (a ``PathplanConfig``)."""
    from .modifiers import SpeedProfileParams, StandoffParams

    so = next((m for m in cfg.upper.modifiers if m.get("name") == "standoff"), {})
    sp = next((m for m in cfg.upper.modifiers if m.get("name") == "speed_profile"), {})
    standoff = float(so.get("edge_standoff_mm", StandoffParams.edge_standoff_mm))
    speed = float(sp.get("edge_mm_s", SpeedProfileParams.edge_mm_s))
    return standoff * 1e-3, speed * 1e-3


def with_design_film(cfg: Any, factor: float = DESIGN_FILM_FACTOR) -> Any:
    """``cfg`` designing its passes for ``factor`` x the inspected covered film, its first edge ring where it was.

    The tuner spaces passes so that the film between two neighbours stays >= 1.25 x ``covered_mm`` on a flat
    plate in the planner's Gaussian-cone model. On the embedded cell's uppers the real troughs run deeper (the
    true fan has no Gaussian tail, the gun's flow varies run to run, the wall curves): the 50-pair demo's gaps
    (5-17 mm^2 per view) were troughs between the edge ring and the next rings, 2.5-3.5 and 5-6 mm from the line,
    with the film around them at 0.4-0.7 mm. Designing for ``factor`` x the covered level fills them; the
    covered edge of the first edge ring (``TuningConfig.edge_target_mm``) is moved by the difference of that
    ring's reach at the two levels, so the glue's edge at the line stays where the inspected level put it
    (no closer to the line: glue above it is the other defect). The plan's coverage figures, and the refusal
    of a plan short of ``target_coverage``, then count at the design film too (stricter than the inspection).

    Args:
        cfg: a ``PathplanConfig`` (its deposition should be the cell's calibrated gun: :func:`with_gun`).
        factor: design film / inspected covered film (1: unchanged; 1-4).

    Returns:
        The config with ``deposition.covered_mm`` x ``factor`` and ``tuning.edge_target_mm`` compensated.
    """
    from gluecell.core.errors import ConfigError

    from .tuning import cross_profile

    if not (math.isfinite(factor) and 1.0 <= factor <= 4.0):
        raise ConfigError(f"design film factor must be within 1-4, got {factor}", key="design_film_factor")
    if factor == 1.0:
        return cfg
    dep = cfg.deposition
    design = replace(dep, covered_mm=dep.covered_mm * factor)
    standoff, speed = _edge_pass(cfg)
    edge = cross_profile(standoff, 0.0, speed, design)
    shift_mm = (edge.reach(dep.covered_mm * 1e-3) - edge.reach(design.covered_mm * 1e-3)) * 1e3
    tuning = replace(cfg.tuning, edge_target_mm=cfg.tuning.edge_target_mm + max(shift_mm, 0.0))
    return replace(cfg, deposition=design, tuning=tuning)
