"""World 2's variation budget: each hidden variation's effect on the true bite height, the others held.

    python -m gluecell.datasets.world2.budget [--draws 6] [--seed 0]

For every style, a nominal pair (every range at its middle, no local lasting variation, no placement
error) is attached; then one variation at a time is drawn from its range and the pair attached again.
The figures are p95s over the line and the draws (mm) of the line's 3D shift and of its height change:
what a line taught on one pair cannot follow and what per-pair sensing has to resolve.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .attach import Placement, attach
from .config import SOLE_MATERIALS, STYLES, World2Config
from .sole import build_sole, sole_params
from .upper import build_upper, upper_params

__all__ = ["variation_budget", "VARIATIONS"]

_N = 256

def _pm(r: np.random.Generator, a: float) -> float:
    return float(r.uniform(-1, 1) * a)


def _placement(r: np.random.Generator, c: World2Config) -> dict[str, float]:
    d = np.clip(r.normal(0, c.place_std_m, 2), -c.place_max_m, c.place_max_m)
    yaw = np.clip(r.normal(0, c.place_yaw_std_deg), -c.place_yaw_max_deg, c.place_yaw_max_deg)
    return {"dx": float(d[0]), "dy": float(d[1]), "yaw": float(np.radians(yaw))}


def _stiffness(r: np.random.Generator, material: str) -> dict[str, float]:
    m = SOLE_MATERIALS[material]
    return {"E": float(r.uniform(*m.E_pa)), "nu": float(r.uniform(*m.nu))}


#: name -> (part, draw(rng, cfg, style, nominal params of the part) -> replacements)
VARIATIONS: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
    "last_length": ("upper", lambda r, c, s, p: {"length": p.length + _pm(r, c.last_length_var_m)}),
    "last_width": ("upper", lambda r, c, s, p: {"ball_width": p.ball_width + _pm(r, c.last_width_var_m)}),
    "last_toe_spring": ("upper", lambda r, c, s, p: {"toe_spring": p.toe_spring + _pm(r, c.last_spring_var_m)}),
    "feather_radius": ("upper", lambda r, c, s, p: {"feather_radius": s.feather_radius_m
                                                    * (1 + _pm(r, c.feather_radius_var))}),
    "leather": ("upper", lambda r, c, s, p: {"leather": r.uniform(*s.leather_m)}),
    "lasting_margin": ("upper", lambda r, c, s, p: {"margin": r.uniform(*c.lasting_margin_m)}),
    "loose_waist": ("upper", lambda r, c, s, p: {"waist_loose": r.uniform(0, c.waist_loose_max_m)}),
    "toe_heel_fullness": ("upper", lambda r, c, s, p: {"toe_full": _pm(r, c.toe_heel_fullness_m),
                                                       "heel_full": _pm(r, c.toe_heel_fullness_m)}),
    "sole_cad_length": ("sole", lambda r, c, s, p: {"cad_length": p.cad_length + _pm(r, c.cad_length_var_m)}),
    "sole_cad_toe_spring": ("sole", lambda r, c, s, p: {"cad_spring": p.cad_spring + _pm(r, c.cad_spring_var_m)}),
    "undersize": ("sole", lambda r, c, s, p: {"undersize": r.uniform(*c.undersize_m)}),
    "shrinkage": ("sole", lambda r, c, s, p: {"shrink_x": r.uniform(*c.shrink), "shrink_y": r.uniform(*c.shrink)}),
    "warp_bow": ("sole", lambda r, c, s, p: {"bow": _pm(r, c.warp_bow_m)}),
    "sole_stiffness": ("sole", lambda r, c, s, p: _stiffness(r, p.material)),
    "placement": ("attach", lambda r, c, s, p: _placement(r, c)),
    "press_pressure": ("attach", lambda r, c, s, p: {"pressure": r.uniform(*c.press_pa)}),
}  # fmt: skip


def _nominal(style_name: str, cfg: World2Config) -> tuple[Any, Any, dict[str, float]]:
    st = STYLES[style_name]
    mid = replace(cfg, last_length_var_m=0.0, last_width_var_m=0.0, last_spring_var_m=0.0, feather_radius_var=0.0,
                  waist_loose_max_m=0.0, toe_heel_fullness_m=0.0, cad_length_var_m=0.0, cad_spring_var_m=0.0,
                  warp_bow_m=0.0, lasting_margin_m=(np.mean(cfg.lasting_margin_m),) * 2,
                  undersize_m=(np.mean(cfg.undersize_m),) * 2, shrink=(np.mean(cfg.shrink),) * 2)  # fmt: skip
    rng = np.random.default_rng(0)
    up = replace(upper_params(st, st.ref_size, rng, mid), leather=float(np.mean(st.leather_m)))
    mat = SOLE_MATERIALS[st.sole_materials[0]]
    so = replace(sole_params(st, st.ref_size, rng, mid), material=mat.name, E=float(np.mean(mat.E_pa)),
                 nu=float(np.mean(mat.nu)))  # fmt: skip
    return up, so, {"dx": 0.0, "dy": 0.0, "yaw": 0.0, "pressure": float(np.mean(cfg.press_pa))}


def _line(style_name: str, up: Any, so: Any, att: dict[str, float]) -> np.ndarray:
    """(1000, 4): the bite line's points (shoe frame) and heights on a common outline grid."""
    st = STYLES[style_name]
    res = attach(build_upper(st, up, _N), build_sole(st, so, _N), Placement(att["dx"], att["dy"], att["yaw"]),
                 att["pressure"])  # fmt: skip
    grid = np.arange(1000) / 1000.0
    cols = [*res.bite_line.T, res.height]
    return np.column_stack([np.interp(grid, res.u, c, period=1.0) for c in cols])


def variation_budget(draws: int = 6, seed: int = 0, cfg: World2Config | None = None) -> dict[str, dict[str, Any]]:
    """Style -> variation -> ``[p95 |line shift|, p95 |height change|]`` (mm) against the style's nominal pair.

    The line shift is the 3D distance between the two lines' points at the same outline parameter
    (it includes sideways moves of the side, e.g. a loose waist); the height change is along the side.
    """
    cfg = cfg or World2Config()
    out: dict[str, dict[str, float]] = {}
    for name in STYLES:
        up0, so0, att0 = _nominal(name, cfg)
        h0 = _line(name, up0, so0, att0)
        row = {}
        for k, (var, (part, draw)) in enumerate(VARIATIONS.items()):
            rng = np.random.default_rng([seed, k])
            dev, dh = [], []
            for _ in range(draws):
                nominal = {"upper": up0, "sole": so0, "attach": None}[part]
                change = draw(rng, cfg, STYLES[name], nominal)
                up = replace(up0, **change) if part == "upper" else up0
                so = replace(so0, **change) if part == "sole" else so0
                att = {**att0, **change} if part == "attach" else att0
                line = _line(name, up, so, att)
                dev.append(np.linalg.norm(line[:, :3] - h0[:, :3], axis=1))
                dh.append(np.abs(line[:, 3] - h0[:, 3]))
            row[var] = [round(float(np.percentile(np.concatenate(d), 95)) * 1e3, 3) for d in (dev, dh)]
        out[name] = row
    return out


def main() -> None:
    """Print the budget as JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(variation_budget(args.draws, args.seed), indent=1))


if __name__ == "__main__":
    main()
