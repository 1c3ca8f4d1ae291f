"""Constants and hidden per-run variation of the true spray gun, with where every value comes from.

"FACTS" = /work/shared/FACTS.md (section in brackets); "chosen" = not found publicly, reason given.
The tables in datasets/README.md ("Spray outcome (truth side)") repeat these values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = ["SprayWorldConfig", "SprayRun", "draw_run"]


@dataclass(frozen=True)
class SprayWorldConfig:
    """The real gun, its hidden per-run variation, film thresholds and the simulation's resolution."""

    # --- nameplate gun ------------------------------------------------------------------------------
    #: Fluid flow out of the nozzle (chosen: with the transfer efficiency below, 0.40 ml/s reaches the
    #: part, which lays ~0.14 mm wet at 300 mm/s and ~9.5 mm pass spacing, inside FACTS [Cementing]
    #: manual layer 0.1-0.3 mm).
    flow_ml_s: float = 0.55
    #: Fraction of the fluid that reaches the part in the fan (core + mist); the rest is carried off
    #: as overspray (chosen: low-pressure/HVLP guns are rated >= 65 %; a close-standoff glue nozzle a
    #: little better).
    transfer_efficiency: float = 0.72
    #: Fan half angles about the nozzle x and y axes, degrees: the edge of the elliptic footprint
    #: (chosen: a small low-pressure round-fan glue nozzle; with the exponents below the across-axis
    #: sigma is ~4 deg, the same nameplate gun the planner assumes).
    fan_half_angle_deg: tuple[float, float] = (11.0, 9.5)
    #: Elliptic double-beta exponents (b1, b2) of the core fan (FACTS [Cementing]: "deposition
    #: footprints are well fitted by elliptic double-Gaussian or double-beta models"; values chosen
    #: for a bell-shaped, soft-edged profile).
    fan_beta: tuple[float, float] = (2.5, 2.0)
    #: Share of the deposited volume that arrives as mist (fines, bounce-back) in a wider, flatter fan
    #: (chosen: a faint halo of a few per cent; most fines leave with the exhaust and are part of the
    #: transfer loss). With these values one edge pass at 8 mm standoff, 400 mm/s lays ~4 µm of mist
    #: beyond its core: below ``visible_m`` alone, visible where passes pile it up.
    mist_fraction: float = 0.02
    #: Mist fan half angles as multiples of the core's, and its double-beta exponents (chosen).
    mist_angle_scale: float = 1.5
    mist_beta: tuple[float, float] = (1.5, 1.5)
    #: Droplets rebounding at grazing incidence: retained share ``1 - bounce_loss (1 - cos i)^2``
    #: (chosen: ~7 % lost at 60 deg, ~20 % at 80 deg; transfer falls on steep faces).
    bounce_loss: float = 0.3

    # --- hidden per-run variation ------------------------------------------------------------------
    #: Flow factor uniform 1 ± this (chosen: viscosity with temperature, pot pressure and level).
    flow_var: float = 0.07
    #: Transfer efficiency uniform ± this, absolute (chosen: air-cap wear, booth draught).
    transfer_var: float = 0.03
    #: Each fan half angle scaled by uniform 1 ± this (chosen: atomising-air pressure, nozzle wear).
    fan_var: float = 0.05
    #: Nozzle misalignment: the real spray axis tilted by uniform 0..this degrees from the nozzle
    #: frame's +z, random azimuth (chosen: a nozzle seated in its holder to within ~1 deg).
    misalign_max_deg: float = 0.75
    #: Tool-centre-point error: a fixed offset of the real tip in the nozzle frame, uniform in a ball
    #: of this radius (FACTS [Robots]: accuracy 0.2-2 mm before calibration; the TCP is calibrated).
    tcp_error_max_m: float = 0.2e-3
    #: Robot path error: smooth, RMS per axis (FACTS [Robots]: ±250 µm path error at 700 mm/s;
    #: 0.1 mm RMS per axis peaks near 0.25-0.3 mm), as ``path_error_modes`` sinusoids per axis with
    #: frequencies uniform in ``path_error_hz`` (chosen: arm structural modes and servo lag).
    path_error_rms_m: float = 0.1e-3
    path_error_modes: int = 6
    path_error_hz: tuple[float, float] = (0.5, 8.0)
    #: Gun valve delays from command to actual open / close, uniform (chosen: automatic guns with a
    #: solenoid-piloted needle switch in a few milliseconds).
    on_delay_s: tuple[float, float] = (3e-3, 8e-3)
    off_delay_s: tuple[float, float] = (2e-3, 6e-3)

    # --- film thresholds ---------------------------------------------------------------------------
    #: Wet film that counts as covered (chosen: half the thinnest manual layer of FACTS [Cementing],
    #: 0.1-0.3 mm; less leaves a starved, discontinuous bond line).
    covered_m: float = 0.05e-3
    #: Wet film that is visible (a reject above the bite line) (chosen: 10 µm wet, ~4 µm dry at the
    #: ~40 % solids of a PU dispersion, is a continuous trace that fluoresces under the UV lamp; a
    #: face-average below it is scattered mist droplets).
    visible_m: float = 0.01e-3

    #: Levelling of the wet film: each face's deposit spreads evenly (by area) over the faces whose
    #: centroids lie within this radius (chosen: a wet PU film levels by surface tension over a few
    #: tenths of a millimetre within its open time; also averages the droplet count on tiny faces).
    level_radius_m: float = 0.6e-3

    # --- resolution of the simulation --------------------------------------------------------------
    #: Time slices: slices are uniform in ``travel + dt · step_m / max_dt_s`` with at most ``step_m``
    #: of it per slice, so a fast move is cut by distance and a stationary nozzle every ``max_dt_s``
    #: (chosen: far below the footprint width; 1 mm is a few per cent of a 35 mm-standoff footprint).
    step_m: float = 1.0e-3
    max_dt_s: float = 10.0e-3
    #: Target spacing of core droplet rays on the surface; rays per axis clipped to ``core_rays``
    #: (chosen for < 5 % numerical noise per face on the world's meshes at ~1 s per upper path).
    ray_spacing_m: float = 1.0e-3
    core_rays: tuple[int, int] = (8, 18)
    #: Mist rays per axis per shot.
    mist_rays: int = 6
    #: Standoff assumed where the nozzle axis misses the part (for choosing the ray count only).
    default_standoff_m: float = 0.035
    #: Droplets travelling further than this are lost (chosen: the fan has dispersed).
    max_range_m: float = 0.3
    #: Shots per ray-casting batch (memory bound) and Open3D threads (0: all cores).
    batch_shots: int = 2048
    n_threads: int = 1

    def __post_init__(self) -> None:
        checks = {
            "flow_ml_s": self.flow_ml_s > 0,
            "transfer_efficiency": 0 < self.transfer_efficiency <= 1,
            "fan_half_angle_deg": all(0 < a < 45 for a in self.fan_half_angle_deg),
            "fan_beta": all(b > 0 for b in (*self.fan_beta, *self.mist_beta)),
            "mist_fraction": 0 <= self.mist_fraction < 1,
            "mist_angle_scale": 1 <= self.mist_angle_scale and self.mist_angle_scale * max(self.fan_half_angle_deg) < 60,  # noqa: E501
            "bounce_loss": 0 <= self.bounce_loss <= 1,
            "level_radius_m": self.level_radius_m >= 0,
            "covered_m": self.covered_m > self.visible_m > 0,
            "step_m": self.step_m > 0 and self.max_dt_s > 0 and self.ray_spacing_m > 0,
            "core_rays": 2 <= self.core_rays[0] <= self.core_rays[1] and self.mist_rays >= 1,
            "on_delay_s": 0 <= self.on_delay_s[0] <= self.on_delay_s[1],
            "off_delay_s": 0 <= self.off_delay_s[0] <= self.off_delay_s[1],
            "batch_shots": self.batch_shots >= 1 and self.n_threads >= 0 and self.path_error_modes >= 1,
        }  # fmt: skip
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            from gluecell.datasets.errors import WorldParamError

            raise WorldParamError(f"SprayWorldConfig: invalid value(s) for {', '.join(bad)}", key=bad[0])

    def nominal(self) -> SprayWorldConfig:
        """This config with every hidden per-run variation switched off (nameplate gun, exact path)."""
        zero = {"flow_var": 0.0, "transfer_var": 0.0, "fan_var": 0.0, "misalign_max_deg": 0.0, "tcp_error_max_m": 0.0,
                "path_error_rms_m": 0.0, "on_delay_s": (0.0, 0.0), "off_delay_s": (0.0, 0.0)}  # fmt: skip
        return replace(self, **zero)


