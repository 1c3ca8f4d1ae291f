"""The style reference of world 2: a variation-free CAD nominal, not a world pair (issue 12, item 3).

``nominal_parts(style, size, side)`` builds the style's nominal lasted upper (every range at its middle,
no local lasting variation) and its nominal sole as designed (no shrinkage, no warp), placed on their
stations at the station centres with the toe along +x: what a factory's CAD library would hold. A bench
or a cell may give these to the pipeline as the style's reference; they carry no per-pair truth.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import WorldParamError
from .config import SOLE_MATERIALS, STYLES, World2Config
from .pair import _apply, mirror, station_pose
from .sole import build_sole, sole_params
from .upper import build_upper, upper_params

__all__ = ["nominal_parts"]


def nominal_parts(
    style: str, size: float, side: str = "right", cfg: World2Config | None = None, ring_points: int = 256
) -> dict[str, np.ndarray]:
    """Nominal upper and sole meshes in ``base_link``: keys ``upper_vertices``, ``upper_faces``,
    ``sole_vertices``, ``sole_faces`` ((v, 3) float64 metres; (f, 3) int64)."""
    if style not in STYLES:
        raise WorldParamError(f"unknown world-2 style {style!r}; choose from {', '.join(STYLES)}", key="style")
    st = STYLES[style]
    if size not in st.sizes or side not in ("left", "right"):
        raise WorldParamError(f"{style}: size must be one of {st.sizes} and side left/right", key="size")
    cfg = cfg or World2Config()
    mid = replace(cfg, last_length_var_m=0.0, last_width_var_m=0.0, last_spring_var_m=0.0, feather_radius_var=0.0,
                  waist_loose_max_m=0.0, toe_heel_fullness_m=0.0, cad_length_var_m=0.0, cad_spring_var_m=0.0,
                  warp_bow_m=0.0, lasting_margin_m=(float(np.mean(cfg.lasting_margin_m)),) * 2,
                  undersize_m=(float(np.mean(cfg.undersize_m)),) * 2, shrink=(0.0, 0.0))  # fmt: skip
    rng = np.random.default_rng(0)  # every draw is pinned by the zero-width ranges above
    up_p = replace(upper_params(st, size, rng, mid), leather=float(np.mean(st.leather_m)))
    mat = SOLE_MATERIALS[st.sole_materials[0]]
    so_p = replace(sole_params(st, size, rng, mid), material=mat.name, E=float(np.mean(mat.E_pa)),
                   nu=float(np.mean(mat.nu)))  # fmt: skip
    up = build_upper(st, up_p, ring_points)
    so = build_sole(st, so_p, ring_points)
    left = side == "left"
    out: dict[str, np.ndarray] = {}
    for name, v, f, flip, centre in (("upper", up.vertices, up.faces, True, cfg.upper_centre),
                                     ("sole", so.vertices, so.faces, False, cfg.sole_centre)):  # fmt: skip
        v, f = mirror(v, f, left)
        T = station_pose(0.0, flip, np.zeros(2), 0.0)
        p = _apply(T, v)
        z = np.mean(cfg.upper_top_z) - p[:, 2].max() if flip else cfg.tray_top_z - p[:, 2].min()
        p = p + np.array([centre[0] - p[:, 0].mean(), centre[1] - p[:, 1].mean(), z])
        out[f"{name}_vertices"], out[f"{name}_faces"] = p, f
    return out
