"""Camera geometry of the virtual RealSense D4xx: intrinsics, station views, hand-eye error.

Values come from FACTS.md ("3D sensing"): D405 baseline 18 mm, field of view 87° x 58°, ideal range
70-500 mm, depth unit 0.1 mm; noise σz = z² · s / (f_px · B) with subpixel s ≈ 0.08.
All poses are ``(4, 4) float64`` homogeneous transforms ``T_base_cam`` of the camera's optical frame
(x right, y down, z forward) in ``base_link``; metres and radians inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gluecell.core.errors import ConfigError
from gluecell.core.types import CameraIntrinsics

__all__ = [
    "CellCameras",
    "draw_camera_errors",
    "D4xxCamera",
    "ViewSpec",
    "DEFAULT_VIEWS",
    "UPPER_VIEWS",
    "look_at",
    "view_pose",
    "se3_exp",
    "draw_pose_error",
    "perturb_pose",
]


@dataclass(frozen=True)
class D4xxCamera:
    """A rectified Intel RealSense D4xx depth camera (default: D405-like at 848x480).

    Attributes:
        name: model name written into recordings.
        width, height: image size, pixels.
        hfov_deg, vfov_deg: field of view, degrees (D405: 87 x 58, FACTS.md).
        baseline_m: stereo baseline, metres (D405: 0.018, FACTS.md).
        subpixel: stereo matching subpixel accuracy s of the noise formula (FACTS.md: ≈ 0.08).
        noise_factor: multiplier on the formula, the noise of a well-textured surface (default 1.0: the
            formula is the floor, issue 12). FACTS.md: measured D4xx noise on white matte targets is 3-5 x
            the formula: a plain target gives passive stereo little to match; the sensor model's texture
            gain (up to 3.5 x on plain surfaces) and dark gain (up to 2 x) multiply this.
        correlated_fraction: std of the spatially correlated disparity error, as a fraction of the
            per-pixel one (chosen: 0.25; stereo matching windows and calibration ripple make part of
            the error smooth over about ``correlated_cell_px`` pixels).
        correlated_cell_px: size of the correlated error's cells, pixels (chosen: 24 px ≈ 8 mm at 0.15 m).
        depth_scale: metres per uint16 depth unit (D405: 1e-4).
        min_range_m, max_range_m: depth outside this range reads 0 (FACTS.md: D405 ideal range
            70-500 mm, minimum 40-100 mm by resolution; we use 0.07-0.50 m).
    """

    name: str = "Intel RealSense D405 (virtual)"
    width: int = 848
    height: int = 480
    hfov_deg: float = 87.0
    vfov_deg: float = 58.0
    baseline_m: float = 0.018
    subpixel: float = 0.08
    noise_factor: float = 1.0
    correlated_fraction: float = 0.25
    correlated_cell_px: int = 24
    depth_scale: float = 1e-4
    min_range_m: float = 0.07
    max_range_m: float = 0.50

    def __post_init__(self) -> None:
        checks = {
            "width": self.width > 0,
            "height": self.height > 0,
            "hfov_deg": 0.0 < self.hfov_deg < 170.0,
            "vfov_deg": 0.0 < self.vfov_deg < 170.0,
            "baseline_m": self.baseline_m > 0,
            "subpixel": self.subpixel >= 0,
            "noise_factor": self.noise_factor >= 0,
            "correlated_fraction": self.correlated_fraction >= 0,
            "correlated_cell_px": self.correlated_cell_px >= 2,
            "depth_scale": self.depth_scale > 0,
            "min_range_m": 0 <= self.min_range_m < self.max_range_m,
            "max_range_m": self.max_range_m <= 65535 * self.depth_scale,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"D4xxCamera: invalid value(s) for {bad}", fields=bad)

    @property
    def fx(self) -> float:
        """Horizontal focal length, pixels: ``0.5 · width / tan(HFOV / 2)``."""
        return 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def fy(self) -> float:
        """Vertical focal length, pixels: ``0.5 · height / tan(VFOV / 2)``."""
        return 0.5 * self.height / math.tan(math.radians(self.vfov_deg) / 2.0)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the depth (and aligned colour) image; principal point at the centre."""
        return CameraIntrinsics(
            self.width, self.height, self.fx, self.fy, (self.width - 1) / 2.0, (self.height - 1) / 2.0
        )

    def sigma_z(self, z: np.ndarray | float) -> np.ndarray:
        """Per-pixel depth noise std on a matte white target, metres.

        Args:
            z: depth, metres (any shape).

        Returns:
            ``noise_factor · z² · s / (fx · B)``, same shape as ``z``, metres.
        """
        z = np.asarray(z, dtype=np.float64)
        return self.noise_factor * z * z * self.subpixel / (self.fx * self.baseline_m)


