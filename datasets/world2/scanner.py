"""World 2's sensors: D405-class passive stereo depth cameras, and a laser line profiler's cloud.

Depth camera (per station, ``Scanner2Config.azimuths_deg``, each looking down at the station at
``distance_m`` / ``elevation_deg``; the image's long side along the part's length):

- exact depth by ray casting (open3d's Embree scene) of the part, its support and the floor;
- noise: FACTS.md's formula ``z^2 s / (f B)`` as the floor, times the surface's texture factor (a
  projector-less stereo camera matches poorly on plain surfaces) and ``1 / sqrt(cos incidence)``,
  spatially correlated over ``noise_corr_px`` (stereo matching windows);
- dropouts: grazing incidence (a ramp over ``grazing_deg``), dark surfaces (little signal) and
  texture-less patches (smooth random blobs, more of them the plainer the surface);
- flying pixels: mixed depths in a band ``flying_px`` wide along depth edges;
- speckle outliers; a per-camera depth scale and bias error and a per-camera hand-eye error
  (fixed for the cell, drawn from the dataset seed, not per frame).

Laser profiler (``laser_clouds``): a line scanner above the station, profiles across the part
at an uneven pitch (conveyor speed jitter), triangulation occlusion, 50 um noise, multipath
outliers, no normals: a PLY cloud in ``base_link``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gluecell.core.types import CameraIntrinsics, DepthFrame

from .config import SOLE_MATERIALS, UPPER_MATERIALS, Scanner2Config, World2Config

__all__ = ["CellErrors", "cell_errors", "camera_poses", "render_depth", "scan_station", "laser_cloud", "intrinsics"]

#: (texture factor, albedo) of the station's own surfaces: painted floor, rubber tray mat, fixture post.
_SURROUNDINGS = {"floor": (1.5, 0.5), "tray": (1.3, 0.3), "post": (2.0, 0.5)}


@dataclass(frozen=True)
class CellErrors:
    """Fixed errors of one cell's cameras (index = camera): hand-eye (4, 4) in the camera frame,
    depth scale factor error and depth bias (m)."""

    handeye: np.ndarray
    scale: np.ndarray
    bias: np.ndarray


def cell_errors(seed: int, n_cams: int, cfg: Scanner2Config) -> CellErrors:
    """The cell's camera errors: one draw per camera from the dataset seed (same for every pair)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCE11]))
    T = np.repeat(np.eye(4)[None], n_cams, axis=0)
    rv = rng.normal(0.0, np.radians(cfg.handeye_rot_std_deg), (n_cams, 3))
    T[:, :3, :3] = Rotation.from_rotvec(rv).as_matrix()
    T[:, :3, 3] = rng.normal(0.0, cfg.handeye_trans_std_m, (n_cams, 3))
    return CellErrors(T, rng.normal(0.0, cfg.scale_err_std, n_cams), rng.normal(0.0, cfg.bias_std_m, n_cams))


def intrinsics(cfg: Scanner2Config) -> CameraIntrinsics:
    """Pinhole intrinsics from the horizontal FOV (square pixels, centred principal point)."""
    f = 0.5 * cfg.width / np.tan(np.radians(cfg.hfov_deg) / 2.0)
    return CameraIntrinsics(cfg.width, cfg.height, f, f, (cfg.width - 1) / 2.0, (cfg.height - 1) / 2.0)


def camera_poses(target: np.ndarray, cfg: Scanner2Config) -> list[np.ndarray]:
    """(4, 4) optical-frame poses (z forward) around ``target``, image x along base x."""
    out = []
    el = np.radians(cfg.elevation_deg)
    for az in np.radians(cfg.azimuths_deg):
        pos = target + cfg.distance_m * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        z = (target - pos) / np.linalg.norm(target - pos)
        x = np.array([1.0, 0.0, 0.0]) - z[0] * z
        x /= np.linalg.norm(x)
        T = np.eye(4)
        T[:3, :3] = np.column_stack([x, np.cross(z, x), z])
        T[:3, 3] = pos
        out.append(T)
    return out


