"""The simulated calibration coupon: the world's true gun sprays straight passes on a flat plate, and the cell
measures each stripe as a real one would (truth side: only ``cell/sim`` and ``cell/bench`` reach the world).

What is simulated: each :class:`~gluecell.pathplan.gun_calibration.CouponPass` is sprayed by the world's spray
simulator (``datasets.world.spray.simulate_spray``: the true double-beta fan with its mist, the hidden per-run
flow / transfer / fan variation, valve delays, TCP and path error, bounce loss, exact ray casting, film levelling)
onto its own flat coupon at the sole station (z = 20 mm, facing up), each stripe its own run of the gun.

What comes back is a MEASUREMENT, never the gun's config:

- **Laser line profiler** (assumed sensor; FACTS.md [3D sensing]: laser line scanners have um repeatability and
  0.15-0.3 mm lateral resolution): a profile across the stripe every 1 mm along its steady middle (41 lines over
  40 mm), points every 0.1 mm across, each reading the film of the 0.2-0.4 mm patch it lands on (the simulated
  coupon's face), plus Gaussian noise of 1.5 um per point (chosen: height after minus height before on a matte
  plate, both scans' noise and the wet film's gloss together).
- **Balance**: the coupon's glue, weighed (1 mg, 1 sigma; chosen: a 0.1 mg lab balance read next to a spray booth)
  and divided by the glue's datasheet density (1.05 g/ml, chosen).

Both worlds spray with the same true gun: ``datasets/world/spray_config.SprayWorldConfig`` is the only gun of the
world package and world 2 (``datasets/world2``) defines none of its own; :func:`true_gun` says so in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.pathplan.gun_calibration import DEFAULT_PROGRAM, CouponMeasurement, CouponPass

__all__ = ["ProfilerSensor", "true_gun", "spray_coupon", "COUPON_ORIGIN"]

#: Where the coupon lies (base_link, m): the sole station's tray (DESIGN.md default cell layout).
COUPON_ORIGIN = (0.55, 0.20, 0.02)
#: Glue density used to turn the weighed mass into volume, kg/m^3 (chosen: a water-based PU dispersion).
GLUE_DENSITY = 1050.0


@dataclass(frozen=True)
class ProfilerSensor:
    """The measurement: a laser line profiler and a balance (values: see the module docstring)."""

    pitch_m: float = 0.1e-3
    line_step_m: float = 1.0e-3
    measured_len_m: float = 0.040
    noise_m: float = 1.5e-6
    balance_kg: float = 1e-6


@dataclass(frozen=True)
class _Mesh:
    """A triangle mesh as the spray simulator takes it: vertices (V, 3) m, faces (F, 3)."""

    vertices: np.ndarray
    faces: np.ndarray


def true_gun(world: int) -> Any:
    """The world's true gun config (the same for world 1 and world 2: see the module docstring)."""
    from gluecell.datasets.world.spray_config import SprayWorldConfig

    if world not in (1, 2):
        raise ValueError(f"world must be 1 or 2, got {world!r}")
    return SprayWorldConfig()


