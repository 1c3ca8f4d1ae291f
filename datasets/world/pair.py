"""One synthetic pair: meshes placed on their stations, the true bite line and bond regions.

``make_pair(seed)`` draws the hidden truth, builds the last, the lasted upper and the free sole,
presses the sole on (:mod:`gluecell.datasets.world.attach`) and places everything in ``base_link``
(DESIGN.md "Interfaces"): the upper bottom-up on its fixture at the upper station, the sole
footbed-up on its tray at the sole station. A left part is the mirror image (in y) of the right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gluecell.core.types import WorkItem

from .attach import AttachResult, simulate_attach
from .config import WorldConfig
from .last import LastGrid, build_last, grid_mesh, orient_outward, quad_face
from .params import SampleParams, draw_params
from .parts import SoleGrid, sole_grid, upper_grid
from .styles import style_spec

if TYPE_CHECKING:
    import trimesh

__all__ = [
    "WorldPair",
    "make_pair",
    "make_pair_detailed",
    "make_nominal_pair",
    "nominal_params",
    "PairDetails",
    "BITE_STEP_M",
]

#: Target spacing of the resampled bite line (the contract asks for <= 1 mm).
BITE_STEP_M = 0.9e-3


@dataclass(frozen=True)
class WorldPair:
    """A synthetic pair and its ground truth (base_link, metres).

    Attributes:
        item: the work item (id, style, size, side).
        upper_mesh: lasted upper, bottom-up at the upper station, watertight.
        sole_mesh: the sole in its free state, footbed-up at the sole station, watertight.
        bite_line: (m, 3) float64 true bite line on the upper surface; closed (last point not
            repeated), ordered, spacing <= 1 mm.
        feather_edge: (k, 3) float64 the upper's feather edge, closed polyline on its surface.
        upper_bond_faces: (F_u,) bool over ``upper_mesh.faces``.
        sole_bond_faces: (F_s,) bool over ``sole_mesh.faces``.
        deformed_sole_vertices: (V_s, 3) float64 ``sole_mesh`` vertices after pressing onto the
            upper, base_link at the upper station.
        T_base_upper, T_base_sole: (4, 4) float64 placement of each part frame in base_link.
        params: hidden per-sample truth.

    The arrays are read-only copies; the meshes are the pair's own (copy them before editing).
    """

    item: WorkItem
    upper_mesh: trimesh.Trimesh
    sole_mesh: trimesh.Trimesh
    bite_line: np.ndarray
    feather_edge: np.ndarray
    upper_bond_faces: np.ndarray
    sole_bond_faces: np.ndarray
    deformed_sole_vertices: np.ndarray
    T_base_upper: np.ndarray
    T_base_sole: np.ndarray
    params: SampleParams

    def __post_init__(self) -> None:
        for name in _ARRAYS:
            a = np.array(getattr(self, name), copy=True)
            a.setflags(write=False)
            object.__setattr__(self, name, a)


_ARRAYS = (
    "bite_line",
    "feather_edge",
    "upper_bond_faces",
    "sole_bond_faces",
    "deformed_sole_vertices",
    "T_base_upper",
    "T_base_sole",
)


@dataclass(frozen=True)
class PairDetails:
    """Intermediate truth kept for tests and analysis (part frames, right-foot construction)."""

    last: LastGrid
    upper: np.ndarray
    sole: SoleGrid
    attach: AttachResult


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _transform(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ T[:3, :3].T + T[:3, 3]


def _upper_pose(params: SampleParams, cfg: WorldConfig, verts: np.ndarray) -> np.ndarray:
    """Upper bottom-up: flip about x, tilt, yaw; highest point (its bottom) at ``top_z_m``."""
    pl = params.upper_placement
    R = _rot("z", pl.yaw_deg) @ _rot("x", 180.0) @ _rot("x", pl.roll_deg) @ _rot("y", pl.pitch_deg)
    z = verts @ R[2]
    height = float(z.max() - z.min())
    top = max(pl.top_z_m, height + cfg.upper_floor_clearance_m)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = (cfg.upper_station_xy_m[0] + pl.dx_m, cfg.upper_station_xy_m[1] + pl.dy_m, top - z.max())
    return T


def _sole_pose(params: SampleParams, cfg: WorldConfig, verts: np.ndarray) -> np.ndarray:
    """Sole footbed-up on its tray: its lowest point (a warped sole rests on its low points) at ``top_z_m``."""
    pl = params.sole_placement
    T = np.eye(4)
    T[:3, :3] = _rot("z", pl.yaw_deg)
    T[:3, 3] = (cfg.sole_station_xy_m[0] + pl.dx_m, cfg.sole_station_xy_m[1] + pl.dy_m, pl.top_z_m - verts[:, 2].min())
    return T


def _bite_line(upper: np.ndarray, verts: np.ndarray, faces: np.ndarray, res: AttachResult) -> np.ndarray:
    """Bite points resampled to <= BITE_STEP_M and projected exactly onto the upper's faces."""
    import trimesh

    pts = res.bite_points
    n = len(pts)
    closed = np.vstack([pts, pts[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    m = int(np.ceil(cum[-1] / BITE_STEP_M))
    t = np.linspace(0.0, cum[-1], m + 1)[:-1]
    seg_i = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, n - 1)
    f = (t - cum[seg_i]) / np.maximum(seg[seg_i], 1e-12)
    line = closed[seg_i] + f[:, None] * (closed[seg_i + 1] - closed[seg_i])
    # candidate quads: the bands around both ends' rings at this station, +-1
    ring = res.bite_ring
    lo = np.floor(np.minimum(ring[seg_i], ring[(seg_i + 1) % n])).astype(int) - 1
    cand_j = np.clip(lo[:, None] + np.arange(4)[None, :], 0, upper.shape[0] - 2)
    face0 = quad_face(cand_j, seg_i[:, None], upper.shape[1])
    cand = np.concatenate([face0, face0 + 1], axis=1)
    tri = verts[faces[cand.ravel()]]
    q = np.repeat(line, cand.shape[1], axis=0)
    closest = trimesh.triangles.closest_point(tri, q).reshape(m, cand.shape[1], 3)
    d = np.linalg.norm(closest - line[:, None], axis=2)
    return closest[np.arange(m), np.argmin(d, axis=1)]


def _mesh(grid: np.ndarray, mirror: bool) -> trimesh.Trimesh:
    import trimesh

    v, f = grid_mesh(grid)
    f = orient_outward(v, f)
    if mirror:
        v = v * np.array([1.0, -1.0, 1.0])
        f = f[:, ::-1].copy()
    return trimesh.Trimesh(vertices=v, faces=f, process=False, validate=False)


def _item_id(seed: int | np.random.SeedSequence) -> str:
    if isinstance(seed, np.random.SeedSequence):
        key = "-".join(str(k) for k in seed.spawn_key)
        return f"world-{seed.entropy}" + (f"-{key}" if key else "")
    return f"world-{int(seed)}"


def make_pair_detailed(
    seed: int | np.random.SeedSequence,
    cfg: WorldConfig | None = None,
    *,
    style: str | None = None,
    size_eu: float | None = None,
    side: str | None = None,
    item_id: str | None = None,
    params: SampleParams | None = None,
) -> tuple[WorldPair, PairDetails]:
    """Like :func:`make_pair`, also returning the intermediate truth (part frames).

    ``params`` given: build the pair from these hidden values instead of drawing them from ``seed`` (the
    variation budget holds one variation at neutral this way; ``seed`` then only names the item).
    """
    cfg = cfg if cfg is not None else WorldConfig()
    if params is None:
        params = draw_params(np.random.default_rng(seed), cfg, style=style, size_eu=size_eu, side=side)
    spec = style_spec(params.style)
    last = build_last(spec, params.size_eu, cfg.n_perimeter)
    upper = upper_grid(last, params.upper_thickness_m, cfg, lasting_modes=params.upper_lasting_modes, params=params)
    sole = sole_grid(last, params, cfg)
    res = simulate_attach(last, upper, sole, params, cfg)
    mirror = params.side == "left"
    flip = np.array([1.0, -1.0, 1.0]) if mirror else np.ones(3)
    upper_mesh = _mesh(upper, mirror)
    sole_mesh = _mesh(sole.points, mirror)
    bite_local = _bite_line(upper, *grid_mesh(upper), res)
    T_u = _upper_pose(params, cfg, upper_mesh.vertices)
    T_s = _sole_pose(params, cfg, sole_mesh.vertices)
    upper_mesh.apply_transform(T_u)
    sole_mesh.apply_transform(T_s)
    item = WorkItem(item_id=item_id or _item_id(seed), style=params.style, size_eu=params.size_eu, side=params.side)
    pair = WorldPair(
        item=item,
        upper_mesh=upper_mesh,
        sole_mesh=sole_mesh,
        bite_line=_transform(T_u, bite_local * flip),
        feather_edge=_transform(T_u, upper[last.j_feather] * flip),
        upper_bond_faces=res.upper_bond_faces.copy(),
        sole_bond_faces=res.sole_bond_faces.copy(),
        deformed_sole_vertices=_transform(T_u, res.deformed_sole.reshape(-1, 3) * flip),
        T_base_upper=T_u,
        T_base_sole=T_s,
        params=params,
    )
    return pair, PairDetails(last=last, upper=upper, sole=sole, attach=res)


def make_pair(
    seed: int | np.random.SeedSequence,
    cfg: WorldConfig | None = None,
    *,
    style: str | None = None,
    size_eu: float | None = None,
    side: str | None = None,
    item_id: str | None = None,
) -> WorldPair:
    """Make one synthetic pair with its ground truth.

    Args:
        seed: int or ``numpy.random.SeedSequence``; the same seed gives identical arrays.
        cfg: world ranges and constants (default ``WorldConfig()``).
        style: one of ``STYLES``; drawn when None.
        size_eu: EU size 36-46; drawn (integer) when None.
        side: "left" or "right"; drawn when None.
        item_id: work item id; ``world-<seed>`` when None.

    Raises:
        WorldParamError: unknown style or side, size out of range.
    """
    return make_pair_detailed(seed, cfg, style=style, size_eu=size_eu, side=side, item_id=item_id)[0]


def nominal_params(style: str, size_eu: float, side: str, cfg: WorldConfig | None = None) -> SampleParams:
    """The CAD nominal of a style/size/side: every hidden variation at its neutral value (nominal leather, no
    lasting or sole variation, the style's most common material at mid range, mid pressure, no placement
    error, each part centred on its station with its toe along +x and the upper's bottom at the middle of
    its height band)."""
    from dataclasses import replace

    from .params import Placement, check_side, check_size
    from .variation import nominal_values

    cfg = cfg if cfg is not None else WorldConfig()
    base = draw_params(np.random.default_rng(0), cfg, style=style, size_eu=check_size(size_eu), side=check_side(side))
    up = Placement(0.0, 0.0, 0.0, 0.0, 0.0, 0.5 * (cfg.upper_top_z_m[0] + cfg.upper_top_z_m[1]))
    so = Placement(0.0, 0.0, 0.0, 0.0, 0.0, cfg.sole_tray_z_m)
    return replace(base, upper_placement=up, sole_placement=so, **nominal_values(style, cfg))


def make_nominal_pair(style: str, size_eu: float, side: str, cfg: WorldConfig | None = None) -> WorldPair:
    """The variation-free CAD pair of a style/size/side (what a plant has as CAD of its last and sole mould),
    placed at the station centres; its bite line is the design's line under the nominal press."""
    params = nominal_params(style, size_eu, side, cfg)
    return make_pair_detailed(0, cfg, params=params, item_id=f"cad-{style}-{size_eu:g}-{side}")[0]