def _scene(meshes: list[tuple[np.ndarray, np.ndarray]]):
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    for v, f in meshes:
        scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    return scene


def _cast(scene, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import open3d as o3d

    rays = o3d.core.Tensor(np.hstack([origins, dirs]).astype(np.float32))
    ans = scene.cast_rays(rays)
    return ans["t_hit"].numpy(), ans["geometry_ids"].numpy(), ans["primitive_normals"].numpy()


def render_depth(
    scene, surfaces: list[tuple[float, float]], T_true: np.ndarray, K: CameraIntrinsics, cfg: Scanner2Config,
    rng: np.random.Generator, scale_err: float = 0.0, bias: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """(h, w) float64 measured depth (m, 0 = none) of one camera at true pose ``T_true``."""
    from scipy import ndimage

    h, w = K.height, K.width
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    d_cam = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u, dtype=float)], axis=-1).reshape(-1, 3)
    d_cam /= np.linalg.norm(d_cam, axis=1, keepdims=True)
    dirs = d_cam @ T_true[:3, :3].T
    t, gid, nrm = _cast(scene, np.broadcast_to(T_true[:3, 3], dirs.shape), dirs)
    hit = np.isfinite(t)
    z = np.where(hit, t * d_cam[:, 2], 0.0).reshape(h, w)
    gid = np.where(hit, gid, 0).astype(np.int64).reshape(h, w)
    tex = np.array([s[0] for s in surfaces])[gid]
    alb = np.array([s[1] for s in surfaces])[gid]
    cos_i = np.abs(np.einsum("ij,ij->i", nrm, dirs)).reshape(h, w)
    hit = hit.reshape(h, w)
    sigma = z**2 * cfg.subpixel * tex / (K.fx * cfg.baseline_m) / np.sqrt(np.maximum(cos_i, 0.1))
    g = cfg.noise_corr_px
    white = ndimage.gaussian_filter(rng.standard_normal((h, w)), g) * (2.0 * np.sqrt(np.pi) * g)
    meas = z + sigma * white
    # flying pixels along depth edges: a mix of the near and the far surface
    edge = (np.abs(ndimage.sobel(z, axis=0)) + np.abs(ndimage.sobel(z, axis=1))) > 0.04
    width = int(rng.integers(cfg.flying_px[0], cfg.flying_px[1] + 1))
    band = ndimage.binary_dilation(edge, iterations=width) & (rng.random((h, w)) < 0.5)
    zmin = ndimage.grey_erosion(np.where(hit, z, 10.0), size=2 * width + 1)
    zmax = ndimage.grey_dilation(z, size=2 * width + 1)
    meas = np.where(band, zmin + rng.random((h, w)) * (zmax - zmin), meas)
    # dropouts: grazing views, dark surfaces, texture-less blobs
    inc = np.degrees(np.arccos(np.clip(cos_i, 0.0, 1.0)))
    lo, hi = cfg.grazing_deg
    p_drop = np.clip((inc - lo) / (hi - lo), 0.0, 1.0) + 0.3 * (1.0 - alb) ** 4
    blobs = ndimage.gaussian_filter(rng.standard_normal((h, w)), 6.0) * (2.0 * np.sqrt(np.pi) * 6.0)
    drop = (rng.random((h, w)) < p_drop) | (blobs > 2.6 - 0.25 * tex)
    speck = rng.random((h, w)) < cfg.speckle_fraction
    meas = np.where(speck, meas + rng.choice([-1.0, 1.0], (h, w)) * rng.uniform(0.005, 0.04, (h, w)), meas)
    meas = meas * (1.0 + scale_err) + bias
    ok = hit & ~drop & (meas > 0.07) & (meas < 6.0)
    return np.where(ok, meas, 0.0)