@dataclass(frozen=True)
class ViewSpec:
    """Where one camera looks from, relative to the station's look-at target.

    Attributes:
        azimuth_deg: direction from the target to the camera in the floor plane, degrees from +x
            (the toe direction) towards +y.
        elevation_deg: angle of the camera above the horizontal through the target, degrees.
        distance_m: camera-to-target distance, metres.
        target_dx_m, target_dz_m: the view's own look-at point, offset from the station's target along the
            station's toe direction and up (a camera at the D405's short range looks at the toe or heel half
            of a part rather than its centre).
    """

    azimuth_deg: float = 0.0
    elevation_deg: float = 60.0
    distance_m: float = 0.24
    target_dx_m: float = 0.0
    target_dz_m: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 < self.elevation_deg <= 90.0 and self.distance_m > 0):
            raise ConfigError(f"ViewSpec: need 0 < elevation <= 90 and distance > 0, got {self}")
        if not (abs(self.target_dx_m) <= 0.3 and abs(self.target_dz_m) <= 0.3):
            raise ConfigError(f"ViewSpec: target offsets must lie within 0.3 m, got {self}")


#: Round 2 (issue 12): each camera sits as close as it can while still framing every EU 36-46 part of its
#: station with a 12 px margin (the scan refuses a part cut by an image border), found by a search over the
#: distance and the look-at offset on 48 world parts (boot, sneaker and court at EU 46 with their placement
#: spread). A D405 is at its best at 0.12-0.20 m (FACTS.md: ideal range 70-500 mm; formula noise 0.10 / 0.40 mm
#: at 100 / 200 mm), but at that range one 87° x 58° view covers only part of a shoe ~0.3 m long: the views
#: below reach median depths of 0.21-0.25 m (sole station, upper sides and toe) and 0.31-0.33 m (the two
#: heel obliques, which must frame a boot's shaft); the near parts of each part are at 0.08-0.15 m.
#: Sole station: one camera above and four obliques into the cup, two on the toe half, two on the heel half.
DEFAULT_VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(azimuth_deg=0.0, elevation_deg=70.0, distance_m=0.20, target_dx_m=0.04),
    *(ViewSpec(azimuth_deg=a, elevation_deg=45.0, distance_m=d, target_dx_m=dx)
      for a, d, dx in ((60.0, 0.22, 0.02), (-60.0, 0.22, 0.02), (120.0, 0.20, -0.04), (-120.0, 0.20, -0.04))),
)  # fmt: skip
#: Upper station: the bite-line band lies 5-20 mm below the feather edge where the side of a bottom-up upper
#: bulges outwards, i.e. it faces partly downwards, so the cameras sit low (15° above their look-at point):
#: two on the sides, four obliques on the toe and heel halves, one level with the toe (2°: with toe spring
#: the band under the toe's feather edge faces down and forwards) and one above for the bottom.
UPPER_VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(azimuth_deg=90.0, elevation_deg=15.0, distance_m=0.25, target_dx_m=-0.02),
    ViewSpec(azimuth_deg=-90.0, elevation_deg=15.0, distance_m=0.25, target_dx_m=-0.02),
    *(ViewSpec(azimuth_deg=a, elevation_deg=15.0, distance_m=d, target_dx_m=dx)
      for a, d, dx in ((40.0, 0.18, 0.08), (-40.0, 0.18, 0.08), (140.0, 0.26, -0.10), (-140.0, 0.26, -0.10))),
    ViewSpec(azimuth_deg=0.0, elevation_deg=2.0, distance_m=0.16, target_dx_m=0.10),
    ViewSpec(azimuth_deg=0.0, elevation_deg=75.0, distance_m=0.19, target_dx_m=0.04, target_dz_m=0.03),
)  # fmt: skip


