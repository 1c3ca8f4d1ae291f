"""Hidden per-sample truth of the synthetic world and how it is drawn.

A real cell never sees these values: they are what makes one pair differ from the next (sole
material and stiffness, shrinkage, sidewall trim, leather thickness, how each part sits on its
station). ``draw_params`` is the only place that consumes randomness for a pair's physics, so a
seed fixes the whole pair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from gluecell.datasets.errors import WorldParamError

from .config import SIZE_RANGE_EU, WorldConfig
from .styles import MATERIALS, STYLES, style_spec

__all__ = ["Placement", "SampleParams", "draw_params", "check_size", "check_side"]

SIDES: tuple[str, ...] = ("left", "right")


@dataclass(frozen=True)
class Placement:
    """How a part sits on its station (the footprint centre's offset and the part's rotation).

    Attributes:
        dx_m, dy_m: offset of the footprint centre from the station centre, metres, base_link.
        yaw_deg: rotation of the toe direction about +z away from +x, degrees.
        roll_deg, pitch_deg: tilt about the part's own x and y axes, degrees (0 for the sole).
        top_z_m: upper: height of its highest point above the floor; sole: tray height (tread).
    """

    dx_m: float
    dy_m: float
    yaw_deg: float
    roll_deg: float
    pitch_deg: float
    top_z_m: float


@dataclass(frozen=True)
class SampleParams:
    """Hidden truth of one pair (what the world knows and the cell must not).

    Attributes:
        style, size_eu, side: what the pair is.
        material: sole material, one of ``MATERIALS``.
        youngs_modulus_pa: sole Young's modulus, Pa.
        poisson_ratio: sole Poisson's ratio.
        press_pressure_pa: sole press pressure, Pa.
        sole_undersize: design undersize of the sole's inside (linear fraction).
        sole_scale_error: hidden shrinkage/size error of this sole (linear fraction; + = larger).
        sidewall_height_error_m: global error of the sidewall height, metres.
        sidewall_modes: ((amp_m, phase_rad), (amp_m, phase_rad)) of perimeter orders 2 and 3.
        upper_thickness_m: upper leather thickness, metres.
        upper_lasting_modes: ((amp_m, phase_rad), ...) of perimeter orders 2-5: the lasted upper's
            side deviates from "last + leather" along its normal (uneven lasting tension).
        upper_placement, sole_placement: placement on each station.
        feather_bumps ... sole_yaw_deg: round-2 variation (``world/variation.py``; ranges in ``WorldConfig``):
            ((centre, sigma, amp_m), ...) bottom/feather-edge bumps, toe/heel fullness and loose waist lasting
            (normal offsets, m), the upper's last copy (c0, c1) m, the bottom stack's compressive modulus (Pa,
            0 = rigid), the share of loose lasting the wall presses back, the sole's mould last copy (m), its
            mould cavity (-1 = CAD nominal), extra shrinkage length-vs-width and in height, warp (m), and the
            sole's placement error on the upper ((dx, dy) m in the upper's part frame, yaw degrees).
    """

    style: str
    size_eu: float
    side: str
    material: str
    youngs_modulus_pa: float
    poisson_ratio: float
    press_pressure_pa: float
    sole_undersize: float
    sole_scale_error: float
    sidewall_height_error_m: float
    sidewall_modes: tuple[tuple[float, float], tuple[float, float]]
    upper_thickness_m: float
    upper_placement: Placement
    sole_placement: Placement
    upper_lasting_modes: tuple[tuple[float, float], ...] = ()
    # round 2 (issue 12, world/variation.py); the defaults are the variation-free values
    feather_bumps: tuple[tuple[float, float, float], ...] = ()
    toe_fullness_m: float = 0.0
    heel_fullness_m: float = 0.0
    waist_loose_m: float = 0.0
    last_copy_m: tuple[float, float] = (0.0, 0.0)
    upper_stack_modulus_pa: float = 0.0
    leather_pushback: float = 0.0
    sole_last_copy_m: float = 0.0
    sole_cavity: int = -1
    sole_shrink_aniso: float = 0.0
    sole_shrink_z: float = 0.0
    sole_warp_m: float = 0.0
    sole_offset_m: tuple[float, float] = (0.0, 0.0)
    sole_yaw_deg: float = 0.0

    @property
    def sole_scale(self) -> float:
        """Linear scale of this sole against the nominal lasted upper (< 1 = undersized)."""
        return (1.0 - self.sole_undersize) * (1.0 + self.sole_scale_error)

    @property
    def sole_scale_xyz(self) -> tuple[float, float, float]:
        """Per-axis scale of this sole (length, width, height): mean scale with the anisotropic shrinkage."""
        s = self.sole_scale
        return s * (1.0 + self.sole_shrink_aniso), s * (1.0 - self.sole_shrink_aniso), s * (1.0 + self.sole_shrink_z)

    @classmethod
    def from_dict(cls, d: dict) -> SampleParams:
        """Inverse of :meth:`to_dict` (a dataset's ``params.json``); fields a world-1 dataset lacks keep their
        variation-free defaults."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("upper_placement", "sole_placement"):
            kw[k] = Placement(**kw[k])
        for k in ("sidewall_modes", "upper_lasting_modes", "feather_bumps", "last_copy_m", "sole_offset_m"):
            if k in kw:
                v = kw[k]
                kw[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        return cls(**kw)

    def to_dict(self) -> dict:
        """JSON-ready dict (floats, strings, nested dicts and lists)."""
        d = asdict(self)
        d["sidewall_modes"] = [list(m) for m in self.sidewall_modes]
        d["upper_lasting_modes"] = [list(m) for m in self.upper_lasting_modes]
        d["feather_bumps"] = [list(b) for b in self.feather_bumps]
        d["last_copy_m"] = list(self.last_copy_m)
        d["sole_offset_m"] = list(self.sole_offset_m)
        return d


def check_size(size_eu: float) -> float:
    """Validate an EU size (36-46, FACTS.md Paris point) and return it as float."""
    try:
        s = float(size_eu)
    except (TypeError, ValueError):
        raise WorldParamError(f"size_eu must be a number, got {size_eu!r}", key="size_eu", value=size_eu) from None
    if not math.isfinite(s) or s < SIZE_RANGE_EU[0] or s > SIZE_RANGE_EU[1]:
        raise WorldParamError(
            f"size_eu {size_eu!r} is outside the world's range EU {SIZE_RANGE_EU[0]:g}-{SIZE_RANGE_EU[1]:g}",
            key="size_eu",
            value=size_eu,
        )
    return s


def check_side(side: str) -> str:
    """Validate a side ("left" or "right")."""
    if side not in SIDES:
        raise WorldParamError(f"unknown side {side!r}: choose 'left' or 'right'", key="side", value=side)
    return side


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _placement(rng: np.random.Generator, cfg: WorldConfig, tilt: bool, z_range: tuple[float, float]) -> Placement:
    m = cfg.placement_max_m
    t = cfg.upper_tilt_max_deg if tilt else 0.0
    return Placement(
        dx_m=float(rng.uniform(-m, m)),
        dy_m=float(rng.uniform(-m, m)),
        yaw_deg=float(rng.uniform(-cfg.yaw_max_deg, cfg.yaw_max_deg)),
        roll_deg=float(rng.uniform(-t, t)),
        pitch_deg=float(rng.uniform(-t, t)),
        top_z_m=_uniform(rng, z_range),
    )


def draw_params(
    rng: np.random.Generator,
    cfg: WorldConfig | None = None,
    style: str | None = None,
    size_eu: float | None = None,
    side: str | None = None,
) -> SampleParams:
    """Draw the hidden truth of one pair.

    Every draw happens in a fixed order whatever is given, so fixing e.g. ``style`` does not
    change the other hidden values of a seed.

    Args:
        rng: the pair's generator.
        cfg: ranges (default ``WorldConfig()``).
        style, size_eu, side: fixed choices; drawn when None.

    Raises:
        WorldParamError: unknown style or side, or size outside EU 36-46.
    """
    cfg = cfg if cfg is not None else WorldConfig()
    style_d = STYLES[int(rng.integers(len(STYLES)))]
    lo, hi = cfg.size_range_eu
    whole = np.arange(math.ceil(lo), math.floor(hi) + 1)
    k = int(rng.integers(max(len(whole), 1)))  # always one draw, so the later draws do not shift
    size_d = float(whole[k]) if len(whole) else float(lo)
    side_d = SIDES[int(rng.integers(2))]
    style = style_d if style is None else style
    spec = style_spec(style)
    size = check_size(size_d if size_eu is None else size_eu)
    side = check_side(side_d if side is None else side)
    u_mat = float(rng.random())
    w = np.asarray(spec.material_weights, dtype=float)
    material = MATERIALS[int(min(np.searchsorted(np.cumsum(w / w.sum()), u_mat, side="right"), len(MATERIALS) - 1))]
    youngs = _uniform(rng, getattr(cfg, f"{material}_youngs_pa"))
    nu = _uniform(rng, getattr(cfg, f"{material}_poisson"))
    pressure = _uniform(rng, cfg.press_pressure_pa)
    scale_err = _uniform(rng, cfg.sole_scale_error)
    sw_err = float(
        np.clip(rng.normal(0.0, cfg.sidewall_error_std_m), -cfg.sidewall_error_max_m, cfg.sidewall_error_max_m)
    )
    modes = tuple(
        (float(rng.uniform(0.0, cfg.sidewall_mode_amp_m)), float(rng.uniform(0.0, 2.0 * math.pi))) for _ in range(2)
    )
    thickness = _uniform(rng, cfg.leather_thickness_m)
    up = _placement(rng, cfg, tilt=True, z_range=cfg.upper_top_z_m)
    so = _placement(rng, cfg, tilt=False, z_range=(cfg.sole_tray_z_m, cfg.sole_tray_z_m))
    lasting = tuple(
        (float(rng.uniform(0.0, cfg.lasting_mode_amp_m)), float(rng.uniform(0.0, 2.0 * math.pi))) for _ in range(4)
    )
    from .variation import draw_variation

    round2 = draw_variation(rng, cfg)  # last: the draws above keep their values
    return SampleParams(
        style=style,
        size_eu=size,
        side=side,
        material=material,
        youngs_modulus_pa=youngs,
        poisson_ratio=nu,
        press_pressure_pa=pressure,
        sole_undersize=cfg.sole_undersize,
        sole_scale_error=scale_err,
        sidewall_height_error_m=sw_err,
        sidewall_modes=(modes[0], modes[1]),
        upper_thickness_m=thickness,
        upper_placement=up,
        sole_placement=so,
        upper_lasting_modes=lasting,
        **round2,
    )