def _plate(half_w: float, length: float, pitch: float) -> tuple[Any, int, int]:
    """Flat coupon mesh (vertices in base_link, faces up) over x in [-half_w, half_w] (across), y in [0, length]
    (along) from :data:`COUPON_ORIGIN`, two triangles per ``pitch`` cell; returns (mesh, cells across, cells along)."""
    nx, ny = round(2 * half_w / pitch), round(length / pitch)
    xs = np.linspace(-half_w, half_w, nx + 1)
    ys = np.linspace(0.0, length, ny + 1)
    gx, gy = np.meshgrid(xs, ys)  # (ny+1, nx+1)
    o = np.asarray(COUPON_ORIGIN)
    v = np.column_stack([o[0] + gx.ravel(), o[1] + gy.ravel(), np.full(gx.size, o[2])])
    idx = np.arange((ny + 1) * (nx + 1)).reshape(ny + 1, nx + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    f = np.stack([np.column_stack([a, b, c]), np.column_stack([a, c, d])], axis=1).reshape(-1, 3)  # up-facing
    return _Mesh(v, f), nx, ny


def _pass_path(spec: CouponPass, length: float, run_up: float) -> dict[str, Any]:
    """The commanded pass: straight along +y over the coupon's centre line, gun on all the way."""
    from scipy.spatial.transform import Rotation

    o = np.asarray(COUPON_ORIGIN)
    a = o + np.array([0.0, -run_up, spec.standoff_m])
    b = o + np.array([0.0, length + run_up, spec.standoff_m])
    z = np.array([0.0, 0.0, -1.0])
    x = np.array([1.0, 0.0, 0.0]) if spec.rolled else np.array([0.0, 1.0, 0.0])  # nozzle x along the path unless rolled
    R = np.column_stack([x, np.cross(z, x), z])
    q = Rotation.from_matrix(R).as_quat()
    t_end = float(np.linalg.norm(b - a) / spec.speed_m_s)
    return {"part": "sole", "t": np.array([0.0, t_end]), "xyz": np.stack([a, b]), "quat_xyzw": np.stack([q, q]),
            "spray": np.array([True, False])}  # fmt: skip


def _one_stripe(spec: CouponPass, cfg: Any, sensor: ProfilerSensor, rng: np.random.Generator) -> CouponMeasurement:
    from gluecell.datasets.world.spray import simulate_spray

    h = spec.standoff_m
    half_w = max(8e-3, 0.42 * h + 4e-3)  # catches the mist (<= ~0.31 h across) with room
    pitch = 0.2e-3 if h < 0.015 else 0.4e-3
    length = sensor.measured_len_m + 10e-3
    mesh, nx, ny = _plate(half_w, length, pitch)
    run_up = 0.35 * h + 15e-3  # the footprint and ~8 ms of valve delay at 460 mm/s before the coupon
    out = simulate_spray(mesh, [_pass_path(spec, length, run_up)], rng, cfg)
    cell = out.film_m.reshape(ny, nx, 2).mean(axis=2)  # both triangles of a cell (equal areas)
    x = np.arange(-half_w + sensor.pitch_m, half_w - sensor.pitch_m / 2, sensor.pitch_m)
    y0 = 0.5 * (length - sensor.measured_len_m)
    y = y0 + np.arange(0.0, sensor.measured_len_m + 1e-9, sensor.line_step_m)
    ix = np.clip(((x + half_w) / pitch).astype(int), 0, nx - 1)
    iy = np.clip((y / pitch).astype(int), 0, ny - 1)
    film = cell[np.ix_(iy, ix)] + rng.normal(0.0, sensor.noise_m, size=(len(y), len(x)))
    mass = out.deposited_m3 * GLUE_DENSITY + rng.normal(0.0, sensor.balance_kg)
    return CouponMeasurement(spec=spec, x_m=x, film_m=film, weighed_m3=float(mass / GLUE_DENSITY),
                             plate_len_m=length, noise_m=sensor.noise_m,
                             weigh_noise_m3=sensor.balance_kg / GLUE_DENSITY)  # fmt: skip


def spray_coupon(world: int = 1, seed: int = 0, program: tuple[CouponPass, ...] = DEFAULT_PROGRAM,
                 sensor: ProfilerSensor | None = None, progress: Any = None) -> list[CouponMeasurement]:  # fmt: skip
    """Spray ``program`` with ``world``'s true gun, one coupon (and one run of the gun) per pass, and measure each
    stripe (:class:`ProfilerSensor`). ``progress``: called with (done, total) after each stripe."""
    cfg = true_gun(world)
    sensor = sensor or ProfilerSensor()
    rng = np.random.default_rng(seed)
    out = []
    for k, spec in enumerate(program):
        out.append(_one_stripe(spec, cfg, sensor, rng))
        if progress is not None:
            progress(k + 1, len(program))
    return out