@dataclass(frozen=True)
class SprayRun:
    """Hidden truth of one spray run (what the planner cannot know).

    Attributes:
        flow_m3_s: actual fluid flow, m^3/s.
        transfer_efficiency: actual share reaching the part.
        half_tan: (2,) tangents of the actual fan half angles (nozzle x, y).
        R_misalign: (3, 3) rotation from the nozzle frame to the real spray frame.
        tcp_offset_m: (3,) real tip minus planned tip, nozzle frame, metres.
        on_delay_s, off_delay_s: valve delays, seconds.
        path_amp_m, path_hz, path_phase: (3, m) modes of the smooth path error (base_link).
        grid_start: (2,) origin in [0, 1) of the droplet grids' shot-to-shot shift (numerical, not physics).
    """

    flow_m3_s: float
    transfer_efficiency: float
    half_tan: np.ndarray
    R_misalign: np.ndarray
    tcp_offset_m: np.ndarray
    on_delay_s: float
    off_delay_s: float
    path_amp_m: np.ndarray
    path_hz: np.ndarray
    path_phase: np.ndarray
    grid_start: np.ndarray

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form (lists for arrays)."""
        return {f.name: np.asarray(getattr(self, f.name)).tolist() for f in fields(self)}


def _unit3(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def draw_run(rng: np.random.Generator, cfg: SprayWorldConfig) -> SprayRun:
    """Draw one run's hidden variation; always the same number of draws, in a fixed order."""
    from scipy.spatial.transform import Rotation

    flow = cfg.flow_ml_s * 1e-6 * (1.0 + cfg.flow_var * rng.uniform(-1, 1))
    te = float(np.clip(cfg.transfer_efficiency + cfg.transfer_var * rng.uniform(-1, 1), 0.01, 1.0))
    ang = np.radians(cfg.fan_half_angle_deg) * (1.0 + cfg.fan_var * rng.uniform(-1, 1, size=2))
    tilt = np.radians(cfg.misalign_max_deg) * rng.uniform(0, 1)
    az = rng.uniform(0, 2 * np.pi)
    R_mis = Rotation.from_rotvec(tilt * np.array([np.cos(az), np.sin(az), 0.0])).as_matrix()
    tcp = cfg.tcp_error_max_m * rng.uniform(0, 1) ** (1 / 3) * _unit3(rng)
    on = rng.uniform(*cfg.on_delay_s)
    off = rng.uniform(*cfg.off_delay_s)
    m = cfg.path_error_modes
    amp = np.full((3, m), cfg.path_error_rms_m * np.sqrt(2.0 / m))
    hz = rng.uniform(*cfg.path_error_hz, size=(3, m))
    phase = rng.uniform(0, 2 * np.pi, size=(3, m))
    start = rng.random(2)
    return SprayRun(float(flow), te, np.tan(ang), R_mis, tcp, float(on), float(off), amp, hz, phase, start)
