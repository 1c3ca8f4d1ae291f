"""The plan seen from the inspection camera: per-pixel 3-D points and signed distance to the predicted line.

Inputs are what a real station has: the view's depth before spraying and its calibration, and the plan's
predicted bite line with its sigma. Each pixel is back-projected from the (median-filtered, hole-filled)
depth into ``base_link``; its signed distance to the predicted line is positive on the bond side (towards
the upper's bottom, +z of the bottom-up upper at its station) and negative beyond the line, where glue is
visible after soling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gluecell.core.plan import Plan
from gluecell.core.types import InspectionView

from .errors import InspectionInputError

__all__ = ["ViewGeometry", "view_geometry", "plan_sigma", "check_view", "DEFAULT_SIGMA_M"]

#: Sigma assumed for a plan without ``bite_line_sigma`` (metres): a marked or measured line.
DEFAULT_SIGMA_M = 0.3e-3
#: Pixels further than this from the predicted line are outside the inspected band (metres).
MAX_DIST_M = 25e-3


@dataclass(frozen=True)
class ViewGeometry:
    """Per-pixel geometry of one view.

    Attributes:
        part: (h, w) bool, pixels on the part (valid depth after filling).
        points: (h, w, 3) float64 metres, base_link.
        signed: (h, w) float64 metres, signed distance to the predicted line (+ bond side); NaN off the part.
        sigma: (h, w) float64 metres, the line's sigma at the nearest line point.
        pixel_area: (h, w) float64 m^2 of surface per pixel (fronto-parallel approximation).
        film: (h, w) float64 metres, depth before minus after (smoothed); glue thickness where > noise.
    """

    part: np.ndarray
    points: np.ndarray
    signed: np.ndarray
    sigma: np.ndarray
    pixel_area: np.ndarray
    film: np.ndarray


def check_view(view: object, index: int = 0, expect_hw: tuple[int, int] | None = None) -> InspectionView:
    """``view`` as a validated :class:`InspectionView`; raises :class:`InspectionInputError`."""
    if not isinstance(view, InspectionView):
        raise InspectionInputError(f"view {index}: expected an InspectionView, got {type(view).__name__}",
                                   field="view", view=index)  # fmt: skip
    if expect_hw is not None and view.image.shape[:2] != expect_hw:
        raise InspectionInputError(f"view {index}: image is {view.image.shape[1]}x{view.image.shape[0]}, the model "
                                   f"expects {expect_hw[1]}x{expect_hw[0]}", field="image", view=index)  # fmt: skip
    if np.count_nonzero(view.depth_before) < 0.02 * view.depth_before.size:
        raise InspectionInputError(f"view {index}: depth before spraying is (almost) empty: is the camera "
                                   "connected and the part on its station?", field="depth_before", view=index)
    return view


def plan_sigma(plan: Plan) -> np.ndarray:
    """(m,) float64 metres: the plan's ``bite_line_sigma`` or :data:`DEFAULT_SIGMA_M`."""
    raw = plan.extra.get("bite_line_sigma")
    m = len(plan.bite_line)
    if raw is None:
        return np.full(m, DEFAULT_SIGMA_M)
    sig = np.asarray(raw, dtype=np.float64)
    if sig.shape != (m,) or not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise InspectionInputError(f"plan: bite_line_sigma must be {m} finite values >= 0", field="bite_line_sigma")
    return sig


def _filled_depth(view: InspectionView) -> tuple[np.ndarray, np.ndarray]:
    import cv2
    from scipy import ndimage

    d = view.depth_before.astype(np.float32) * view.depth_scale
    valid = d > 0
    part = cv2.morphologyEx(valid.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    filled = d[idx[0], idx[1]]
    smooth = cv2.GaussianBlur(cv2.medianBlur(filled, 5), (0, 0), 1.5)
    return smooth.astype(np.float64), part


def _film(view: InspectionView) -> np.ndarray:
    import cv2

    b = view.depth_before.astype(np.float32)
    a = view.depth_after.astype(np.float32)
    ok = ((a > 0) & (b > 0)).astype(np.float32)
    diff = (b - a) * ok * view.depth_scale
    num = cv2.GaussianBlur(diff, (0, 0), 2.0)
    den = cv2.GaussianBlur(ok, (0, 0), 2.0)
    return (num / np.maximum(den, 1e-3)).astype(np.float64)


def view_geometry(view: InspectionView, plan: Plan) -> ViewGeometry:
    """Back-project the view and measure every pixel against the plan's predicted line."""
    import cv2
    from scipy.spatial import cKDTree

    z, part = _filled_depth(view)
    K = view.intrinsics
    h, w = z.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    cam = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], axis=-1)
    T = view.T_base_cam
    pts = cam @ T[:3, :3].T + T[:3, 3]
    line = np.asarray(plan.bite_line, dtype=np.float64)
    sig = plan_sigma(plan)
    nxt = np.roll(line, -1, axis=0)
    reps = np.maximum(np.ceil(np.linalg.norm(nxt - line, axis=1) / 0.2e-3).astype(int), 1)
    t = np.concatenate([np.arange(r) / r for r in reps])
    i = np.repeat(np.arange(len(line)), reps)
    fine = line[i] + t[:, None] * (nxt[i] - line[i])
    fsig = sig[i]
    tan = np.roll(fine, -1, axis=0) - np.roll(fine, 1, axis=0)
    tan /= np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-12)
    # The line distance is smooth over the image: measure it on every second pixel and interpolate (4x faster).
    sub = pts[::2, ::2]
    hs, ws = sub.shape[:2]
    flat = sub.reshape(-1, 3)
    d, j = cKDTree(fine).query(flat)
    up = np.array([0.0, 0.0, 1.0]) - tan[j][:, 2:3] * tan[j]
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-12)
    side = np.where(np.einsum("ij,ij->i", flat - fine[j], up) >= 0, 1.0, -1.0)
    half = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # full pixel (x, y) <- sub pixel (x/2, y/2), aligned

    def up(a: np.ndarray, interp: int) -> np.ndarray:
        return cv2.warpAffine(a.reshape(hs, ws).astype(np.float32), half, (w, h),
                              flags=interp | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip

    signed, sigma = up(d * side, cv2.INTER_LINEAR), up(fsig[j], cv2.INTER_NEAREST)
    signed, sigma = signed.astype(np.float64), sigma.astype(np.float64)
    on = part & (np.abs(signed) <= MAX_DIST_M)
    signed = np.where(on, signed, np.nan)
    area = (z / K.fx) * (z / K.fy)
    return ViewGeometry(part=on, points=pts, signed=signed, sigma=sigma,
                        pixel_area=np.where(on, area, 0.0), film=_film(view))  # fmt: skip
