"""The world's side of inspection: spray the executed path, photograph it under UV, and label it (truth side).

:func:`capture_inspection` is the one call the simulated cell makes after a spray run: it takes the path that
was really executed and the faults of that run, and returns what the inspection station's cameras deliver
(:class:`~gluecell.core.types.InspectionView` per camera: UV image, depth before/after, calibration) plus the
truth labels (for datasets and the bench only; the cell must not hand them to the inspector).

Labels per view (from the true film, the true bite line and bond region, where the part really stood):

- ``gap``: bond surface within ``band_m`` of the true line but more than ``gap_tol_m`` from it with film below
  ``covered_m`` (the planner keeps glue a safety margin inside the *predicted* line, so an uncovered strip up
  to ``gap_tol_m`` is by design), connected patches of at least ``gap_min_mm2``.
- ``above``: visible glue (film >= ``visible_m``) beyond the true line, patches of at least ``above_min_mm2``;
  ``overspray_mm`` is its largest distance from the line.
- ``thin``: covered but below ``thin_m`` in the same band, patches of at least ``thin_min_mm2``.
- ``blob``: a lump: more than ``blob_m`` of film laid by a drip or by the gun open while the nozzle stood still
  (a puddle), patches of at least ``blob_min_mm2``. (The nominal film itself reaches ~2 mm where passes
  overlap on the bottom, so a threshold on the film alone would flag every pair.)

Thresholds are chosen (FACTS "Cementing": manual layer 0.1-0.3 mm, the 1 mm tolerance) and documented in
``datasets/inspection/README.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.core.types import DEFECT_TYPES, InspectionView, SprayPath

from .uv import Appearance, UVWorldConfig, draw_appearance, render_view, station_cameras
from .uv_spray import FilmResult, SprayFaults, spray_executed

__all__ = ["LabelConfig", "InspectionCapture", "capture_inspection", "MASK_NAMES"]

#: Order of the per-pixel label masks.
MASK_NAMES: tuple[str, ...] = ("glue", *DEFECT_TYPES)


@dataclass(frozen=True)
class LabelConfig:
    """Film thresholds (m), the band (m) and minimum patch areas (mm^2) of the labels."""

    visible_m: float = 0.01e-3
    covered_m: float = 0.05e-3
    thin_m: float = 0.08e-3
    blob_m: float = 0.3e-3
    gap_tol_m: float = 2.5e-3
    band_m: float = 12e-3
    gap_min_mm2: float = 5.0
    above_min_mm2: float = 0.5
    thin_min_mm2: float = 20.0
    blob_min_mm2: float = 3.0


@dataclass(frozen=True)
class InspectionCapture:
    """What the station delivers (``views``) and the truth about it (``labels``, ``film``, ``appearance``).

    Attributes:
        views: one :class:`InspectionView` per camera (calibration as the cell believes it).
        labels: per view ``{"verdict": "pass"|"fail", "defects": [...], "masks": (5, h, w) bool in
            :data:`MASK_NAMES` order, "overspray_mm", "gap_area_mm2", "band_coverage"}``.
        film: the true film on the mesh where the part stood.
        appearance: the hidden appearance drawn.
    """

    views: tuple[InspectionView, ...]
    labels: tuple[dict[str, Any], ...]
    film: FilmResult
    appearance: Appearance


def _fine_line(line: np.ndarray, step: float = 0.2e-3) -> tuple[np.ndarray, np.ndarray]:
    nxt = np.roll(line, -1, axis=0)
    seg = np.linalg.norm(nxt - line, axis=1)
    reps = np.maximum(np.ceil(seg / step).astype(int), 1)
    t = np.concatenate([np.arange(r) / r for r in reps])
    i = np.repeat(np.arange(len(line)), reps)
    fine = line[i] + t[:, None] * (nxt[i] - line[i])
    tan = np.roll(fine, -1, axis=0) - np.roll(fine, 1, axis=0)
    return fine, tan / np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-12)


def _line_side(points: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (k,) to ``line`` and side (k,) +1 towards the upper's bottom (bond side, +z), -1 beyond it."""
    from scipy.spatial import cKDTree

    fine, tan = _fine_line(line)
    d, i = cKDTree(fine).query(points)
    up = np.array([0.0, 0.0, 1.0]) - tan[i][:, 2:3] * tan[i]
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-12)
    return d, np.where(np.einsum("ij,ij->i", points - fine[i], up) >= 0, 1.0, -1.0)


def _patches(mask: np.ndarray, area: np.ndarray, min_mm2: float) -> tuple[np.ndarray, float]:
    """Keep the connected patches of ``mask`` with area >= ``min_mm2``; returns (mask, total mm^2)."""
    import cv2

    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask), 0.0
    sums = np.bincount(lab.ravel(), weights=area.ravel() * 1e6, minlength=n)
    keep = sums >= min_mm2
    keep[0] = False
    return keep[lab], float(sums[keep].sum())


