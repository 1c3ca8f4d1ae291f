"""Simulated eye-to-hand calibration run (the truth side).

A fixed camera looks at the upper station; the robot carries a ChArUco board on its flange
through N poses. The world knows the true camera pose ``T_base_cam`` and the true board mount
``T_flange_board``; the cell gets only what a real run gives: images, the camera intrinsics
and the flange poses the robot *reports*.

Chosen values (FACTS.md where it has them):

- Camera: 1280 x 720 colour/IR imager with a D405-like 87 deg HFOV (fx = 640 / tan(43.5 deg)
  ~ 675 px, FACTS.md), ideal pinhole (the pipeline undistorts real images with its own
  coefficients); mounted ~0.45 m above and beside the upper station, looking at it, with a
  per-seed offset of up to ±20 mm and ±3 deg so the truth is not a round number.
- Board mount: 40 mm in front of the flange, per-seed offset up to ±10 mm and ±8 deg.
- Board poses: board centre 0.28-0.42 m in front of the camera (D405 ideal range 70-500 mm),
  within ±50 mm of the optical axis, tilted up to ±30 deg about both in-plane axes, turned up to
  ±40 deg in-plane: the rotation spread that hand-eye methods need. Reachability by a particular
  arm is not modelled.
- Robot repeatability: FACTS.md gives ±0.02-0.03 mm for typical datasheets; the reported flange
  pose differs from the actual one by N(0, 0.01 mm) per axis (3 sigma = 0.03 mm) and
  N(0, 0.005 deg) per axis in rotation (0.03 mm over a ~0.3 m wrist lever, 3 sigma).
- Robot absolute accuracy (kinematic model error, the same every time the arm returns to a
  pose, so it does not average out like repeatability): FACTS.md gives 0.2-2 mm before
  calibration and < 0.65 mm measured on an ABB IRB 1600 over its whole workspace; in the small
  volume of a calibration run the error is smaller; chosen N(0, 0.1 mm) per axis and
  N(0, 0.01 deg) per axis for each pose.
- Camera intrinsics: the cell is given the camera's factory intrinsics; the true ones differ by
  N(0, 0.1 %) in focal length and N(0, 0.5 px) in principal point (chosen: factory calibration
  of D4xx-class cameras is good to a fraction of a percent).
- Imaging: the board image is warped with the true homography K [r1 r2 t] at 3x supersampling,
  averaged down (area filter), blurred with a 0.7 px Gaussian (optics), lit by a smooth gradient
  (±15 %) and given Gaussian noise of 2 grey levels (8-bit sensor noise at good light).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gluecell.perception.charuco import BoardSpec, board_image, board_pixel_to_board_m

__all__ = ["CalibrationSimConfig", "CalibrationRun", "simulate_calibration_run", "look_at", "render_board"]


@dataclass(frozen=True)
class CalibrationSimConfig:
    """Parameters of the simulated run (see the module docstring for the sources)."""

    n_poses: int = 25
    width: int = 1280
    height: int = 720
    hfov_deg: float = 87.0
    cam_eye: tuple[float, float, float] = (0.55, -0.45, 0.50)
    cam_target: tuple[float, float, float] = (0.55, -0.20, 0.15)
    cam_jitter_m: float = 0.020
    cam_jitter_deg: float = 3.0
    mount_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.040)
    mount_jitter_m: float = 0.010
    mount_jitter_deg: float = 8.0
    dist_range_m: tuple[float, float] = (0.28, 0.42)
    lateral_m: float = 0.05
    tilt_deg: float = 30.0
    spin_deg: float = 40.0
    repeat_sigma_m: float = 0.00001
    repeat_sigma_deg: float = 0.005
    accuracy_sigma_m: float = 0.0001
    accuracy_sigma_deg: float = 0.01
    focal_error_rel: float = 0.001
    centre_error_px: float = 0.5
    blur_sigma_px: float = 0.7
    noise_sigma: float = 2.0
    supersample: int = 3
    board: BoardSpec = field(default_factory=BoardSpec)


@dataclass(frozen=True)
class CalibrationRun:
    """What the run produced, truth included.

    Attributes:
        images: (n, h, w) uint8 grey images, one per pose.
        K: (3, 3) camera matrix the cell is given (factory intrinsics). dist: (5,) distortion (zeros).
        K_true: (3, 3) the camera's true matrix, with which the images were rendered (truth).
        T_base_flange: (n, 4, 4) flange poses as the robot reports them (what the cell gets).
        T_base_flange_true: (n, 4, 4) actual flange poses (truth).
        T_base_cam_true: (4, 4) true camera pose. T_flange_board_true: (4, 4) true board mount.
        board: the board. serial: simulated camera serial.
    """

    images: np.ndarray
    K: np.ndarray
    dist: np.ndarray
    K_true: np.ndarray
    T_base_flange: np.ndarray
    T_base_flange_true: np.ndarray
    T_base_cam_true: np.ndarray
    T_flange_board_true: np.ndarray
    board: BoardSpec
    serial: str = "sim-cam-0"


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(axis, dtype=np.float64) * angle)[0]


def _small_rot(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    return _rot(rng.uniform(-1, 1, 3), np.radians(max_deg) / np.sqrt(3))


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) optical-frame pose (z forward, x right, y down) at ``eye`` looking at ``target``
    (:func:`gluecell.core.geometry.look_at`)."""
    from gluecell.core.geometry import look_at as _look_at

    return _look_at(eye, target, up)


