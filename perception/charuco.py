"""ChArUco calibration board: definition, image, detection and per-image board pose.

The board frame is OpenCV's: origin at the board's top-left outer corner, x along the
squares' rows, y down the image of the board, z into the board (away from a camera that
sees its printed face). Corner coordinates come from ``cv2.aruco.CharucoBoard``.

Default board: 7 x 5 squares of 30 mm with 22 mm DICT_5X5_100 markers, i.e. 210 x 150 mm, which
prints on A4 and, at 0.3-0.45 m from a D405-class camera (fx ~ 675 px at 1280x720), gives
squares of ~45-65 px: large enough for sub-pixel corners, small enough to stay in view while
tilted by ±30 deg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gluecell.core.validate import as_array

from .errors import PerceptionError

__all__ = [
    "BoardSpec",
    "BoardDetection",
    "BoardNotFound",
    "make_board",
    "board_image",
    "board_pixel_to_board_m",
    "board_pose",
    "detect_board",
]


class BoardNotFound(PerceptionError):
    """Too few ChArUco corners were found in an image to compute the board pose."""


@dataclass(frozen=True)
class BoardSpec:
    """A ChArUco board.

    Attributes:
        squares_x, squares_y: chessboard squares along x and y.
        square_m: square edge, metres. marker_m: ArUco marker edge, metres.
        dictionary: name of a predefined ``cv2.aruco`` dictionary, e.g. "DICT_5X5_100".
    """

    squares_x: int = 7
    squares_y: int = 5
    square_m: float = 0.030
    marker_m: float = 0.022
    dictionary: str = "DICT_5X5_100"

    def __post_init__(self) -> None:
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError("a ChArUco board needs at least 3 x 3 squares")
        if not (0 < self.marker_m < self.square_m):
            raise ValueError(f"marker_m must be in (0, square_m), got {self.marker_m} / {self.square_m}")

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the chessboard area, metres."""
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    @property
    def n_corners(self) -> int:
        """Number of inner (ChArUco) corners."""
        return (self.squares_x - 1) * (self.squares_y - 1)


@dataclass(frozen=True)
class BoardDetection:
    """Board seen in one image.

    Attributes:
        ids: (k,) int64 ChArUco corner ids.
        corners_px: (k, 2) float64 detected corner pixels.
        T_cam_board: (4, 4) float64 board pose in the camera optical frame (metres).
        reproj_rms_px: RMS reprojection error of the corners for that pose, pixels.
    """

    ids: np.ndarray
    corners_px: np.ndarray
    T_cam_board: np.ndarray
    reproj_rms_px: float


def make_board(spec: BoardSpec):
    """The ``cv2.aruco.CharucoBoard`` of ``spec``."""
    import cv2

    try:
        dict_id = getattr(cv2.aruco, spec.dictionary)
    except AttributeError as exc:
        raise PerceptionError(f"unknown ArUco dictionary {spec.dictionary!r}") from exc
    d = cv2.aruco.getPredefinedDictionary(dict_id)
    return cv2.aruco.CharucoBoard((spec.squares_x, spec.squares_y), spec.square_m, spec.marker_m, d)


def board_image(spec: BoardSpec, px_per_square: int, margin_px: int = 0) -> tuple[np.ndarray, float]:
    """Printable image of the board with a white margin.

    Pixel ``(u, v)``'s centre is the board point :func:`board_pixel_to_board_m` gives for the
    returned scale.

    Args:
        px_per_square: pixels per square edge (an integer, so squares tile the image exactly).
        margin_px: white margin on every side, pixels.

    Returns:
        ((h, w) uint8 image, pixels per metre), h = squares_y * px_per_square + 2 * margin_px.
    """
    if px_per_square < 8:
        raise PerceptionError(f"px_per_square must be >= 8, got {px_per_square}")
    size = (spec.squares_x * px_per_square, spec.squares_y * px_per_square)
    img = make_board(spec).generateImage(size, marginSize=0, borderBits=1)
    return np.pad(img, margin_px, constant_values=255), px_per_square / spec.square_m


def board_pixel_to_board_m(px_per_m: float, margin_px: int = 0) -> np.ndarray:
    """(3, 3) float64 homography from :func:`board_image` pixels to board-plane metres (x, y)."""
    s = 1.0 / px_per_m
    off = (0.5 - margin_px) * s
    return np.array([[s, 0.0, off], [0.0, s, off], [0.0, 0.0, 1.0]])


def board_pose(
    ids: np.ndarray, corners_px: np.ndarray, K: np.ndarray, dist: np.ndarray | None, spec: BoardSpec
) -> tuple[np.ndarray, float]:
    """Board pose from its detected corners (solvePnP IPPE, then Levenberg-Marquardt).

    Args:
        ids: (k,) corner ids. corners_px: (k, 2) pixels. K: (3, 3). dist: OpenCV coefficients or None.

    Returns:
        ((4, 4) T_cam_board, RMS reprojection error in pixels).
    """
    obj = make_board(spec).getChessboardCorners()[np.asarray(ids, dtype=np.int64)].astype(np.float64)
    dist = np.zeros(5) if dist is None else np.asarray(dist, dtype=np.float64)
    return _pose(obj, np.asarray(corners_px, dtype=np.float64), np.asarray(K, dtype=np.float64), dist)


def _pose(obj: np.ndarray, img: np.ndarray, K: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise BoardNotFound("solvePnP failed for the detected board corners")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img.reshape(-1, 2)) ** 2, axis=1))))
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.ravel()
    return T, rms


def detect_board(
    image: np.ndarray,
    K: np.ndarray,
    dist: np.ndarray | None,
    spec: BoardSpec,
    *,
    min_corners: int = 8,
) -> BoardDetection:
    """Detect the board's ChArUco corners and compute its pose (solvePnP, IPPE + LM refine).

    Args:
        image: (h, w) uint8 grey or (h, w, 3) uint8 BGR image.
        K: (3, 3) camera matrix, pixels. dist: OpenCV distortion coefficients or None.
        spec: the board that is expected.
        min_corners: fewer corners than this raises :class:`BoardNotFound` (a pose from few,
            nearly collinear corners is unreliable).

    Raises:
        BoardNotFound: the board is not (or not enough of it is) visible.
    """
    import cv2

    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise PerceptionError(f"image: expected uint8 grey or BGR, got {img.dtype} {img.shape}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    K = as_array("K", K, ndim=2)
    dist = np.zeros(5) if dist is None else as_array("dist", dist, ndim=1)
    board = make_board(spec)
    detector = cv2.aruco.CharucoDetector(board)
    corners, ids, _, _ = detector.detectBoard(img)
    n = 0 if ids is None else len(ids)
    if n < min_corners:
        raise BoardNotFound(
            f"found {n} ChArUco corner(s), need >= {min_corners}: board out of view, too steep, "
            "blurred or badly lit; move the board to face the camera and retake this image",
            corners=n,
        )
    ids = ids.ravel().astype(np.int64)
    px = corners.reshape(-1, 2).astype(np.float64)
    T, rms = _pose(board.getChessboardCorners()[ids].astype(np.float64), px, K, dist)
    return BoardDetection(ids=ids, corners_px=px, T_cam_board=T, reproj_rms_px=rms)