def label_view(r: dict[str, np.ndarray], line: np.ndarray, bond_faces: np.ndarray, lc: LabelConfig) -> dict[str, Any]:
    """Truth labels of one rendered view (``r`` from :func:`render_view`)."""
    hit, film, area = r["hit"], r["film"], r["pixel_area"]
    pts = r["points"][hit]
    dist = np.zeros(hit.shape)
    side = np.zeros(hit.shape)
    d, s = _line_side(pts, line)
    far = d > 3e-3  # away from the line the true bond mask decides the side (the wall may curve)
    s = np.where(far, np.where(bond_faces[r["face"][hit]], 1.0, -1.0), s)
    dist[hit], side[hit] = d, s
    glue = hit & (film >= lc.visible_m)
    band = hit & (side > 0) & (dist > lc.gap_tol_m) & (dist <= lc.band_m)
    above, _ = _patches(glue & (side < 0), area, lc.above_min_mm2)
    gap, gap_mm2 = _patches(band & (film < lc.covered_m), area, lc.gap_min_mm2)
    thin, _ = _patches(band & (film >= lc.covered_m) & (film < lc.thin_m), area, lc.thin_min_mm2)
    blob, _ = _patches(hit & (r["lump"] >= lc.blob_m), area, lc.blob_min_mm2)
    masks = np.stack([glue, gap, above, thin, blob])
    defects = [k for k, m in zip(DEFECT_TYPES, masks[1:]) if m.any()]
    band_all = hit & (side > 0) & (dist <= lc.band_m)
    cov = float(area[band_all & (film >= lc.covered_m)].sum() / max(area[band_all].sum(), 1e-12))
    return {"verdict": "fail" if defects else "pass", "defects": defects, "masks": masks,
            "overspray_mm": float(dist[above].max() * 1e3) if above.any() else 0.0, "gap_area_mm2": gap_mm2,
            "band_coverage": cov}  # fmt: skip


def _calibrated(T_true: np.ndarray, cfg: UVWorldConfig, rng: np.random.Generator) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    E = np.eye(4)
    E[:3, :3] = Rotation.from_rotvec(np.radians(cfg.calib_rot_std_deg) * rng.normal(size=3)).as_matrix()
    E[:3, 3] = cfg.calib_trans_std_m * rng.normal(size=3)
    return T_true @ E


def capture_inspection(
    truth: Any,
    executed: Sequence[SprayPath] | Any,
    faults: SprayFaults | None,
    rng: np.random.Generator | int,
    cfg: UVWorldConfig | None = None,
    labels: LabelConfig | None = None,
    *,
    shifted: bool = False,
    views: Sequence[int] | None = None,
) -> InspectionCapture:
    """Spray the upper along the executed path with ``faults``, photograph it under UV-A and label it.

    Args:
        truth: the sample's truth: a WorldPair or a dataset truth dict (``upper_mesh``, ``upper_bond_faces``,
            ``bite_line``), base_link.
        executed: the upper's executed paths (SprayPath(s) or a Plan whose upper paths were run as planned):
            times s, nozzle tip poses, gun flags, base_link.
        faults: :class:`SprayFaults` of this run (late/early gun switching, clogging, pressure drop, drips,
            part off station); None = none.
        rng: Generator or seed (valve delays, hidden spray variation, appearance, noise, hand-eye error).
        cfg: station (cameras, tracer, depth sensor); labels: label thresholds.
        shifted: draw the appearance from the shifted split (new materials, lights, camera settings).
        views: indices of the ring's cameras to render (default all ``cfg.n_views``).

    Returns:
        :class:`InspectionCapture`; give only ``views`` to the inspector.
    """
    cfg = cfg if cfg is not None else UVWorldConfig()
    lc = labels if labels is not None else LabelConfig()
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if hasattr(executed, "paths"):
        executed = executed.paths
    if isinstance(executed, SprayPath):
        executed = [executed]
    paths = [p for p in executed if p.part == "upper"]
    get = (lambda k: truth[k]) if isinstance(truth, dict) else (lambda k: getattr(truth, k))
    film = spray_executed(truth, paths, faults, rng)
    T = film.T_offset
    line = np.asarray(get("bite_line"), dtype=np.float64) @ T[:3, :3].T + T[:3, 3]
    bond = np.asarray(get("upper_bond_faces"), dtype=bool)
    f = np.asarray(get("upper_mesh").faces, dtype=np.int64)
    app = draw_appearance(rng, cfg, shifted=shifted)
    cams = station_cameras(np.asarray(get("bite_line"), dtype=np.float64), cfg)
    out_views, out_labels = [], []
    for k in views if views is not None else range(cfg.n_views):
        r = render_view(film.vertices, f, film.film_m, cams[k], app, cfg, rng)
        r["lump"] = np.where(r["hit"], film.lump_m[np.maximum(r["face"], 0)], 0.0)
        out_views.append(InspectionView(image=r["image"], depth_before=r["depth_before"], depth_after=r["depth_after"],
                                        depth_scale=cfg.depth_scale, intrinsics=cfg.intrinsics,
                                        T_base_cam=_calibrated(cams[k], cfg, rng)))  # fmt: skip
        out_labels.append(label_view(r, line, bond, lc))
    return InspectionCapture(views=tuple(out_views), labels=tuple(out_labels), film=film, appearance=app)
