"""One world-2 pair: draw the hidden parameters, build upper and sole, attach, place both on their stations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.core.types import WorkItem

from ..errors import WorldParamError
from .attach import AttachResult, Placement, attach
from .config import STYLES, World2Config
from .sole import Sole, build_sole, sole_params
from .upper import Upper, build_upper, upper_params

__all__ = ["Pair2", "make_pair2", "station_pose", "mirror"]


@dataclass(frozen=True)
class Pair2:
    """A world-2 pair in ``base_link``: meshes, truth and hidden parameters (``params``: JSON-ready)."""

    item: WorkItem
    upper_vertices: np.ndarray
    upper_faces: np.ndarray
    sole_vertices: np.ndarray
    sole_faces: np.ndarray
    bite_line: np.ndarray
    feather_edge: np.ndarray
    upper_bond_faces: np.ndarray
    sole_bond_faces: np.ndarray
    deformed_sole_vertices: np.ndarray
    T_base_upper: np.ndarray
    T_base_sole: np.ndarray
    params: dict[str, Any]
    upper_material: str
    sole_material: str


def _rz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def station_pose(yaw: float, flip: bool, xy: np.ndarray, z: float) -> np.ndarray:
    """(4, 4) pose of a part frame in ``base_link``: yaw about z, upside down about x if ``flip``."""
    R = _rz(yaw) @ (np.diag([1.0, -1.0, -1.0]) if flip else np.eye(3))
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = [xy[0], xy[1], z]
    return T


def mirror(v: np.ndarray, faces: np.ndarray | None, left: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """A left shoe is the right-shoe build mirrored in y (faces re-wound to stay outward)."""
    if not left:
        return v, faces
    out = v * np.array([1.0, -1.0, 1.0])
    return out, None if faces is None else faces[:, ::-1].copy()


def _apply(T: np.ndarray, v: np.ndarray) -> np.ndarray:
    return v @ T[:3, :3].T + T[:3, 3]


def _draw_placement(rng: np.random.Generator, cfg: World2Config) -> Placement:
    d = np.clip(rng.normal(0.0, cfg.place_std_m, 2), -cfg.place_max_m, cfg.place_max_m)
    yaw = np.clip(rng.normal(0.0, cfg.place_yaw_std_deg), -cfg.place_yaw_max_deg, cfg.place_yaw_max_deg)
    return Placement(float(d[0]), float(d[1]), float(np.radians(yaw)))


def _poses(up: Upper, so: Sole, rng: np.random.Generator, cfg: World2Config, left: bool) -> tuple:
    uv, _ = mirror(up.vertices, None, left)
    sv, _ = mirror(so.vertices, None, left)
    yaw_u, yaw_s = np.radians(rng.uniform(-1, 1, 2) * cfg.station_yaw_deg)
    sh = rng.uniform(-1, 1, (2, 2)) * cfg.station_shift_m / np.sqrt(2.0)
    top = rng.uniform(*cfg.upper_top_z)
    Tu = station_pose(yaw_u, True, np.zeros(2), 0.0)
    c = _apply(Tu, uv)
    Tu[:3, 3] = [cfg.upper_centre[0] + sh[0, 0] - c[:, 0].mean(), cfg.upper_centre[1] + sh[0, 1] - c[:, 1].mean(),
                 top - c[:, 2].max()]  # fmt: skip
    Ts = station_pose(yaw_s, False, np.zeros(2), 0.0)
    c = _apply(Ts, sv)
    Ts[:3, 3] = [cfg.sole_centre[0] + sh[1, 0] - c[:, 0].mean(), cfg.sole_centre[1] + sh[1, 1] - c[:, 1].mean(),
                 cfg.tray_top_z - c[:, 2].min()]  # fmt: skip
    return Tu, Ts


def make_pair2(
    ss: np.random.SeedSequence, cfg: World2Config | None = None, *, style: str | None = None, item_id: str = "00000"
) -> Pair2:
    """Draw and build one pair (deterministic in ``ss``)."""
    cfg = cfg or World2Config()
    if style is not None and style not in STYLES:
        raise WorldParamError(f"unknown world-2 style {style!r}; choose from {', '.join(STYLES)}", key="style",
                              value=style)  # fmt: skip
    r_item, r_upper, r_sole, r_attach, r_pose = (np.random.default_rng(s) for s in ss.spawn(5))
    name = style or list(STYLES)[int(r_item.integers(len(STYLES)))]
    st = STYLES[name]
    size = float(st.sizes[int(r_item.integers(len(st.sizes)))])
    side = "left" if r_item.random() < 0.5 else "right"
    upper_mat = st.upper_materials[int(r_item.integers(len(st.upper_materials)))]
    up = build_upper(st, upper_params(st, size, r_upper, cfg), cfg.ring_points)
    so = build_sole(st, sole_params(st, size, r_sole, cfg), cfg.ring_points)
    place = _draw_placement(r_attach, cfg)
    pressure = float(r_attach.uniform(*cfg.press_pa))
    res = attach(up, so, place, pressure)
    left = side == "left"
    Tu, Ts = _poses(up, so, r_pose, cfg, left)
    uv, uf = mirror(up.vertices, up.faces, left)
    sv, sf = mirror(so.vertices, so.faces, left)
    params = _params(name, size, side, upper_mat, up, so, place, pressure, res)
    return Pair2(
        item=WorkItem(item_id=item_id, style=name, size_eu=size, side=side),
        upper_vertices=_apply(Tu, uv), upper_faces=uf, sole_vertices=_apply(Ts, sv), sole_faces=sf,
        bite_line=_apply(Tu, mirror(res.bite_line, None, left)[0]),
        feather_edge=_apply(Tu, mirror(res.feather_edge, None, left)[0]),
        upper_bond_faces=res.upper_bond_faces, sole_bond_faces=res.sole_bond_faces,
        deformed_sole_vertices=_apply(Tu, mirror(res.deformed_sole, None, left)[0]),
        T_base_upper=Tu, T_base_sole=Ts, params=params, upper_material=upper_mat, sole_material=so.p.material,
    )  # fmt: skip


#: The sole compound in the words the pipeline's CLI uses (``gluecell plan --material``): what an operator knows.
_PIPELINE_MATERIAL = {"eva": "eva", "pu": "pu", "tr_rubber": "rubber"}


def _params(name: str, size: float, side: str, upper_mat: str, up: Upper, so: Sole, place: Placement,
            pressure: float, res: AttachResult) -> dict[str, Any]:  # fmt: skip
    from dataclasses import asdict

    h = res.height
    return {
        "world": "world2",
        "style": name, "size_eu": size, "side": side, "upper_material": upper_mat,
        "material": _PIPELINE_MATERIAL[so.p.material],
        "upper": {k: float(v) for k, v in asdict(up.p).items()},
        "sole": {k: (v if isinstance(v, str) else float(v)) for k, v in asdict(so.p).items()},
        "attach": {"dx_m": place.dx, "dy_m": place.dy, "yaw_rad": place.yaw, "pressure_pa": pressure,
                   "hoop_strain": res.eps, "settle_z_m": float(res.rigid[0]), "settle_pitch_rad": float(res.rigid[1]),
                   "settle_roll_rad": float(res.rigid[2]), "contact_fraction": res.contact_fraction,
                   "edge_compression_mean_m": float(np.mean(res.delta_edge)),
                   "bite_height_mean_m": float(h.mean()), "bite_height_min_m": float(h.min()),
                   "bite_height_max_m": float(h.max())},
        "upper_perimeter_m": up.outline.length, "cavity_perimeter_m": so.cavity.length,
    }  # fmt: skip
