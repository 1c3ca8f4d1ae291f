"""The virtual RealSense scanner of the synthetic world: ``scan_part(pair, part, rng) -> ScanShot``.

Each station has its own fixed D405-like cameras looking at the station's target point: the sole
station ``cfg.views`` (default 3: one above-front, two oblique from behind either side, into the cup),
the upper station ``cfg.upper_views`` (default 5 low cameras that see the bite-line band, 1 above, 1 level
with the toe).
Every view ray-casts the part plus its surroundings (floor z = 0, the sole's tray, the upper's
fixture post), then applies the sensor model of :mod:`.scanner_sensor` (stereo noise ∝ z², flying
pixels, dropouts, quantisation).

Hidden truth: each frame's ``T_base_cam`` is what the cell *believes* (the true pose composed with
a small hand-eye calibration error); the true poses come back separately in
``ScanShot.T_base_cam_true`` and must stay on the world's side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gluecell.core.config import CellConfig, StationConfig
from gluecell.core.errors import ConfigError, ValidationError
from gluecell.core.types import PARTS, DepthFrame
from gluecell.core.validate import as_pose

from .scanner_camera import (
    DEFAULT_VIEWS,
    UPPER_VIEWS,
    CellCameras,
    D4xxCamera,
    ViewSpec,
    draw_camera_errors,
    draw_pose_error,
    perturb_pose,
    view_pose,
)
from .scanner_render import Material, RayScene, SceneObject, render_mesh_depth
from .scanner_sensor import SensorArtifacts, apply_sensor, shade_color

__all__ = [
    "D4xxCamera",
    "ViewSpec",
    "Material",
    "SceneObject",
    "RayScene",
    "SensorArtifacts",
    "ScannerConfig",
    "ScanShot",
    "CellCameras",
    "draw_cell_cameras",
    "STYLE_MATERIALS",
    "station_camera_poses",
    "environment_objects",
    "render_view",
    "render_station",
    "render_scene",
    "render_mesh_depth",
    "scan_part",
]

#: Part appearance per style, (upper, sole) (chosen to span easy to hard for passive stereo):
#: sneaker = white matte textile on white EVA; court = beige semi-gloss leather (glossy patches)
#: on a tan TR sole; boot = dark brown leather (some regions dark enough to drop out) on dark
#: grey rubber.
STYLE_MATERIALS: dict[str, tuple[Material, Material]] = {
    "sneaker": (
        Material(rgb=(0.78, 0.78, 0.75), texture=0.12, texture_scale_m=0.02, grain=0.10),
        Material(rgb=(0.85, 0.85, 0.82), texture=0.08, texture_scale_m=0.04, grain=0.03),
    ),
    "court": (
        Material(rgb=(0.58, 0.44, 0.34), texture=0.15, texture_scale_m=0.03, gloss=0.6, gloss_cover=0.4, grain=0.05),
        Material(rgb=(0.45, 0.35, 0.25), texture=0.15, texture_scale_m=0.03, gloss=0.2, gloss_cover=0.3, grain=0.06),
    ),
    "boot": (
        Material(rgb=(0.17, 0.11, 0.07), texture=0.35, texture_scale_m=0.025, gloss=0.25, gloss_cover=0.3, grain=0.12),
        Material(rgb=(0.10, 0.10, 0.10), texture=0.25, texture_scale_m=0.03, grain=0.05),
    ),
}
#: Fine grain (``Material.grain``, what passive stereo matches on; chosen): the sneaker's woven textile 0.10,
#: its white EVA sole nearly plain 0.03; the court's smooth semi-gloss leather 0.05 and tan TR 0.06; the boot's
#: grained leather 0.12 and its dark rubber 0.05. Plain white EVA therefore gets the 3.5 x texture gain
#: (FACTS.md: white matte targets 3-5 x the formula), the textile ~1.2 x.


@dataclass(frozen=True)
class ScannerConfig:
    """Virtual scanner settings (loadable from a ``[scanner]`` TOML table with strict keys).

    Attributes:
        camera: the depth camera (D405-like by default; see :class:`D4xxCamera` for sources).
        artifacts: non-Gaussian sensor effects (see :class:`SensorArtifacts`).
        views: camera placements around the sole station's target (default: 3 views from above).
        upper_views: camera placements around the upper station's target (default: 5 low + 1 above + 1 at the toe).
        upper_target_z: height of the upper station's look-at point, metres (the upper stands
            bottom-up with its bottom ~0.15-0.20 m above the floor, DESIGN.md; 0.13 m centres the
            bottom and the bite-line band below it).
        sole_target_z: height of the sole station's look-at point (tread at ~0.02 m, DESIGN.md).
        handeye_trans_std_m: per-axis std of the hidden hand-eye translation error (0.2 mm).
        handeye_rot_std_deg: per-axis std of the hidden hand-eye rotation error (0.1°).
        depth_scale_error_max: each camera's depth scale error, uniform +-max (chosen 0.3 %: the residual after
            the cell's depth (tare) calibration on a flat target at the working distance; the D405 datasheet's
            +-2 % is an uncalibrated unit at 50 cm, which would put 3-5 mm between overlapping views at
            0.2 m; set 0.02 to simulate uncalibrated cameras).
        depth_bias_max_m: each camera's depth offset, uniform +-max (chosen 0.1 mm).
        style_materials: take the part's look from :data:`STYLE_MATERIALS` by the pair's style.
        upper_material, sole_material: look of the parts when the style is unknown or not used.
        floor_material: the floor/bench plane z = 0 (grey, matte).
        fixture_material: the sole tray and the upper's fixture post (anodised, dark grey, matte).
        tray_margin_m: how far the tray extends beyond the sole's footprint (chosen 25 mm).
        post_radius_m: radius of the upper's fixture post (chosen 15 mm, a last-pin holder).
        floor_half_size_m: half size of the modelled floor square around the station (0.6 m).
        frame_interval_s: time between the views' stamps (cameras triggered one after another).
    """

    camera: D4xxCamera = field(default_factory=D4xxCamera)
    artifacts: SensorArtifacts = field(default_factory=SensorArtifacts)
    views: tuple[ViewSpec, ...] = DEFAULT_VIEWS
    upper_views: tuple[ViewSpec, ...] = UPPER_VIEWS
    upper_target_z: float = 0.13
    sole_target_z: float = 0.03
    handeye_trans_std_m: float = 2e-4
    handeye_rot_std_deg: float = 0.1
    depth_scale_error_max: float = 0.003
    depth_bias_max_m: float = 1e-4
    style_materials: bool = True
    upper_material: Material = field(default_factory=lambda: STYLE_MATERIALS["sneaker"][0])
    sole_material: Material = field(default_factory=lambda: STYLE_MATERIALS["sneaker"][1])
    floor_material: Material = field(default_factory=lambda: Material(rgb=(0.40, 0.40, 0.42), texture=0.0))
    fixture_material: Material = field(default_factory=lambda: Material(rgb=(0.22, 0.24, 0.27), texture=0.0))
    tray_margin_m: float = 0.025
    post_radius_m: float = 0.015
    floor_half_size_m: float = 0.6
    frame_interval_s: float = 0.05

    def __post_init__(self) -> None:
        if not self.views or not self.upper_views:
            raise ConfigError("scanner.views/upper_views: at least one view each is needed", key="scanner.views")
        if self.handeye_trans_std_m < 0 or self.handeye_rot_std_deg < 0:
            raise ConfigError("scanner.handeye_*_std: must be >= 0")
        if not (0 <= self.depth_scale_error_max < 0.2 and 0 <= self.depth_bias_max_m < 0.01):
            raise ConfigError("scanner.depth_scale_error_max in [0, 0.2) and depth_bias_max_m in [0, 0.01) required")
        if self.tray_margin_m < 0 or self.post_radius_m <= 0 or self.floor_half_size_m <= 0:
            raise ConfigError("scanner: tray_margin_m >= 0, post_radius_m > 0, floor_half_size_m > 0 required")


@dataclass(frozen=True)
class ScanShot:
    """One scan of one part by all of its station's cameras.

    Attributes:
        frames: one :class:`DepthFrame` per camera; ``T_base_cam`` = the cell's calibrated belief.
        T_base_cam_true: (4, 4) float64 true camera poses, one per frame (hidden truth).
        part: "upper" or "sole".
    """

    frames: list[DepthFrame]
    T_base_cam_true: list[np.ndarray]
    part: str = ""

    def __post_init__(self) -> None:
        if len(self.frames) != len(self.T_base_cam_true):
            raise ValidationError("ScanShot: one true pose per frame is required")
        object.__setattr__(self, "T_base_cam_true", [as_pose("T_base_cam_true", T) for T in self.T_base_cam_true])


def draw_cell_cameras(
    rng: np.random.Generator, cfg: ScannerConfig | None = None, *, trans_std_m: float | None = None,
    rot_std_deg: float | None = None,
) -> CellCameras:  # fmt: skip
    """Draw one cell's fixed per-camera errors: a hand-eye error (per-axis normal, ``cfg`` stds unless given)
    and a depth scale/bias (uniform within ``cfg``'s bounds) for every view of both stations."""
    cfg = cfg if cfg is not None else ScannerConfig()
    t = cfg.handeye_trans_std_m if trans_std_m is None else trans_std_m
    r = cfg.handeye_rot_std_deg if rot_std_deg is None else rot_std_deg
    counts = {"upper": len(cfg.upper_views), "sole": len(cfg.views)}
    return draw_camera_errors(rng, counts, (t, r), (cfg.depth_scale_error_max, cfg.depth_bias_max_m))


def _station(part: str, cell: CellConfig) -> StationConfig:
    if part not in PARTS:
        raise ValidationError(f"part: {part!r} is not one of {', '.join(PARTS)}", field="part")
    return cell.upper if part == "upper" else cell.sole


def station_camera_poses(part: str, cfg: ScannerConfig | None = None, cell: CellConfig | None = None) -> list:
    """True poses of the station's cameras (fixed to the station, independent of the part).

    Args:
        part: "upper" or "sole".
        cfg: scanner settings (default ``ScannerConfig()``).
        cell: station layout (default ``CellConfig()``).

    Returns:
        list of (4, 4) float64 ``T_base_cam`` (optical frame), one per view of the station.
    """
    cfg = cfg if cfg is not None else ScannerConfig()
    st = _station(part, cell if cell is not None else CellConfig())
    z = cfg.upper_target_z if part == "upper" else cfg.sole_target_z
    target = np.array([st.centre[0], st.centre[1], z])
    return [view_pose(target, v) for v in (cfg.upper_views if part == "upper" else cfg.views)]


def _box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed axis-aligned box (8 vertices, 12 outward triangles)."""
    v = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    f = np.array(
        [0, 1, 3, 0, 3, 2, 4, 6, 7, 4, 7, 5, 0, 4, 5, 0, 5, 1, 2, 3, 7, 2, 7, 6, 0, 2, 6, 0, 6, 4, 1, 5, 7, 1, 7, 3]
    )
    return v, f.reshape(-1, 3).astype(np.int64)


def _cylinder(centre_xy: np.ndarray, radius: float, z0: float, z1: float, n: int = 24) -> tuple:
    """Closed vertical cylinder (n-gon prism) from z0 to z1."""
    a = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    ring = np.column_stack([centre_xy[0] + radius * np.cos(a), centre_xy[1] + radius * np.sin(a)])
    v = np.vstack(
        [
            np.column_stack([ring, np.full(n, z0)]),
            np.column_stack([ring, np.full(n, z1)]),
            [[*centre_xy, z0], [*centre_xy, z1]],
        ]
    )
    i = np.arange(n)
    j = (i + 1) % n
    side = np.vstack([np.column_stack([i, j, n + j]), np.column_stack([i, n + j, n + i])])
    caps = np.vstack(
        [np.column_stack([np.full(n, 2 * n), j, i]), np.column_stack([np.full(n, 2 * n + 1), n + i, n + j])]
    )
    return v, np.vstack([side, caps]).astype(np.int64)


def environment_objects(
    part: str, part_vertices: np.ndarray, cfg: ScannerConfig | None = None, cell: CellConfig | None = None
) -> list[SceneObject]:
    """Floor, plus the sole's tray or the upper's fixture post, fitted to the placed part.

    Args:
        part: "upper" or "sole".
        part_vertices: (v, 3) float64 vertices of the placed part, metres, base_link.
        cfg: scanner settings (default ``ScannerConfig()``).
        cell: station layout (default ``CellConfig()``).

    Returns:
        scene objects named "floor", "tray" / "fixture".
    """
    cfg = cfg if cfg is not None else ScannerConfig()
    st = _station(part, cell if cell is not None else CellConfig())
    pv = np.asarray(part_vertices, dtype=np.float64)
    c, s = np.asarray(st.centre, dtype=np.float64), cfg.floor_half_size_m
    floor_v = np.array(
        [[c[0] - s, c[1] - s, 0.0], [c[0] + s, c[1] - s, 0.0], [c[0] + s, c[1] + s, 0.0], [c[0] - s, c[1] + s, 0.0]]
    )
    objs = [SceneObject(floor_v, np.array([[0, 1, 2], [0, 2, 3]]), cfg.floor_material, "floor")]
    zmin = float(pv[:, 2].min())
    if part == "sole" and zmin > 0.002:  # tray top just under the tread
        lo = np.array([*(pv[:, :2].min(axis=0) - cfg.tray_margin_m), 0.0])
        hi = np.array([*(pv[:, :2].max(axis=0) + cfg.tray_margin_m), zmin - 1e-4])
        objs.append(SceneObject(*_box(lo, hi), cfg.fixture_material, "tray"))
    elif part == "upper" and zmin > 0.005:  # post from the floor into the upper's opening
        low = pv[pv[:, 2] < zmin + 0.015]
        objs.append(
            SceneObject(
                *_cylinder(low[:, :2].mean(axis=0), cfg.post_radius_m, 0.0, zmin + 0.015),
                cfg.fixture_material,
                "fixture",
            )
        )
    return objs


def render_view(
    scene: RayScene,
    T_base_cam_true: np.ndarray,
    T_base_cam_believed: np.ndarray,
    camera: D4xxCamera,
    artifacts: SensorArtifacts,
    rng: np.random.Generator,
    *,
    stamp: float = 0.0,
    serial: str = "",
    depth_error: tuple[float, float] = (0.0, 0.0),
) -> DepthFrame:
    """Render one camera of a prepared scene: ray cast from the true pose, label with the believed one;
    ``depth_error`` = the camera's (scale error, bias m)."""
    hits = scene.cast(T_base_cam_true, camera)
    depth = apply_sensor(hits, camera, artifacts, rng, depth_error)
    color = shade_color(hits, artifacts, rng)
    return DepthFrame(depth, camera.depth_scale, camera.intrinsics, T_base_cam_believed, color, stamp, serial)


def render_scene(
    meshes: Sequence[object],
    T_base_cam_true: np.ndarray,
    T_base_cam_believed: np.ndarray,
    camera: D4xxCamera,
    rng: np.random.Generator,
    *,
    materials: Sequence[Material] | None = None,
    artifacts: SensorArtifacts | None = None,
    stamp: float = 0.0,
    serial: str = "",
) -> DepthFrame:
    """One simulated D4xx frame of arbitrary meshes.

    Args:
        meshes: trimesh-like meshes (``.vertices`` (v, 3) metres, ``.faces``) or :class:`SceneObject`,
            all in base_link.
        T_base_cam_true: (4, 4) float64 true camera pose (rays are cast from here).
        T_base_cam_believed: (4, 4) float64 pose written into the frame (what the cell believes).
        camera: the camera model.
        rng: seeds the textures and every sensor effect (same seed, same bytes).
        materials: one per mesh (default: matte grey ``Material()``); ignored for SceneObjects.
        artifacts: sensor effects (default ``SensorArtifacts()``); ``SensorArtifacts.ideal()`` with a
            camera of ``noise_factor=0`` gives exact (quantised) depth.

    Returns:
        the frame: uint16 depth (0 = no data), aligned uint8 RGB, intrinsics, believed pose.
    """
    mats = list(materials) if materials is not None else [Material()] * len(meshes)
    if len(mats) != len(meshes):
        raise ValidationError(f"render_scene: {len(meshes)} meshes but {len(mats)} materials")
    objs = [m if isinstance(m, SceneObject) else SceneObject.from_mesh(m, mat) for m, mat in zip(meshes, mats)]
    art = artifacts if artifacts is not None else SensorArtifacts()
    scene = RayScene(objs, rng)
    return render_view(scene, T_base_cam_true, T_base_cam_believed, camera, art, rng, stamp=stamp, serial=serial)


def _part_material(pair: object, part: str, cfg: ScannerConfig) -> Material:
    style = getattr(getattr(pair, "item", None), "style", None)
    if cfg.style_materials and style in STYLE_MATERIALS:
        return STYLE_MATERIALS[style][0 if part == "upper" else 1]
    return cfg.upper_material if part == "upper" else cfg.sole_material


def scan_part(
    pair: object,
    part: str,
    rng: np.random.Generator,
    cfg: ScannerConfig | None = None,
    *,
    handeye_trans_std_m: float | None = None,
    handeye_rot_std_deg: float | None = None,
    handeye_errors: Sequence[np.ndarray] | None = None,
    cell: CellConfig | None = None,
    stamp: float = 0.0,
    cameras: CellCameras | None = None,
) -> ScanShot:
    """Scan one part of a world pair with all cameras of its station.

    Args:
        pair: a WorldPair (uses ``upper_mesh`` / ``sole_mesh``, placed in base_link, and ``item.style``).
        part: "upper" or "sole".
        rng: source of all randomness (textures, hand-eye errors, sensor noise).
        cfg: scanner settings (default ``ScannerConfig()``).
        handeye_trans_std_m, handeye_rot_std_deg: hand-eye error std (default: from ``cfg``).
        handeye_errors: fixed (4, 4) errors, one per view (e.g. a cell's constant calibration error);
            when given, no error is drawn.
        cell: station layout (default ``CellConfig()``).
        stamp: time of the first frame, seconds.
        cameras: the cell's fixed per-camera errors (:func:`draw_cell_cameras`): their hand-eye errors
            (unless ``handeye_errors`` is given) and depth scale/bias. None: hand-eye errors drawn per frame
            and depth scale/bias drawn per frame within the config's bounds (a new cell every scan).

    Returns:
        frames labelled with the believed poses, and the true poses.
    """
    cfg = cfg if cfg is not None else ScannerConfig()
    poses = station_camera_poses(part, cfg, cell)  # validates ``part``
    mesh = pair.upper_mesh if part == "upper" else pair.sole_mesh  # type: ignore[attr-defined]
    if handeye_errors is None and cameras is not None:
        handeye_errors = cameras.handeye[part]
    if handeye_errors is not None and len(handeye_errors) != len(poses):
        raise ValidationError(f"handeye_errors: need {len(poses)} (one per view), got {len(handeye_errors)}")
    depth_errors = None if cameras is None else np.asarray(cameras.depth[part], dtype=np.float64)
    if depth_errors is not None and depth_errors.shape != (len(poses), 2):
        raise ValidationError(f"cameras.depth[{part!r}]: need ({len(poses)}, 2), got {depth_errors.shape}")
    t_std = cfg.handeye_trans_std_m if handeye_trans_std_m is None else handeye_trans_std_m
    r_std = cfg.handeye_rot_std_deg if handeye_rot_std_deg is None else handeye_rot_std_deg
    part_obj = SceneObject.from_mesh(mesh, _part_material(pair, part, cfg), "part")
    scene = RayScene([part_obj, *environment_objects(part, part_obj.vertices, cfg, cell)], rng)
    errors = None if handeye_errors is None else [as_pose("handeye_error", e) for e in handeye_errors]
    frames = render_station(scene, poses, cfg, rng, stamp=stamp, serial=f"sim-d405-{part}", errors=errors,
                            std=(t_std, r_std), depth_errors=depth_errors)  # fmt: skip
    return ScanShot(frames=frames, T_base_cam_true=poses, part=part)


def render_station(
    scene: RayScene, poses: Sequence[np.ndarray], cfg: ScannerConfig, rng: np.random.Generator, *, stamp: float,
    serial: str, errors: Sequence[np.ndarray] | None = None, std: tuple[float, float] | None = None,
    depth_errors: np.ndarray | None = None,
) -> list[DepthFrame]:  # fmt: skip
    """Render ``scene`` from every camera pose in ``poses`` (true (4, 4)); each frame is labelled with the
    believed pose (true pose x hand-eye error: ``errors`` given, or drawn with ``std`` = (trans m, rot deg),
    default the config's). ``depth_errors`` (n, 2): each camera's (scale error, bias m); None: drawn per frame
    within the config's bounds. Frames are ``cfg.frame_interval_s`` apart from ``stamp``; serials
    ``<serial>-<k>``."""
    t_std, r_std = std if std is not None else (cfg.handeye_trans_std_m, cfg.handeye_rot_std_deg)
    bounds = np.array([cfg.depth_scale_error_max, cfg.depth_bias_max_m])
    frames = []
    for k, T_true in enumerate(poses):
        err = errors[k] if errors is not None else draw_pose_error(rng, t_std, r_std)
        dep = depth_errors[k] if depth_errors is not None else rng.uniform(-1.0, 1.0, 2) * bounds
        believed = perturb_pose(T_true, err)
        at = stamp + k * cfg.frame_interval_s
        name = f"{serial}-{k}"
        frames.append(render_view(scene, T_true, believed, cfg.camera, cfg.artifacts, rng, stamp=at, serial=name,
                                  depth_error=(float(dep[0]), float(dep[1]))))  # fmt: skip
    return frames
