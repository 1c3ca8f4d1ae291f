"""Depth images to points in ``base_link``, keeping track of which camera pixel each point came from.

- :func:`deproject` / :func:`frame_to_points`: raw pinhole back-projection of every valid pixel.
- :func:`frame_to_surface`: what the scan stage uses: edge-preserving smoothing of the depth image,
  per-pixel normals from depth derivatives (facing the camera), removal of grazing and
  jump-adjacent pixels (flying pixels), subsampling.
- :func:`merge_views`, :func:`station_box_mask`, :func:`voxel_downsample`, :func:`voxel_normals`,
  :func:`knn` / :func:`estimate_normals`: point-cloud primitives.

The pixel bookkeeping lets later stages ask image-space questions of a 3-D cluster (does the part
touch the image border?) and know which camera saw each point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gluecell.core.config import StationConfig
from gluecell.core.geometry import knn
from gluecell.core.types import CameraIntrinsics, DepthFrame

from .errors import EmptyDepthError

#: Voxel grids up to this many cells use a dense lookup table (16 bytes per cell, 128 MB at most).
_DENSE_CELLS = 8_000_000

__all__ = [
    "DepthConfig",
    "ViewCloud",
    "deproject",
    "estimate_normals",
    "frame_to_points",
    "frame_to_surface",
    "frames_to_points",
    "knn",
    "merge_views",
    "station_box_mask",
    "voxel_downsample",
    "voxel_normals",
]


@dataclass(frozen=True)
class ViewCloud:
    """Points seen by one or more cameras.

    Attributes:
        points: (n, 3) float64, metres, ``base_link``.
        view: (n,) int32, index of the frame each point came from.
        pixel: (n,) int64, flat pixel index ``row * width + col`` in that frame.
        centres: (v, 3) float64, camera optical centres in ``base_link``, one per frame.
        shapes: ((h, w), ...) image size per frame.
        normals: (n, 3) float64 unit normals facing the camera that saw each point, or None.
    """

    points: np.ndarray
    view: np.ndarray
    pixel: np.ndarray
    centres: np.ndarray
    shapes: tuple[tuple[int, int], ...]
    normals: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)


@lru_cache(maxsize=16)
def _rays(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (x/z, y/z) of the pinhole model, flat (h*w,) float64 each (read-only, cached)."""
    u = (np.arange(width, dtype=np.float64) - cx) / fx
    v = (np.arange(height, dtype=np.float64) - cy) / fy
    xr = np.broadcast_to(u[None, :], (height, width)).ravel().copy()
    yr = np.broadcast_to(v[:, None], (height, width)).ravel().copy()
    xr.setflags(write=False)
    yr.setflags(write=False)
    return xr, yr


