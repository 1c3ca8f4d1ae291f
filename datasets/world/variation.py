"""Round-2 hidden variation (issue 12): what makes one upper, one sole and one attach differ from the next.

Upper: localised lasting bumps of the feather edge and bottom height, toe and heel fullness, loose lasting at
the waist, last-copy variation and the compliance of the upper's bottom stack. Sole (its own CAD): the mould
maker's last copy, draft, per-cavity rim profiles, anisotropic shrinkage and warp. Attach: the sole's placement
error on the upper. Every range is in :class:`~gluecell.datasets.world.config.WorldConfig` with its source.

:func:`draw_variation` is called last by ``draw_params`` (always the same number of draws, so fixing a style
or size does not move the other draws). :data:`BUDGET_GROUPS` and :func:`neutral` name each variation and
give the pair with it held at its neutral value (the variation budget of the bench).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any

import numpy as np

from .config import WorldConfig

__all__ = [
    "VARIATION_DEFAULTS",
    "draw_variation",
    "perimeter_bumps",
    "upper_side_offset",
    "feather_offset",
    "cavity_profile",
    "BUDGET_GROUPS",
    "neutral",
]

#: The round-2 fields of ``SampleParams`` and their neutral (variation-free) values.
VARIATION_DEFAULTS: dict[str, Any] = {
    "feather_bumps": (),
    "toe_fullness_m": 0.0,
    "heel_fullness_m": 0.0,
    "waist_loose_m": 0.0,
    "last_copy_m": (0.0, 0.0),
    "upper_stack_modulus_pa": 0.0,
    "leather_pushback": 0.0,
    "sole_last_copy_m": 0.0,
    "sole_cavity": -1,
    "sole_shrink_aniso": 0.0,
    "sole_shrink_z": 0.0,
    "sole_warp_m": 0.0,
    "sole_offset_m": (0.0, 0.0),
    "sole_yaw_deg": 0.0,
}


def draw_variation(rng: np.random.Generator, cfg: WorldConfig) -> dict[str, Any]:
    """Draw the round-2 fields (a fixed number of draws in a fixed order).

    Returns:
        field name -> value, ready for ``SampleParams(**...)``.
    """
    bumps = []
    for _ in range(cfg.feather_bump_count):
        c, w, a = rng.uniform(0.0, 1.0), rng.uniform(*cfg.feather_bump_width), rng.uniform(-1.0, 1.0)
        bumps.append((float(c), float(w), float(a * cfg.feather_bump_amp_m)))
    u = rng.uniform(-1.0, 1.0, 13)
    return {
        "feather_bumps": tuple(bumps),
        "toe_fullness_m": float(u[0] * cfg.toe_heel_fullness_m),
        "heel_fullness_m": float(u[1] * cfg.toe_heel_fullness_m),
        "waist_loose_m": float(np.interp(u[2], (-1, 1), cfg.waist_loose_m)),
        "last_copy_m": (float(u[3] * cfg.last_copy_m / 2), float(u[4] * cfg.last_copy_m / 2)),
        "upper_stack_modulus_pa": float(np.interp(u[5], (-1, 1), cfg.upper_stack_modulus_pa)),
        "leather_pushback": float(np.interp(u[6], (-1, 1), cfg.leather_pushback)),
        "sole_last_copy_m": float(u[7] * cfg.sole_last_copy_m),
        "sole_cavity": int(min(int(0.5 * (u[8] + 1.0) * cfg.sole_cavities), cfg.sole_cavities - 1)),
        "sole_shrink_aniso": float(np.interp(u[9], (-1, 1), cfg.sole_shrink_aniso)),
        "sole_shrink_z": float(np.interp(u[10], (-1, 1), cfg.sole_shrink_z)),
        "sole_warp_m": float(u[11] * cfg.sole_warp_m),
        "sole_offset_m": (float(u[12] * cfg.sole_place_max_m), float(rng.uniform(-1, 1) * cfg.sole_place_max_m)),
        "sole_yaw_deg": float(rng.uniform(-1, 1) * cfg.sole_place_yaw_deg),
    }


def perimeter_bumps(n: int, bumps: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """(n,) sum of periodic Gaussian bumps (centre, sigma as perimeter fractions; amplitude m) over stations."""
    t = np.arange(n) / n
    out = np.zeros(n)
    for c, w, a in bumps:
        d = (t - c + 0.5) % 1.0 - 0.5
        out += a * np.exp(-0.5 * (d / w) ** 2)
    return out


def _xf(outline: np.ndarray, length: float) -> np.ndarray:
    return np.clip((outline[:, 0] - outline[:, 0].min()) / length, 0.0, 1.0)


def upper_side_offset(outline: np.ndarray, length: float, params: Any) -> np.ndarray:
    """(N,) normal offset of the lasted side per station, metres: toe/heel fullness and loose waist lasting.

    Toe fullness peaks at the toe tip (x_f = 1) and fades by x_f 0.75; heel fullness at the heel back (x_f = 0),
    gone by x_f 0.25; loose lasting sits on the waist (x_f 0.3-0.6), full on the medial side (+y, the arch),
    half on the lateral.
    """
    xf = _xf(outline, length)
    toe = np.exp(-0.5 * ((xf - 1.0) / 0.1) ** 2)
    heel = np.exp(-0.5 * (xf / 0.1) ** 2)
    waist = np.exp(-0.5 * ((xf - 0.45) / 0.08) ** 2) * np.where(outline[:, 1] > 0, 1.0, 0.5)
    return params.toe_fullness_m * toe + params.heel_fullness_m * heel + params.waist_loose_m * waist


def last_copy_offset(outline: np.ndarray, length: float, copy: tuple[float, float]) -> np.ndarray:
    """(N,) normal offset of a last copy per station: c0 + c1 (2 x_f - 1), metres."""
    return copy[0] + copy[1] * (2.0 * _xf(outline, length) - 1.0)


def feather_offset(n: int, params: Any) -> np.ndarray:
    """(N,) vertical offset of the bottom and the feather edge per station (+ = stands further out), metres."""
    return perimeter_bumps(n, tuple(params.feather_bumps))


def cavity_profile(style: str, size_eu: float, side: str, cavity: int, n: int, amp: float) -> np.ndarray:
    """(N,) rim-height error of one mould cavity, metres: orders 1-4, fixed per (style, size, side, cavity).

    A cavity is a physical mould: every sole from it carries the same profile (a taught pair from cavity 0
    and a production pair from cavity 2 differ by this). ``cavity < 0`` is the CAD nominal (zero).
    """
    if cavity < 0:
        return np.zeros(n)
    key = [zlib.crc32(style.encode()), round(2 * size_eu), int(side == "left"), int(cavity), 0xCA11]
    rng = np.random.default_rng(key)
    t = 2.0 * np.pi * np.arange(n) / n
    amps, phases = rng.uniform(0.0, amp, 4), rng.uniform(0.0, 2.0 * np.pi, 4)
    return sum(a * np.cos((k + 1) * t + p) for k, (a, p) in enumerate(zip(amps, phases)))


#: Variation budget: name -> the SampleParams fields it holds at neutral. Groups of one physical cause.
BUDGET_GROUPS: dict[str, tuple[str, ...]] = {
    "lasting_feather_bottom": ("feather_bumps",),
    "toe_heel_fullness": ("toe_fullness_m", "heel_fullness_m"),
    "waist_loose_lasting": ("waist_loose_m", "leather_pushback"),
    "last_copy": ("last_copy_m",),
    "upper_compliance": ("upper_stack_modulus_pa",),
    "leather_thickness": ("upper_thickness_m",),
    "lasting_modes": ("upper_lasting_modes",),
    "sidewall_trim": ("sidewall_height_error_m", "sidewall_modes"),
    "cavity_profile": ("sole_cavity",),
    "shrinkage": ("sole_scale_error",),
    "shrinkage_anisotropy": ("sole_shrink_aniso", "sole_shrink_z"),
    "sole_last_copy": ("sole_last_copy_m",),
    "warp": ("sole_warp_m",),
    "material": ("material", "youngs_modulus_pa", "poisson_ratio"),
    "press_pressure": ("press_pressure_pa",),
    "sole_placement": ("sole_offset_m", "sole_yaw_deg"),
}


def nominal_values(style: str, cfg: WorldConfig) -> dict[str, Any]:
    """Neutral values of every hidden field for ``style`` (the CAD nominal of the style's design)."""
    from .styles import MATERIALS, style_spec

    spec = style_spec(style)
    mat = MATERIALS[int(np.argmax(spec.material_weights))]
    mid = lambda lo_hi: 0.5 * (lo_hi[0] + lo_hi[1])  # noqa: E731
    return {
        **VARIATION_DEFAULTS,
        "upper_thickness_m": cfg.leather_nominal_m,
        "upper_lasting_modes": (),
        "sidewall_height_error_m": 0.0,
        "sidewall_modes": ((0.0, 0.0), (0.0, 0.0)),
        "sole_scale_error": 0.0,
        "material": mat,
        "youngs_modulus_pa": mid(getattr(cfg, f"{mat}_youngs_pa")),
        "poisson_ratio": mid(getattr(cfg, f"{mat}_poisson")),
        "press_pressure_pa": mid(cfg.press_pressure_pa),
    }


def neutral(params: Any, group: str, cfg: WorldConfig | None = None) -> Any:
    """``params`` with the fields of budget ``group`` at their neutral values (the others held)."""
    if group not in BUDGET_GROUPS:
        raise KeyError(f"unknown variation {group!r}; choose one of {', '.join(BUDGET_GROUPS)}")
    nom = nominal_values(params.style, cfg if cfg is not None else WorldConfig())
    return dataclasses.replace(params, **{f: nom[f] for f in BUDGET_GROUPS[group]})


def stack_compression(params: Any, cfg: WorldConfig, thickness: float) -> float:
    """Compression of the upper's bottom stack (insole board + margin) under the press, metres (0 = rigid)."""
    e = params.upper_stack_modulus_pa
    if e <= 0 or not math.isfinite(e):
        return 0.0
    return params.press_pressure_pa * (cfg.insole_thickness_m + thickness) / e