def look_at(eye: np.ndarray, target: np.ndarray, along: np.ndarray = (1.0, 0.0, 0.0)) -> np.ndarray:
    """Optical-frame pose at ``eye`` looking at ``target``.

    The image x axis is the direction of ``along`` projected on the image plane (so a shoe's length
    runs across the wide side of the image); it is flipped if needed so that the image's "down" (y)
    points down in the world.

    Args:
        eye: (3,) float64 camera centre, metres, base_link.
        target: (3,) float64 point on the optical axis, metres, base_link.
        along: (3,) preferred direction of the image x axis, base_link.

    Returns:
        (4, 4) float64 ``T_base_cam``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    a = np.asarray(along, dtype=np.float64)
    x = a - (a @ z) * z
    if np.linalg.norm(x) < 1e-6:  # looking along ``along``: fall back to world y
        x = np.array([0.0, 1.0, 0.0]) - z[1] * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    if y[2] > 0:
        x, y = -x, -y
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def view_pose(target: np.ndarray, view: ViewSpec, yaw_rad: float = 0.0) -> np.ndarray:
    """Camera pose of ``view`` around ``target`` (metres, base_link); ``yaw_rad`` turns the station.

    Returns:
        (4, 4) float64 ``T_base_cam``.
    """
    az = math.radians(view.azimuth_deg) + yaw_rad
    el = math.radians(view.elevation_deg)
    direction = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    along = np.array([math.cos(yaw_rad), math.sin(yaw_rad), 0.0])
    target = np.asarray(target, dtype=np.float64) + view.target_dx_m * along + np.array([0.0, 0.0, view.target_dz_m])
    return look_at(target + view.distance_m * direction, target, along)


def _skew(w: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def se3_exp(rotvec: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Rigid transform with rotation vector ``rotvec`` (radians) and translation ``trans`` (metres).

    Returns:
        (4, 4) float64 transform (rotation by Rodrigues' formula; translation applied as given).
    """
    w = np.asarray(rotvec, dtype=np.float64)
    th = float(np.linalg.norm(w))
    K = _skew(w / th) if th > 0 else np.zeros((3, 3))
    T = np.eye(4)
    T[:3, :3] = np.eye(3) + math.sin(th) * K + (1.0 - math.cos(th)) * (K @ K)
    T[:3, 3] = np.asarray(trans, dtype=np.float64)
    return T


def draw_pose_error(rng: np.random.Generator, trans_std_m: float, rot_std_deg: float) -> np.ndarray:
    """A random small rigid error: per-axis N(0, trans_std_m) translation, N(0, rot_std_deg) rotation.

    Returns:
        (4, 4) float64 transform ``E`` to right-multiply a camera pose with (error in the camera frame).
    """
    if trans_std_m < 0 or rot_std_deg < 0:
        raise ConfigError("hand-eye error std must be >= 0")
    rot = rng.normal(0.0, math.radians(rot_std_deg), 3)
    trans = rng.normal(0.0, trans_std_m, 3)
    return se3_exp(rot, trans)


def perturb_pose(T_base_cam_true: np.ndarray, error: np.ndarray) -> np.ndarray:
    """What the cell believes: the true camera pose composed with a hand-eye error ``E`` (camera frame).

    Args:
        T_base_cam_true: (4, 4) float64 true pose.
        error: (4, 4) float64 rigid error.

    Returns:
        (4, 4) float64 ``T_base_cam_true @ error``.
    """
    return np.asarray(T_base_cam_true, dtype=np.float64) @ np.asarray(error, dtype=np.float64)


@dataclass(frozen=True)
class CellCameras:
    """The fixed errors of one cell's cameras (hidden truth): drawn once per cell, the same for every scan.

    Attributes:
        handeye: part -> one (4, 4) hand-eye error per view of that station (right-multiplies the true pose).
        depth: part -> (n_views, 2) float64 per camera (depth scale error, depth bias in metres).
    """

    handeye: dict[str, list[np.ndarray]]
    depth: dict[str, np.ndarray]

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for a truth file: ``handeye_error_<part>`` (n, 4, 4), ``depth_error_<part>`` (n, 2)."""
        out = {f"handeye_error_{p}": np.asarray(v) for p, v in self.handeye.items()}
        out.update({f"depth_error_{p}": np.asarray(v) for p, v in self.depth.items()})
        return out


def draw_camera_errors(
    rng: np.random.Generator, counts: dict[str, int], handeye_std: tuple[float, float],
    depth_max: tuple[float, float],
) -> CellCameras:  # fmt: skip
    """Per station (``counts``: part -> number of views), one hand-eye error per camera (std (m, deg)) and one
    depth (scale, bias m) per camera, uniform within ``depth_max``; drawn in a fixed order (upper, then sole)."""
    handeye, depth = {}, {}
    for part in ("upper", "sole"):
        n = counts[part]
        handeye[part] = [draw_pose_error(rng, *handeye_std) for _ in range(n)]
        depth[part] = rng.uniform(-1.0, 1.0, (n, 2)) * np.asarray(depth_max, dtype=np.float64)
    return CellCameras(handeye=handeye, depth=depth)