@lru_cache(maxsize=16)
def _rays32(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_rays` as (h, w) float32 images (read-only, cached)."""
    xr, yr = _rays(width, height, fx, fy, cx, cy)
    a, b = xr.reshape(height, width).astype(np.float32), yr.reshape(height, width).astype(np.float32)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def deproject(
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    T_base_cam: np.ndarray,
    *,
    min_depth_m: float = 0.0,
    max_depth_m: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole back-projection of a metric depth image.

    Args:
        depth_m: (h, w) float, metres along the optical axis; 0, NaN and inf mean "no data".
        intrinsics: pinhole intrinsics of the image.
        T_base_cam: (4, 4) optical frame (z forward, x right, y down) in ``base_link``.
        min_depth_m / max_depth_m: valid range (exclusive of 0).

    Returns:
        points: (n, 3) float64, metres, ``base_link``; pixel: (n,) int64 flat pixel indices.

    Raises:
        EmptyDepthError: no pixel holds valid depth.
    """
    d = np.asarray(depth_m, dtype=np.float64).ravel()
    k = intrinsics
    if d.size != k.width * k.height:
        raise EmptyDepthError(f"depth has {d.size} pixels, intrinsics say {k.width}x{k.height}", stage="perception")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(d) & (d > max(min_depth_m, 0.0)) & (d < max_depth_m)
    pix = np.flatnonzero(valid)
    if pix.size == 0:
        n_nan = int(np.count_nonzero(~np.isfinite(d)))
        raise EmptyDepthError(
            f"depth image has no valid pixel ({d.size} pixels, {n_nan} NaN/inf, range {min_depth_m}-{max_depth_m} m); "
            "check the camera exposure, the emitter and the threshold filter",
            stage="perception",
            pixels=int(d.size),
            nan=n_nan,
        )
    xr, yr = _rays(k.width, k.height, float(k.fx), float(k.fy), float(k.cx), float(k.cy))
    z = d[pix]
    cam = np.column_stack([xr[pix] * z, yr[pix] * z, z])
    T = np.asarray(T_base_cam, dtype=np.float64)
    pts = cam @ T[:3, :3].T + T[:3, 3]
    return pts, pix.astype(np.int64)


def frame_to_points(
    frame: DepthFrame, *, min_depth_m: float = 0.0, max_depth_m: float = np.inf, view: int = 0
) -> ViewCloud:
    """Points of one frame in ``base_link`` (depth units times ``frame.depth_scale``).

    Raises:
        EmptyDepthError: all-zero depth, or nothing inside the range.
    """
    depth_m = frame.depth.astype(np.float64) * frame.depth_scale
    pts, pix = deproject(depth_m, frame.intrinsics, frame.T_base_cam, min_depth_m=min_depth_m, max_depth_m=max_depth_m)
    shape = (frame.intrinsics.height, frame.intrinsics.width)
    return ViewCloud(
        points=pts,
        view=np.full(len(pts), view, dtype=np.int32),
        pixel=pix,
        centres=np.asarray(frame.T_base_cam[:3, 3], dtype=np.float64).reshape(1, 3),
        shapes=(shape,),
    )


def merge_views(clouds: Sequence[ViewCloud]) -> ViewCloud:
    """Point-level merge of several views (concatenation; view indices are renumbered)."""
    if not clouds:
        raise EmptyDepthError("no views to merge", stage="perception")
    offsets = np.cumsum([0] + [len(c.centres) for c in clouds])
    return ViewCloud(
        points=np.concatenate([c.points for c in clouds]),
        view=np.concatenate([c.view + off for c, off in zip(clouds, offsets)]).astype(np.int32),
        pixel=np.concatenate([c.pixel for c in clouds]),
        centres=np.concatenate([c.centres for c in clouds]),
        shapes=tuple(s for c in clouds for s in c.shapes),
        normals=None if any(c.normals is None for c in clouds) else np.concatenate([c.normals for c in clouds]),
    )


def frames_to_points(
    frames: Sequence[DepthFrame], *, min_depth_m: float = 0.0, max_depth_m: float = np.inf
) -> ViewCloud:
    """:func:`frame_to_points` of every frame, merged; frames without valid depth are an error."""
    return merge_views([frame_to_points(f, min_depth_m=min_depth_m, max_depth_m=max_depth_m) for f in frames])


def station_box_mask(points: np.ndarray, station: StationConfig, margin_m: float = 0.0) -> np.ndarray:
    """(n,) bool: points inside the station's workspace box (``base_link``), grown by ``margin_m``.

    The box is ``centre ± half_extent`` in x/y and ``z_min..z_max`` in z (CellConfig defaults:
    ±0.20 m, ±0.12 m, 0-0.30 m).
    """
    p = np.asarray(points, dtype=np.float64)
    cx, cy = station.centre
    hx, hy = station.half_extent
    return (
        (np.abs(p[:, 0] - cx) <= hx + margin_m)
        & (np.abs(p[:, 1] - cy) <= hy + margin_m)
        & (p[:, 2] >= station.z_min - margin_m)
        & (p[:, 2] <= station.z_max + margin_m)
    )


@dataclass(frozen=True)
class DepthConfig:
    """Per-image processing before deprojection (what the SDK's spatial filter does on a live camera).

    Attributes:
        min_depth_m / max_depth_m: valid depth range (D405 minimum range ~70 mm, FACTS.md; fixed
            cameras sit well within 1.5 m of the stations).
        smooth: edge-preserving (bilateral) smoothing of the depth image. Stereo noise is 3-5x the
            formula on real targets (FACTS.md), i.e. 1-3 mm at 0.2-0.35 m for a D405; the window
            averages a few dozen pixels without blurring silhouettes (depth jumps).
        smooth_diameter_px / smooth_sigma_px: bilateral window and spatial sigma, pixels (7 / 3 px,
            ~4.5 / 2 mm at 0.3 m: on the world's virtual D405 this cut the mean surface error by
            ~20 % against 5 / 2 px at the same cost; 9 / 4 px gained little more for 30 % more time).
        jump_m / jump_rel: two neighbouring pixels further apart in depth than
            ``jump_m + jump_rel * depth`` are on different surfaces (4 mm + 2 %: well above the
            noise, well below any part/background step); also the bilateral range sigma.
        normal_step_px: half-width of the central differences giving per-pixel normals, in
            subsampled pixels (1 at stride 2: a 4-pixel baseline, ~2-3 mm at 0.2-0.35 m).
        max_view_angle_deg: drop pixels whose surface is seen more obliquely than this (grazing
            views are the noisiest, and flying pixels between fore- and background are all grazing).
        stride: keep every ``stride``-th pixel in each direction after smoothing (like the SDK's
            decimation; pixel indices and image sizes in the result refer to the subsampled image).
            The smoothed depth already averages the neighbours, and at 0.2-0.35 m a D405 pixel is
            ~0.5-0.8 mm, so 2 keeps ~1.5 mm spacing (under the 2 mm voxels) at a quarter of the work.
    """

    min_depth_m: float = 0.07
    max_depth_m: float = 1.5
    smooth: bool = True
    smooth_diameter_px: int = 7
    smooth_sigma_px: float = 3.0
    jump_m: float = 0.004
    jump_rel: float = 0.02
    normal_step_px: int = 1
    max_view_angle_deg: float = 78.0
    stride: int = 2


def _smooth_depth(d: np.ndarray, cfg: DepthConfig) -> np.ndarray:
    """Bilateral smoothing of (h, w) float32 metres; 0 (no data) stays 0 and never leaks in."""
    import cv2

    valid = d > 0
    if not valid.any():
        return d
    sample = d[::4, ::4][valid[::4, ::4]]  # the median of a 1/16 sample is plenty for a sigma
    sigma = cfg.jump_m + cfg.jump_rel * float(np.median(sample if sample.size else d[valid]))
    out = cv2.bilateralFilter(d, cfg.smooth_diameter_px, sigma, cfg.smooth_sigma_px)
    out[~valid] = 0.0
    return out


def _pixel_normals(d: np.ndarray, xr: np.ndarray, yr: np.ndarray, k: CameraIntrinsics, cfg: DepthConfig) -> tuple:
    """Camera-frame normals from depth derivatives; (h, w) float32 nx, ny, nz (unnormalised) and valid.

    With ``P = z·(x̃, ỹ, 1)`` the cross product of the image tangents is, up to a positive factor,
    ``n = (fx·z_u, fy·z_v, -z - fx·z_u·x̃ - fy·z_v·ỹ)``, which faces the camera and satisfies
    ``n · (x̃, ỹ, 1) = -z``; derivatives are central differences over ``normal_step_px``.
    """
    import cv2

    s = cfg.normal_step_px
    h, w = d.shape
    zu = np.zeros_like(d)
    zv = np.zeros_like(d)
    zu[:, s:-s] = (d[:, 2 * s :] - d[:, : w - 2 * s]) / np.float32(2 * s)
    zv[s:-s, :] = (d[2 * s :, :] - d[: h - 2 * s, :]) / np.float32(2 * s)
    plus = np.zeros((2 * s + 1, 2 * s + 1), dtype=np.uint8)
    plus[s, :: 2 * s] = plus[:: 2 * s, s] = plus[s, s] = 1
    support = cv2.erode(d, plus, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0  # all 4 neighbours valid
    tol = np.float32(cfg.jump_m) + np.float32(cfg.jump_rel) * d
    ok = support & (np.abs(zu) * (2 * s) < tol) & (np.abs(zv) * (2 * s) < tol)
    ok[:s] = ok[-s:] = False
    ok[:, :s] = ok[:, -s:] = False
    nx = np.float32(k.fx) * zu
    ny = np.float32(k.fy) * zv
    nz = -d - nx * xr - ny * yr
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    ray = np.sqrt(xr * xr + yr * yr + 1.0)
    ok &= d >= np.float32(np.cos(np.radians(cfg.max_view_angle_deg))) * norm * ray  # facing = z / (|n| |ray|)
    return nx, ny, nz, norm, ok


def frame_to_surface(frame: DepthFrame, cfg: DepthConfig | None = None, *, view: int = 0) -> ViewCloud:
    """Smoothed points with per-pixel normals of one frame, in ``base_link``.

    Pixels without a normal (beside a depth jump or a hole, at the image margin) and pixels seen at
    grazing angles are dropped; normals face the camera, i.e. point out of the surface it sees.

    Raises:
        EmptyDepthError: no pixel with valid depth (all zero, or none inside the range).
    """
    cfg = cfg or DepthConfig()
    k = frame.intrinsics
    d = frame.depth.astype(np.float32) * np.float32(frame.depth_scale)
    valid = (d > cfg.min_depth_m) & (d < cfg.max_depth_m)
    if not valid.any():
        raise EmptyDepthError(
            f"depth image has no valid pixel ({d.size} pixels, range {cfg.min_depth_m}-{cfg.max_depth_m} m); "
            "check the camera exposure, the emitter and the threshold filter",
            stage="perception",
            pixels=int(d.size),
        )
    d[~valid] = 0.0
    if cfg.smooth:
        d = _smooth_depth(d, cfg)
    t = cfg.stride
    if t > 1:  # subsample after smoothing: the kept pixels carry their neighbours' average
        d = np.ascontiguousarray(d[::t, ::t])
        k = CameraIntrinsics(d.shape[1], d.shape[0], k.fx / t, k.fy / t, k.cx / t, k.cy / t)
    xr, yr = _rays(k.width, k.height, float(k.fx), float(k.fy), float(k.cx), float(k.cy))
    xr2, yr2 = _rays32(k.width, k.height, float(k.fx), float(k.fy), float(k.cx), float(k.cy))
    nx, ny, nz, norm, ok = _pixel_normals(d, xr2, yr2, k, cfg)
    pix = np.flatnonzero(ok)
    z = d.ravel()[pix].astype(np.float64)
    cam = np.column_stack([xr[pix] * z, yr[pix] * z, z])
    nrm = np.column_stack([a.ravel()[pix] for a in (nx, ny, nz)]).astype(np.float64)
    nrm /= norm.ravel()[pix, None]
    T = frame.T_base_cam
    R = T[:3, :3]
    return ViewCloud(
        points=cam @ R.T + T[:3, 3],
        view=np.full(len(pix), view, dtype=np.int32),
        pixel=pix.astype(np.int64),
        centres=np.asarray(T[:3, 3], dtype=np.float64).reshape(1, 3),
        shapes=((k.height, k.width),),
        normals=nrm @ R.T,
    )


def estimate_normals(points: np.ndarray, neighbours: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """PCA normals over each point and its neighbours, flipped to face ``origins``.

    Args:
        points: (n, 3) float64. neighbours: (n, k) int indices into ``points`` (from :func:`knn`).
        origins: (n, 3) float64 camera centres that saw each point.

    Returns:
        (n, 3) float64 unit normals with ``n · (origin - p) >= 0``.
    """
    p = np.asarray(points, dtype=np.float64)
    q = p[np.column_stack([np.arange(len(p)), neighbours])]
    m = q.mean(axis=1)
    cov = np.einsum("nki,nkj->nij", q, q) / q.shape[1] - m[:, :, None] * m[:, None, :]
    _, vec = np.linalg.eigh(cov)
    nrm = vec[:, :, 0]
    flip = np.einsum("ij,ij->i", nrm, origins - p) < 0
    nrm[flip] *= -1.0
    return nrm / np.linalg.norm(nrm, axis=1, keepdims=True)


def voxel_downsample(points: np.ndarray, voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean point per occupied voxel.

    Returns:
        centroids: (m, 3) float64; inverse: (n,) int64, the voxel of every input point.
    """
    p = np.asarray(points, dtype=np.float64)
    keys = np.floor((p - p.min(axis=0)) / voxel_m).astype(np.int64)
    dims = keys.max(axis=0) + 1
    flat = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    cells = int(np.prod(dims))
    if cells <= min(_DENSE_CELLS, 8 * len(p)):  # a dense lookup table beats sorting unless mostly empty
        counts = np.bincount(flat, minlength=cells)
        occupied = np.flatnonzero(counts)
        lut = np.empty(cells, dtype=np.int64)
        lut[occupied] = np.arange(len(occupied))
        inverse = lut[flat]
    else:
        _, inverse = np.unique(flat, return_inverse=True)
        inverse = inverse.ravel()
    m = int(inverse.max()) + 1
    n = np.bincount(inverse, minlength=m).astype(np.float64)
    cent = np.column_stack([np.bincount(inverse, weights=p[:, i], minlength=m) for i in range(3)]) / n[:, None]
    return cent, inverse


def voxel_normals(normals: np.ndarray, inverse: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit mean of the (n, 3) ``normals`` falling in each of ``m`` voxels.

    Returns:
        (m, 3) float64 unit normals; (m,) float64 agreement (mean resultant length, 0..1: near 0
        where normals cancel, e.g. both faces of a sheet thinner than a voxel).
    """
    s = np.column_stack([np.bincount(inverse, weights=normals[:, i], minlength=m) for i in range(3)])
    length = np.linalg.norm(s, axis=1)
    agree = length / np.maximum(np.bincount(inverse, minlength=m), 1)
    return s / np.where(length > 0, length, 1.0)[:, None], agree