def _station_scene(pair, part: str, wcfg: World2Config) -> tuple:
    import trimesh

    if part == "upper":
        v, f = pair.upper_vertices, pair.upper_faces
        mat = UPPER_MATERIALS[pair.upper_material]
        low = v[v[:, 2] < v[:, 2].min() + 0.01]
        top = float(v[:, 2].min()) + 0.012
        post = trimesh.creation.cylinder(radius=0.015, segment=((*low[:, :2].mean(0), 0.0), (*low[:, :2].mean(0), top)))
        support, name = (post.vertices, post.faces), "post"
        centre = np.array([*wcfg.upper_centre, float(v[:, 2].max()) - 0.055])
    else:
        v, f = pair.sole_vertices, pair.sole_faces
        mat = SOLE_MATERIALS[pair.sole_material]
        tray = trimesh.creation.box(extents=(0.36, 0.22, wcfg.tray_top_z))
        tray.apply_translation((*wcfg.sole_centre, wcfg.tray_top_z / 2.0))
        support, name = (tray.vertices, tray.faces), "tray"
        centre = np.array([*wcfg.sole_centre, wcfg.tray_top_z + 0.015])
    cx, cy = centre[:2]
    corners = np.array([[-0.8, -0.8, 0.0], [0.8, -0.8, 0.0], [0.8, 0.8, 0.0], [-0.8, 0.8, 0.0]]) + np.array([cx, cy, 0])
    floor = (corners, np.array([[0, 1, 2], [0, 2, 3]]))
    meshes = [(v, f), support, floor]
    surfaces = [(mat.texture, mat.albedo), _SURROUNDINGS[name], _SURROUNDINGS["floor"]]
    return meshes, surfaces, centre


def scan_station(pair, part: str, rng: np.random.Generator, cfg: Scanner2Config, wcfg: World2Config,
                 errs: CellErrors) -> tuple[list[DepthFrame], np.ndarray]:  # fmt: skip
    """Depth frames of ``part`` from every camera; returns (frames, (k, 4, 4) true camera poses)."""
    meshes, surfaces, target = _station_scene(pair, part, wcfg)
    scene = _scene(meshes)
    K = intrinsics(cfg)
    frames, trues = [], []
    base = 0 if part == "upper" else len(cfg.azimuths_deg)
    for k, T in enumerate(camera_poses(target, cfg)):
        c = base + k
        depth = render_depth(scene, surfaces, T, K, cfg, rng, float(errs.scale[c]), float(errs.bias[c]))
        units = np.clip(np.round(depth / cfg.depth_scale), 0, 65535).astype(np.uint16)
        believed = T @ errs.handeye[c]
        frames.append(DepthFrame(units, cfg.depth_scale, K, believed, stamp=0.0, serial=f"w2-{part}-{k}"))
        trues.append(T)
    return frames, np.stack(trues)


def laser_cloud(pair, part: str, rng: np.random.Generator, cfg: Scanner2Config, wcfg: World2Config) -> np.ndarray:
    """(n, 3) float64 cloud of a laser line profiler passing over ``part``'s station (base_link)."""
    meshes, _, centre = _station_scene(pair, part, wcfg)
    scene = _scene(meshes)
    lo_p, hi_p = cfg.laser_pitch_m
    n_lines = int(0.34 / lo_p)
    pitch = lo_p + (hi_p - lo_p) * (0.5 + 0.5 * np.sin(np.cumsum(rng.normal(0.0, 0.15, n_lines))))
    xs = centre[0] - 0.17 + np.cumsum(pitch)
    xs = xs[xs < centre[0] + 0.17]
    ys = centre[1] + np.arange(-0.09, 0.09, 0.0003)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    org = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, 0.5)])
    down = np.broadcast_to([0.0, 0.0, -1.0], org.shape)
    t, _, _ = _cast(scene, org, down)
    ok = np.isfinite(t)
    pts = org[ok] + down[ok] * t[ok, None]
    view = np.array([0.0, np.sin(np.radians(25.0)), np.cos(np.radians(25.0))])  # triangulation camera
    t2, _, _ = _cast(scene, pts + view * 1e-4, np.broadcast_to(view, pts.shape))
    pts = pts[~np.isfinite(t2)]  # the camera must see the laser spot
    pts[:, 2] += rng.normal(0.0, cfg.laser_noise_m, len(pts))
    out = rng.random(len(pts)) < cfg.laser_outlier_fraction
    pts[out, 2] += rng.uniform(0.002, 0.015, int(out.sum()))
    return pts
