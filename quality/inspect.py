"""``quality.inspect``: the one call the cell makes after spraying a part.

It reads only what a real station has: the UV image and depth before/after of each inspection camera, the
camera calibration (inside each :class:`~gluecell.core.types.InspectionView`) and the plan (its predicted bite
line and ``bite_line_sigma``). At inspection the sole is not on yet, so the true bite line is invisible: "glue
above the line" is judged against the predicted line and its sigma, and is only as good as the line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.plan import Plan
from gluecell.core.types import DEFECT_TYPES, Defect, Inspection, InspectionView

from .errors import InspectionInputError
from .geometry import ViewGeometry, check_view, view_geometry
from .measure import MeasureConfig, Measurement, measure_from_masks, measure_view
from .model import LoadedModel, load_model
from .policy import VerdictPolicy, decide

__all__ = ["inspect", "resolve_model", "CROP_PX"]

#: Side of the rework-bin crop around a defect (pixels, before clipping at the border).
CROP_PX = 96
_CACHE: dict[tuple[str, float], LoadedModel] = {}


def resolve_model(model: LoadedModel | str | os.PathLike[str] | None, registry: str | os.PathLike[str] | None = None
                  ) -> LoadedModel | None:  # fmt: skip
    """A loaded model from an instance, a file path, a registry alias/name ("champion"), or None (classical)."""
    if model is None or isinstance(model, LoadedModel):
        return model
    path = Path(model)
    if not path.suffix:  # an alias or a registered name
        from .registry import Registry

        path = Registry(registry).resolve(str(model))
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0)
    if key not in _CACHE:
        _CACHE[key] = load_model(path)
    return _CACHE[key]


def _network(model: LoadedModel, view: InspectionView, g: ViewGeometry, mcfg: MeasureConfig,
             classical: Measurement) -> Measurement:  # fmt: skip
    import torch

    from .net import OUTPUTS, features, scores_from_probs

    x = torch.from_numpy(features(view, g)[None])
    with torch.no_grad():
        p = torch.sigmoid(model.net(x))
        s = scores_from_probs(p, x[:, 4:5])[0].numpy()
    probs = p[0].numpy()
    if "head" in model.record:  # the image-level head (quality/head.py) scores the view, not the raw channels
        from .head import ImageHead, view_features

        cls = np.array([classical.scores[t] for t in DEFECT_TYPES])
        s = ImageHead.from_dict(model.record["head"]).scores(view_features(x[0].numpy(), probs, cls)[None])[0]
    masks = {name: (probs[k] > 0.5) & g.part for k, name in enumerate(OUTPUTS)}
    m = measure_from_masks(masks, g, mcfg)
    return Measurement(masks=m.masks, scores={t: float(s[k]) for k, t in enumerate(DEFECT_TYPES)},
                       coverage=m.coverage, overspray_mm=m.overspray_mm, gap_area_mm2=m.gap_area_mm2)  # fmt: skip


def _defect(kind: str, score: float, k: int, view: InspectionView, g: ViewGeometry, m: Measurement) -> Defect:
    import cv2

    mask = m.masks[kind]
    if mask.any():
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x0, y0, w, h = (int(v) for v in stats[big, :4])
    else:  # a score without a mask: point at the part's centre
        ys, xs = np.nonzero(g.part) if g.part.any() else (np.array([0]), np.array([0]))
        x0, y0, w, h = int(np.median(xs)), int(np.median(ys)), 1, 1
    cx, cy = x0 + w // 2, y0 + h // 2
    H, W = mask.shape
    half = max(CROP_PX, w, h) // 2
    a, b = max(cy - half, 0), min(cy + half, H)
    c, d = max(cx - half, 0), min(cx + half, W)
    size = {"above": m.overspray_mm, "gap": m.gap_area_mm2}.get(kind, float(g.pixel_area[mask].sum() * 1e6))
    xyz = tuple(float(v) for v in g.points[cy, cx]) if g.part[cy, cx] else (float("nan"),) * 3
    return Defect(kind=kind, score=float(min(max(score, 0.0), 1.0)), view=k, bbox_px=(x0, y0, x0 + w, y0 + h),
                  xyz=xyz, size_mm=float(size), crop=np.ascontiguousarray(view.image[a:b, c:d]))  # fmt: skip


def inspect(
    views: InspectionView | Sequence[InspectionView],
    plan: Plan,
    *,
    item_id: str = "",
    part: str = "upper",
    model: LoadedModel | str | os.PathLike[str] | None = "champion",
    policy: VerdictPolicy | None = None,
    registry: str | os.PathLike[str] | None = None,
    measure: MeasureConfig | None = None,
) -> Inspection:
    """Inspect the glue on one sprayed part and decide pass / fail / uncertain.

    Args:
        views: one :class:`InspectionView` per inspection camera (UV-A image (h, w, 3) uint8, depth before and
            after spraying (h, w) uint16 registered to it, ``depth_scale``, intrinsics and ``T_base_cam``: the
            calibration).
        plan: the plan that was sprayed (``gluecell.plan/1``): its ``bite_line`` (m, 3) metres base_link is the
            *predicted* line; ``plan.extra["bite_line_sigma"]`` (m,) metres its 1-sigma (0.3 mm assumed if absent).
        item_id, part: for the record ("upper"; the sole is not inspected by this camera ring).
        model: the QA network: a registry alias or name (default "champion", the promoted model), a model
            file path, a :class:`LoadedModel`, or None for the classical measurement alone.
        policy: verdict thresholds (default: the model's own, chosen on its validation split).
        registry: registry folder (default: ``$GLUECELL_QA_REGISTRY`` or the shipped ``quality/models``).
        measure: classical measurement thresholds.

    Returns:
        :class:`~gluecell.core.types.Inspection` with ``verdict`` "pass", "fail" (defects with type, score,
        view, pixel box, base_link position, size and an image crop for the rework bin) or "uncertain" (to the
        human), ``coverage`` of the bond band, ``overspray_mm`` (beyond the predicted line) and
        ``gap_area_mm2``; ``diagnostics`` holds scores per type (network and classical), timings (ms) and the
        model's id.

    Raises:
        InspectionInputError: no views, a view of the wrong type/size, empty depth, a bad plan sigma.
        ModelError / ModelVersionError: the model is missing, corrupt or from another version.
    """
    t0 = time.perf_counter()
    views = [views] if isinstance(views, InspectionView) else list(views)
    if not views:
        raise InspectionInputError("no inspection views given", field="views", item_id=item_id or None)
    if not isinstance(plan, Plan):
        raise InspectionInputError(f"plan: expected a Plan, got {type(plan).__name__}", field="plan")
    net = resolve_model(model, registry)
    hw = tuple(net.record["image_size"]) if net is not None and "image_size" in net.record else None
    policy = policy if policy is not None else (net.policy if net is not None else VerdictPolicy(cross_check=2.0))
    mcfg = measure if measure is not None else MeasureConfig()
    per_view: list[tuple[Measurement, Measurement | None, ViewGeometry]] = []
    for k, v in enumerate(views):
        v = check_view(v, k, hw)
        g = view_geometry(v, plan)
        classical = measure_view(v, g, mcfg)
        per_view.append((classical, _network(net, v, g, mcfg, classical) if net is not None else None, g))
    t_inf = time.perf_counter()
    main = [n if n is not None else c for c, n, _ in per_view]
    scores = {t: max(m.scores[t] for m in main) for t in DEFECT_TYPES}
    cls_scores = {t: max(c.scores[t] for c, _, _ in per_view) for t in DEFECT_TYPES}
    verdict, kinds = decide(scores, policy, cls_scores if net is not None else None)
    defects = []
    for kind in kinds:
        k = int(np.argmax([m.scores[kind] for m in main]))
        # where the network draws no mask of that type (its defect channels rarely pass 0.5), the classical
        # measurement's patch locates the defect for the rework bin rather than the part's centre
        where = main[k] if main[k].masks[kind].any() or not per_view[k][0].masks[kind].any() else per_view[k][0]
        defects.append(_defect(kind, max(scores[kind], cls_scores[kind] if net is None else 0.0), k, views[k],
                               per_view[k][2], where))  # fmt: skip
    return Inspection(
        item_id=item_id, part=part, verdict=verdict, defects=tuple(defects),
        coverage=float(np.mean([m.coverage for m in main])), overspray_mm=float(max(m.overspray_mm for m in main)),
        gap_area_mm2=float(sum(m.gap_area_mm2 for m in main)),
        diagnostics={"scores": scores, "classical_scores": cls_scores, "policy": policy.to_dict(),
                     "model": str(net.path) if net is not None else None,
                     "model_sha256": net.sha256 if net is not None else None, "n_views": len(views),
                     "timing_ms": {"measure": (t_inf - t0) * 1e3, "total": (time.perf_counter() - t0) * 1e3},
                     "per_view_scores": [m.scores for m in main]},
    )  # fmt: skip


def inspection_summary(ins: Inspection) -> dict[str, Any]:
    """Plain-JSON summary of an inspection (without crops)."""
    return {"item_id": ins.item_id, "part": ins.part, "verdict": ins.verdict, "coverage": ins.coverage,
            "overspray_mm": ins.overspray_mm, "gap_area_mm2": ins.gap_area_mm2,
            "defects": [{"kind": d.kind, "score": d.score, "view": d.view, "bbox_px": list(d.bbox_px),
                         "xyz_m": [None if x != x else x for x in d.xyz], "size_mm": d.size_mm} for d in ins.defects],
            "diagnostics": ins.diagnostics}  # fmt: skip
