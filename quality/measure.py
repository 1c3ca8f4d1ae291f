"""The classical measurement (OpenCV): a baseline and a cross-check for the QA network.

Per view:

1. Substrate reference: the median colour of the part well beyond the predicted line (glue-free by plan);
   glue = pixels whose colour departs from it by more than ``k`` robust deviations (works for glue that is
   brighter than leather and for glue that is darker than a brightened textile), opened to drop speckle.
2. Band: pixels on the bond side within ``band_m`` of the predicted line.
3. Gap: band pixels further than ``2 sigma + gap_tol_m`` from the predicted line without glue, patches above
   ``gap_min_mm2``. Above: glue beyond the predicted line, patches above ``above_min_mm2``; the overspray is
   its largest distance. Thin: glue in the band whose tracer signal is below ``thin_frac`` of the band's
   median. Blob: a bump of the depth difference (after vs before) above ``blob_m`` over its surroundings.
4. Scores 0..1 per defect type (``s / (s + ref)`` of the measured size), for the verdict policy and AUROC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gluecell.core.types import DEFECT_TYPES, InspectionView

from .geometry import ViewGeometry

__all__ = ["MeasureConfig", "Measurement", "measure_view", "patches", "measure_from_masks"]


@dataclass(frozen=True)
class MeasureConfig:
    """Thresholds of the classical measurement (metres, mm^2)."""

    band_m: float = 12e-3
    gap_tol_m: float = 2.5e-3
    gap_min_mm2: float = 5.0
    above_min_mm2: float = 0.5
    thin_min_mm2: float = 20.0
    blob_min_mm2: float = 3.0
    blob_m: float = 0.6e-3
    glue_k: float = 5.0
    thin_frac: float = 0.35
    #: sizes at which a score reaches 0.5 (mm^2 for areas, mm for overspray and blob height).
    score_ref: dict[str, float] = field(default_factory=lambda: {"gap": 5.0, "above": 0.3, "thin": 20.0, "blob": 0.6})


@dataclass(frozen=True)
class Measurement:
    """What was measured on one view.

    Attributes:
        masks: type -> (h, w) bool, plus "glue".
        scores: defect type -> 0..1.
        coverage: band fraction with glue; overspray_mm; gap_area_mm2.
    """

    masks: dict[str, np.ndarray]
    scores: dict[str, float]
    coverage: float
    overspray_mm: float
    gap_area_mm2: float


def patches(mask: np.ndarray, area: np.ndarray, min_mm2: float) -> tuple[np.ndarray, float]:
    """Connected patches of ``mask`` of at least ``min_mm2`` (pixel areas ``area`` m^2): (mask, total mm^2)."""
    import cv2

    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool), 0.0
    sums = np.bincount(lab.ravel(), weights=area.ravel() * 1e6, minlength=n)
    keep = sums >= min_mm2
    keep[0] = False
    return keep[lab], float(sums[keep].sum())


def _glue_mask(img: np.ndarray, g: ViewGeometry, cfg: MeasureConfig) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    ref_px = g.part & (g.signed < -6e-3)
    if ref_px.sum() < 50:  # the view shows little beyond the line: use the part's darkest/commonest quarter
        ref_px = g.part & (g.signed < np.nanpercentile(np.where(g.part, g.signed, np.nan), 25))
    ref = np.median(img[ref_px], axis=0)
    dev = np.linalg.norm(img - ref, axis=-1)
    mad = float(np.median(np.abs(dev[ref_px] - np.median(dev[ref_px])))) + 1e-3
    signal = dev / (mad * 1.4826)
    glue = (signal > cfg.glue_k) & g.part
    glue = cv2.morphologyEx(glue.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    return glue, signal


def measure_from_masks(masks: dict[str, np.ndarray], g: ViewGeometry, cfg: MeasureConfig,
                       extra_scores: dict[str, float] | None = None) -> Measurement:  # fmt: skip
    """Sizes and scores from defect masks (used by the network path as well)."""
    area = g.pixel_area
    signed = np.nan_to_num(g.signed, nan=0.0)
    band = g.part & (signed > 0) & (signed <= cfg.band_m)
    cov = float(area[band & masks["glue"]].sum() / max(area[band].sum(), 1e-12))
    above = masks["above"]
    over = float(-signed[above].min() * 1e3) if above.any() else 0.0
    gap_mm2 = float(area[masks["gap"]].sum() * 1e6)
    sizes = {"gap": gap_mm2, "above": max(over, 0.0), "thin": float(area[masks["thin"]].sum() * 1e6),
             "blob": extra_scores.get("blob_mm", 0.0) if extra_scores else 0.0}  # fmt: skip
    scores = {k: float(sizes[k] / (sizes[k] + cfg.score_ref[k])) if sizes[k] > 0 else 0.0 for k in DEFECT_TYPES}
    return Measurement(masks=masks, scores=scores, coverage=min(max(cov, 0.0), 1.0), overspray_mm=max(over, 0.0),
                       gap_area_mm2=gap_mm2)  # fmt: skip


def measure_view(view: InspectionView, g: ViewGeometry, cfg: MeasureConfig | None = None) -> Measurement:
    """Classical measurement of one view against its plan geometry ``g``."""
    import cv2

    cfg = cfg if cfg is not None else MeasureConfig()
    img = view.image.astype(np.float32) / 255.0
    glue, signal = _glue_mask(img, g, cfg)
    signed = np.nan_to_num(g.signed, nan=-1.0)
    area = g.pixel_area
    band = g.part & (signed > 0) & (signed <= cfg.band_m)
    gap_zone = band & (signed > 2 * g.sigma + cfg.gap_tol_m)
    gap, _ = patches(gap_zone & ~glue, area, cfg.gap_min_mm2)
    above, _ = patches(glue & (signed < 0) & g.part, area, cfg.above_min_mm2)
    med = float(np.median(signal[band & glue])) if (band & glue).any() else 0.0
    thin, _ = patches(gap_zone & glue & (signal < cfg.thin_frac * med), area, cfg.thin_min_mm2)
    film = g.film.astype(np.float32)
    bump = film - cv2.morphologyEx(film, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
    blob, _ = patches(g.part & (bump > cfg.blob_m), area, cfg.blob_min_mm2)
    blob_mm = float(bump[blob].max() * 1e3) if blob.any() else 0.0
    masks = {"glue": glue, "gap": gap, "above": above, "thin": thin, "blob": blob}
    return measure_from_masks(masks, g, cfg, {"blob_mm": blob_mm})