def render_board(
    T_cam_board: np.ndarray, K: np.ndarray, size: tuple[int, int], cfg: CalibrationSimConfig, rng: np.random.Generator
) -> np.ndarray:
    """(h, w) uint8 image of the board at ``T_cam_board`` through pinhole ``K`` (size = (w, h))."""
    import cv2

    s = cfg.supersample
    # board pixels per square that map about 1:1 onto supersampled camera pixels
    px_sq = int(np.clip(K[0, 0] * s * cfg.board.square_m / max(T_cam_board[2, 3], 0.05), 16, 400))
    margin = px_sq // 2
    src, ppm = board_image(cfg.board, px_sq, margin)
    S = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])
    P = T_cam_board[:3, [0, 1, 3]]
    H = S @ K @ P @ board_pixel_to_board_m(ppm, margin)
    w, h = size
    big = cv2.warpPerspective(src, H, (w * s, h * s), flags=cv2.INTER_LINEAR, borderValue=90)
    img = cv2.resize(big.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    img = cv2.GaussianBlur(img, (0, 0), cfg.blur_sigma_px)
    gx = np.linspace(-1, 1, w)[None, :] * rng.uniform(-0.15, 0.15)
    gy = np.linspace(-1, 1, h)[:, None] * rng.uniform(-0.15, 0.15)
    img = img * (1.0 + gx + gy) + rng.normal(0.0, cfg.noise_sigma, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _board_pose_in_cam(rng: np.random.Generator, cfg: CalibrationSimConfig) -> np.ndarray:
    """A random board pose facing the camera; the board centre is placed, not its corner."""
    R = (
        _rot([1.0, 0, 0], np.radians(rng.uniform(-cfg.tilt_deg, cfg.tilt_deg)))
        @ _rot([0, 1.0, 0], np.radians(rng.uniform(-cfg.tilt_deg, cfg.tilt_deg)))
        @ _rot([0, 0, 1.0], np.radians(rng.uniform(-cfg.spin_deg, cfg.spin_deg)))
    )
    centre = np.array([*rng.uniform(-cfg.lateral_m, cfg.lateral_m, 2), rng.uniform(*cfg.dist_range_m)])
    c_board = np.array([*cfg.board.size_m, 0.0]) / 2
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = centre - R @ c_board
    return T


def _perturb(T: np.ndarray, rng: np.random.Generator, sigma_m: float, sigma_deg: float) -> np.ndarray:
    out = T.copy()
    out[:3, :3] = _rot(rng.normal(0.0, 1.0, 3), np.radians(sigma_deg)) @ T[:3, :3] if sigma_deg > 0 else T[:3, :3]
    out[:3, 3] = T[:3, 3] + rng.normal(0.0, sigma_m, 3)
    return out


def simulate_calibration_run(seed: int, cfg: CalibrationSimConfig | None = None) -> CalibrationRun:
    """Simulate one eye-to-hand calibration run, deterministic for ``seed``."""
    cfg = cfg or CalibrationSimConfig()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA11B]))
    fx = 0.5 * cfg.width / np.tan(np.radians(cfg.hfov_deg) / 2)
    K = np.array([[fx, 0, (cfg.width - 1) / 2], [0, fx, (cfg.height - 1) / 2], [0, 0, 1.0]])
    X = look_at(np.asarray(cfg.cam_eye), np.asarray(cfg.cam_target))
    X[:3, :3] = _small_rot(rng, cfg.cam_jitter_deg) @ X[:3, :3]
    X[:3, 3] += rng.uniform(-cfg.cam_jitter_m, cfg.cam_jitter_m, 3)
    Y = np.eye(4)
    Y[:3, :3] = _small_rot(rng, cfg.mount_jitter_deg)
    Y[:3, 3] = np.asarray(cfg.mount_offset_m) + rng.uniform(-cfg.mount_jitter_m, cfg.mount_jitter_m, 3)
    K_true = K.copy()
    K_true[[0, 1], [0, 1]] *= 1.0 + rng.normal(0.0, cfg.focal_error_rel, 2)
    K_true[[0, 1], [2, 2]] += rng.normal(0.0, cfg.centre_error_px, 2)
    images, true_fl, reported = [], [], []
    for _ in range(cfg.n_poses):
        T_cb = _board_pose_in_cam(rng, cfg)
        T_bf = X @ T_cb @ np.linalg.inv(Y)
        true_fl.append(T_bf)
        # the robot's report differs from where the flange really is by its absolute accuracy
        # (systematic per pose) and its repeatability (random per move)
        rep = _perturb(T_bf, rng, cfg.accuracy_sigma_m, cfg.accuracy_sigma_deg)
        reported.append(_perturb(rep, rng, cfg.repeat_sigma_m, cfg.repeat_sigma_deg))
        images.append(render_board(T_cb, K_true, (cfg.width, cfg.height), cfg, rng))
    return CalibrationRun(
        images=np.stack(images),
        K=K,
        dist=np.zeros(5),
        K_true=K_true,
        T_base_flange=np.stack(reported),
        T_base_flange_true=np.stack(true_fl),
        T_base_cam_true=X,
        T_flange_board_true=Y,
        board=cfg.board,
    )
