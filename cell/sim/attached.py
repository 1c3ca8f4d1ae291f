"""The simulated cell's scan of an *attached* pair: what a real cell scans after pressing.

After the press, the pair stands at the upper station: the lasted upper bottom-up on its fixture with the
sole pressed onto it (tread up). The world knows the pressed sole (``deformed_sole_vertices``, the free
sole mesh's vertices after pressing, base_link at the upper station); this module puts the upper and
the pressed sole into one ray-cast scene with the upper station's surroundings (floor, fixture post) and
renders it with the upper station's cameras, exactly as :func:`gluecell.datasets.world.scanner.scan_part`
does for a single part (same camera model, sensor artifacts, hand-eye error and materials per style).

It also gives the truth the measurement is checked against (:func:`true_deformed_points`): for points on
the free sole, where the world's pressing moved them. Only the simulated cell and tests use this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from gluecell.core.errors import ValidationError
from gluecell.core.types import DepthFrame, PartScan
from gluecell.datasets.world.scanner import (
    STYLE_MATERIALS,
    RayScene,
    ScannerConfig,
    SceneObject,
    environment_objects,
    render_station,
    station_camera_poses,
)

__all__ = [
    "AttachedShot",
    "attached_scene_objects",
    "dataset_pair",
    "evaluate_measured",
    "evaluate_dataset",
    "line_distances",
    "scan_attached",
    "scan_attached_part",
    "true_deformed_points",
]


@dataclass(frozen=True)
class AttachedShot:
    """The upper station's frames of an attached pair.

    Attributes:
        frames: one :class:`DepthFrame` per upper-station camera (``T_base_cam`` = the cell's belief).
        T_base_cam_true: (4, 4) float64 true camera poses (hidden truth).
    """

    frames: list[DepthFrame]
    T_base_cam_true: list[np.ndarray]


def _materials(style: str | None, cfg: ScannerConfig) -> tuple:
    if cfg.style_materials and style in STYLE_MATERIALS:
        return STYLE_MATERIALS[style]
    return cfg.upper_material, cfg.sole_material


def attached_scene_objects(
    upper_vertices: np.ndarray,
    upper_faces: np.ndarray,
    sole_faces: np.ndarray,
    deformed_sole_vertices: np.ndarray,
    style: str | None = None,
    cfg: ScannerConfig | None = None,
) -> list[SceneObject]:
    """Scene of an attached pair at the upper station: upper, pressed sole, floor, fixture post.

    Args:
        upper_vertices: (v_u, 3) float64, metres, base_link. upper_faces: (f_u, 3) int64.
        sole_faces: (f_s, 3) int64 faces of the sole mesh (the free sole's topology).
        deformed_sole_vertices: (v_s, 3) float64 pressed sole vertices, metres, base_link (upper station).
        style: picks the parts' look (:data:`STYLE_MATERIALS`); None uses the config's materials.
        cfg: scanner settings.

    Returns:
        scene objects "upper", "sole" and the station's environment.
    """
    cfg = cfg if cfg is not None else ScannerConfig()
    dv = np.asarray(deformed_sole_vertices, dtype=np.float64)
    sf = np.asarray(sole_faces, dtype=np.int64)
    if dv.ndim != 2 or dv.shape[1] != 3 or not np.all(np.isfinite(dv)) or sf.max(initial=-1) >= len(dv):
        raise ValidationError("deformed_sole_vertices: need finite (v_s, 3) matching the sole faces")
    mu, ms = _materials(style, cfg)
    upper = SceneObject(np.asarray(upper_vertices, np.float64), np.asarray(upper_faces, np.int64), mu, "upper")
    sole = SceneObject(dv, sf, ms, "sole")
    return [upper, sole, *environment_objects("upper", upper.vertices, cfg)]


def scan_attached(
    pair: object,
    rng: np.random.Generator,
    cfg: ScannerConfig | None = None,
    *,
    deformed_sole_vertices: np.ndarray | None = None,
    stamp: float = 0.0,
) -> AttachedShot:
    """Scan an attached pair with every camera of the upper station.

    Args:
        pair: a WorldPair (``upper_mesh``, ``sole_mesh``, ``deformed_sole_vertices``, ``item.style``) or
            anything with those attributes (a dataset's truth wrapped in a namespace).
        rng: source of all randomness (textures, hand-eye errors, sensor noise).
        cfg: scanner settings (default ``ScannerConfig()``).
        deformed_sole_vertices: override of the pressed sole vertices (v_s, 3), metres, base_link.
        stamp: time of the first frame, seconds.

    Returns:
        the frames (believed poses) and the true camera poses.
    """
    cfg = cfg if cfg is not None else ScannerConfig()
    dv = pair.deformed_sole_vertices if deformed_sole_vertices is None else deformed_sole_vertices  # type: ignore[attr-defined]
    style = getattr(getattr(pair, "item", None), "style", None)
    objs = attached_scene_objects(
        pair.upper_mesh.vertices,  # type: ignore[attr-defined]
        pair.upper_mesh.faces,  # type: ignore[attr-defined]
        pair.sole_mesh.faces,  # type: ignore[attr-defined]
        dv,
        style,
        cfg,
    )
    scene = RayScene(objs, rng)
    poses = station_camera_poses("upper", cfg)
    frames = render_station(scene, poses, cfg, rng, stamp=stamp, serial="sim-d405-attached")
    return AttachedShot(frames=frames, T_base_cam_true=list(poses))


def scan_attached_part(
    frames: Sequence[DepthFrame], *, item_id: str = "", mesh: bool = True, scan_cfg: object | None = None
) -> PartScan:
    """Perception's scan of the attached pair: ``scan_part_frames(frames, "upper")`` (+ TSDF mesh).

    The attached pair stands at the upper station, so the upper station's box, cleaning and fixture-post
    removal apply unchanged (the pressed sole adds ~30-45 mm on top: still inside the 0.30 m box).

    Args:
        frames: the upper station's frames of the attached pair.
        item_id: work item id.
        mesh: also fuse the views (TSDF, perception's defaults) and attach the mesh.
        scan_cfg: a :class:`gluecell.perception.scan.ScanConfig` (default: perception's defaults).

    Returns:
        PartScan (part "upper") of the attached pair, base_link, with ``mesh_*`` when ``mesh``.
    """
    from gluecell.perception.scan import fuse_part, scan_part_frames

    scan = scan_part_frames(frames, "upper", scan_cfg, item_id=item_id)  # type: ignore[arg-type]
    if mesh:
        scan, _ = fuse_part(scan, frames)
    return scan


def true_deformed_points(
    sole_vertices: np.ndarray, sole_faces: np.ndarray, deformed_sole_vertices: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the world's pressing moved points of the free sole (barycentric on the nearest face).

    Args:
        sole_vertices: (v_s, 3) float64 free sole mesh vertices, metres, base_link (sole station).
        sole_faces: (f_s, 3) int64.
        deformed_sole_vertices: (v_s, 3) float64 the same vertices after pressing (upper station).
        points: (n, 3) float64 points near the free sole's surface (a scan of it), metres.

    Returns:
        ((n, 3) float64 true pressed positions, (n,) float64 distance of each point to the free mesh).
    """
    import trimesh

    V = np.asarray(sole_vertices, dtype=np.float64)
    F = np.asarray(sole_faces, dtype=np.int64)
    D = np.asarray(deformed_sole_vertices, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    mesh = trimesh.Trimesh(V, F, process=False)
    closest, dist, tri = trimesh.proximity.closest_point(mesh, p)
    bary = trimesh.triangles.points_to_barycentric(V[F[tri]], closest)
    moved = np.einsum("nk,nkj->nj", bary, D[F[tri]])
    # the point's offset off the free surface rides along with the face's motion (rotation ignored: < 0.1 mm)
    return moved + (p - closest), np.asarray(dist, dtype=np.float64)


def dataset_pair(dataset: object, sample_id: str) -> SimpleNamespace:
    """A dataset sample's truth as a pair-like namespace for :func:`scan_attached` (meshes, pressed sole, item)."""
    t = dataset.truth(sample_id)  # type: ignore[attr-defined]
    return SimpleNamespace(
        item=dataset.workitem(sample_id),  # type: ignore[attr-defined]
        upper_mesh=t["upper_mesh"],
        sole_mesh=t["sole_mesh"],
        deformed_sole_vertices=t["deformed_sole_vertices"],
        bite_line=t["bite_line"],
    )


def line_distances(a: np.ndarray, b: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """(len(a),) distance of each point of polyline ``a`` to the closed polyline ``b``, metres (exact, to its
    segments: :func:`gluecell.core.geometry.polyline_distance`; ``step`` is kept for callers and unused)."""
    from gluecell.core.geometry import polyline_distance

    return polyline_distance(a, b)


def evaluate_measured(pair: object, free_points: np.ndarray, measured: object) -> dict[str, float]:
    """Errors of a :class:`~gluecell.deformation.measure.Measured` against the world's truth, millimetres.

    Keys: ``bite_p50/p95/max_mm`` (the one bite-line error, ``core.geometry.bite_line_error``),
    ``bite_dz_median_mm`` (signed height error, + = towards the tread), ``sole_surface_mean/p95_mm``
    (measured pressed sole to the true pressed sole's surface), ``sole_corr_mean/p95_mm`` (each point to
    where the world moved it; includes motion along the surface, which no scan can observe), and the same
    two for the ICP pose alone, before CPD (``rigid_*``).
    """
    import trimesh

    sm = pair.sole_mesh  # type: ignore[attr-defined]
    dv = np.asarray(pair.deformed_sole_vertices)  # type: ignore[attr-defined]
    truth, _ = true_deformed_points(sm.vertices, sm.faces, dv, free_points)
    pressed = trimesh.Trimesh(dv, sm.faces, process=False)
    line = measured.bite_line  # type: ignore[attr-defined]
    true_line = np.asarray(pair.bite_line)  # type: ignore[attr-defined]
    from scipy.spatial import cKDTree

    from gluecell.core.geometry import bite_line_error, closed_resample

    err = bite_line_error(line, true_line)  # the project's one bite-line error
    bite = np.concatenate([err.to_true, err.to_pred]) * 1e3
    out = {"bite_p50_mm": float(np.median(bite)), "bite_p95_mm": err.p95_mm, "bite_max_mm": err.max_mm}

    dense = closed_resample(true_line, 1e-4)
    out["bite_dz_median_mm"] = float(np.median((line - dense[cKDTree(dense).query(line)[1]])[:, 2]) * 1e3)
    reg = measured.registration  # type: ignore[attr-defined]
    for name, pts in (("sole", measured.deformed_sole), ("rigid", reg.rigid_icp_points)):  # type: ignore[attr-defined]
        surf = trimesh.proximity.closest_point(pressed, pts[::2])[1] * 1e3
        corr = np.linalg.norm(pts - truth, axis=1) * 1e3
        out[f"{name}_surface_mean_mm"] = float(surf.mean())
        out[f"{name}_surface_p95_mm"] = float(np.percentile(surf, 95))
        out[f"{name}_corr_mean_mm"] = float(corr.mean())
        out[f"{name}_corr_p95_mm"] = float(np.percentile(corr, 95))
    return out


def evaluate_dataset(root: str, split: str = "test", limit: int = 5, seed: int = 0) -> list[dict[str, float]]:
    """Measure ``limit`` pairs of a dataset split (free sole from its frames, attached pair scanned here).

    Returns:
        one dict per pair: :func:`evaluate_measured`'s errors plus ``ms_measure`` and the sample id.
    """
    import time

    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.measure import measure_attached
    from gluecell.perception.scan import scan_part_frames

    ds = open_dataset(root)
    rows = []
    for i, sid in enumerate(ds.ids(split)[:limit]):
        pair = dataset_pair(ds, sid)
        sole = scan_part_frames(ds.inputs(sid)["frames"]["sole"], "sole", item_id=sid)
        shot = scan_attached(pair, np.random.default_rng([seed, i]))
        att = scan_attached_part(shot.frames, item_id=sid, mesh=False)
        t0 = time.perf_counter()
        m = measure_attached(att, sole)
        row: dict = {"id": sid, "style": pair.item.style, "ms_measure": (time.perf_counter() - t0) * 1e3}
        row.update(evaluate_measured(pair, sole.points, m))
        rows.append(row)
    return rows
