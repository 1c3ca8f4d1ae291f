"""The image-level head: a verdict per view built on what the QA network does well (the glue segmentation).

Why: the network segments glue well (IoU ~0.98) but its four defect channels never learnt (defect pixels are
rare), so "the largest pooled defect probability" ranks defects weakly and sits at 0.4-0.6 on clean views.
The head turns each view into a few measured quantities, computed from the network's *input* (the plan
rendered into the view: signed distance to the predicted line, its sigma, the part, the film from depth,
luminance) and its *output* probabilities, and scores each defect type with a logistic regression fitted on
views of a fitting dataset; the verdict thresholds are then chosen per part on a separate validation set.

Per-view features (:data:`FEATURE_NAMES`), areas in pixels (the station's cameras see ~0.17 mm^2 a pixel):

* ``net_<type>``: the network's image-level score (largest 3x3-averaged probability of the channel);
* ``area_<type>``: log1p of the part's pixels with that channel's probability >= 0.3;
* ``dry_zone``: log1p of the largest connected patch *not* segmented as glue in the target zone (bond side,
  more than 2 sigma + 2.5 mm inside the predicted line, within 12 mm of it): a gap;
* ``dry_frac``: the zone's fraction not segmented as glue;
* ``glue_beyond``: log1p of the largest glue patch more than 2 sigma + 0.5 mm beyond the predicted line: above;
* ``bump``: the 99.9th percentile (mm) of the film (depth before - after) above its 21-pixel opening: a blob;
* ``lum_zone``: the zone's 5th-percentile luminance against the glued band's median (dark = thin film);
* ``cls_<type>``: the classical measurement's score (:mod:`.measure`: glue by colour against the substrate
  beyond the line, so it does not lean on the plan the way the network's glue channel does).

Nothing here reads truth: features come from the views and the plan only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.core.types import DEFECT_TYPES

__all__ = ["FEATURE_NAMES", "ImageHead", "view_features", "batch_features", "fit_head", "HEAD_VERSION"]

HEAD_VERSION = 1
FEATURE_NAMES: tuple[str, ...] = (
    *(f"net_{t}" for t in DEFECT_TYPES), *(f"area_{t}" for t in DEFECT_TYPES),
    "dry_zone", "dry_frac", "glue_beyond", "bump", "lum_zone", *(f"cls_{t}" for t in DEFECT_TYPES),
)  # fmt: skip
#: Target zone: more than this inside the predicted line (plus 2 sigma), metres; band limit; beyond tolerance.
GAP_TOL_M = 2.5e-3
BAND_M = 12e-3
ABOVE_TOL_M = 0.5e-3


def _largest_patch(mask: np.ndarray) -> float:
    import cv2

    n, _lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0.0


def view_features(x: np.ndarray, probs: np.ndarray, classical: np.ndarray | None = None) -> np.ndarray:
    """(F,) float64 features of one view from its network input ``x`` (8, h, w), output ``probs`` (5, h, w) and
    the classical scores ``classical`` (4,) (zeros when None).

    The input channels hold the plan's geometry (:func:`gluecell.quality.net.features`): part (4), signed
    distance / 5 mm (5), signed distance / (2 sigma) (6), film in mm / 2 (7), luminance (3).
    """
    import cv2

    x = np.asarray(x, dtype=np.float32)
    p = np.asarray(probs, dtype=np.float32)
    part = x[4] > 0.5
    sd = x[5] * 5e-3
    ratio = x[6]
    ok = part & (np.abs(ratio) > 0.2) & (np.abs(ratio) < 4.9)
    two_sigma = float(np.median(sd[ok] / ratio[ok])) if ok.sum() > 20 else 0.6e-3
    two_sigma = min(max(two_sigma, 0.0), 3e-3)
    glue = p[0] >= 0.5
    out = np.zeros(len(FEATURE_NAMES))
    pooled = cv2.blur(p[1:].transpose(1, 2, 0) * part[..., None], (3, 3))
    for k in range(len(DEFECT_TYPES)):
        out[k] = float(pooled[..., k][part].max()) if part.any() else 0.0
        out[4 + k] = float(np.log1p(((p[1 + k] >= 0.3) & part).sum()))
    zone = part & (sd > two_sigma + GAP_TOL_M) & (sd <= BAND_M)
    out[8] = float(np.log1p(_largest_patch(zone & ~glue)))
    out[9] = float((~glue[zone]).mean()) if zone.any() else 0.0
    out[10] = float(np.log1p(_largest_patch(part & glue & (sd < -(two_sigma + ABOVE_TOL_M)))))
    film = np.ascontiguousarray(x[7] * 2.0)
    bump = film - cv2.morphologyEx(film, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
    out[11] = float(np.percentile(bump[part], 99.9)) if part.any() else 0.0
    lum = x[3]
    glued = part & glue & (sd > 1e-3) & (sd <= BAND_M)
    if zone.sum() > 20 and glued.sum() > 20:
        out[12] = float(np.percentile(lum[zone], 5) / max(float(np.median(lum[glued])), 1e-3))
    else:
        out[12] = 1.0
    if classical is not None:
        out[13:17] = np.asarray(classical, dtype=np.float64)
    return out


def batch_features(x: np.ndarray, probs: np.ndarray, classical: np.ndarray | None = None) -> np.ndarray:
    """(n, F) features of a batch: ``x`` (n, 8, h, w), ``probs`` (n, 5, h, w), ``classical`` (n, 4) or None."""
    if not len(x):
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack([view_features(x[i], probs[i], None if classical is None else classical[i]) for i in range(len(x))])


@dataclass(frozen=True)
class ImageHead:
    """One logistic regression per defect type on standardised :data:`FEATURE_NAMES` features.

    Attributes:
        mean, std: (F,) standardisation; weights: (4, F); bias: (4,).
    """

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """(n, 4) defect probabilities 0..1 of views with features ``feats`` (n, F)."""
        z = (np.asarray(feats, dtype=np.float64) - self.mean) / self.std
        return 1.0 / (1.0 + np.exp(-np.clip(z @ self.weights.T + self.bias, -40, 40)))

    def to_dict(self) -> dict[str, Any]:
        """JSON/torch-safe plain form."""
        return {"version": HEAD_VERSION, "features": list(FEATURE_NAMES), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "weights": self.weights.tolist(), "bias": self.bias.tolist()}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Any) -> ImageHead:
        """Parse a stored head; a head for other features is refused."""
        from .errors import ModelVersionError

        if not isinstance(d, dict) or d.get("version") != HEAD_VERSION or tuple(d.get("features", ())) != FEATURE_NAMES:
            raise ModelVersionError("the model's image-level head was fitted on other features; refit it "
                                    "(`gluecell qa head`)")  # fmt: skip
        f = len(FEATURE_NAMES)
        head = cls(mean=np.asarray(d["mean"], float), std=np.asarray(d["std"], float),
                   weights=np.asarray(d["weights"], float), bias=np.asarray(d["bias"], float))  # fmt: skip
        if head.mean.shape != (f,) or head.std.shape != (f,) or head.weights.shape != (4, f) or head.bias.shape != (4,):
            raise ModelVersionError("the model's image-level head has the wrong shape")
        return head


def fit_head(feats: np.ndarray, labels: np.ndarray, *, l2: float = 1e-2, iters: int = 3000) -> ImageHead:
    """Fit the head: class-balanced L2 logistic regression per defect type (full-batch gradient descent).

    Args:
        feats: (n, F) view features; labels: (n, 4) bool view-level defect labels (``DEFECT_TYPES`` order).
    """
    from .errors import TrainingError

    X = np.asarray(feats, dtype=np.float64)
    Y = np.asarray(labels, dtype=bool)
    if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES) or Y.shape != (len(X), len(DEFECT_TYPES)):
        raise TrainingError(f"head: features {X.shape} and labels {Y.shape} do not match")
    if not np.all(np.isfinite(X)):
        raise TrainingError("head: non-finite features")
    mean, std = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = (X - mean) / std
    W = np.zeros((len(DEFECT_TYPES), Z.shape[1]))
    b = np.zeros(len(DEFECT_TYPES))
    for k in range(len(DEFECT_TYPES)):
        y = Y[:, k].astype(float)
        if y.sum() == 0 or y.sum() == len(y):
            b[k] = -10.0 if y.sum() == 0 else 10.0
            continue
        wt = np.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
        w, c = np.zeros(Z.shape[1]), 0.0
        for _ in range(iters):
            pr = 1.0 / (1.0 + np.exp(-np.clip(Z @ w + c, -40, 40)))
            g = wt * (pr - y)
            w -= 0.5 * (Z.T @ g / len(y) + l2 * w)
            c -= 0.5 * float(g.mean())
        W[k], b[k] = w, c
    return ImageHead(mean=mean, std=std, weights=W, bias=b)
