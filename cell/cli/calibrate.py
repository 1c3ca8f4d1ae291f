"""``gluecell calibrate``: eye-to-hand calibration of a fixed camera with a ChArUco board.

``calibrate sim`` runs the simulated calibration (the world renders the board images and knows
the true camera pose) and prints residuals and the error against the truth; ``calibrate run``
calibrates from real images, the camera intrinsics and the robot's reported flange poses.

Input files of ``calibrate run``:

- ``--robot-poses poses.json``: ``{"format": "gluecell.robot_poses/1", "frame": "base_link",
  "units": "m", "poses": [{"image": "000.png", "T_base_flange": [[4x4]]} | {"image": ..,
  "xyz": [x, y, z], "quat_xyzw": [x, y, z, w]}, ...]}``; image names are relative to ``--images``.
- ``--intrinsics intrinsics.json``: ``{"width", "height", "fx", "fy", "cx", "cy", "dist": [k1, k2, p1, p2, k3]}``.
- ``--board board.json`` (optional): ``{"squares_x", "squares_y", "square_m", "marker_m", "dictionary"}``,
  the fields of :class:`gluecell.perception.charuco.BoardSpec` (default: its defaults).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import FormatError, ValidationError

__all__ = ["register", "POSES_FORMAT", "load_robot_poses", "load_intrinsics", "load_board", "save_run_inputs"]

POSES_FORMAT = "gluecell.robot_poses/1"
_METHOD_CHOICES = ("tsai", "park", "horaud", "andreff", "daniilidis", "all")


def register(subparsers: Any) -> None:
    """Add ``calibrate sim`` and ``calibrate run``."""
    p = subparsers.add_parser("calibrate", help="hand-eye calibration of a fixed camera (ChArUco board on the robot)")
    sub = p.add_subparsers(dest="calibrate_command", metavar="MODE", required=True)
    s = sub.add_parser("sim", help="simulated calibration run with a known true camera pose")
    s.add_argument("--out", type=Path, required=True, help="calibration file to write (gluecell.handeye/1)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--method", choices=_METHOD_CHOICES, default="all", help="hand-eye method (default: compare all)")
    s.add_argument("--poses", type=int, default=25, help="number of robot poses")
    s.add_argument("--save-run", type=Path, default=None, help="also write the run's images and pose files here")
    s.add_argument("--keep-intrinsics", action="store_true", help="do not refine fx, fy, cx, cy from the images")
    s.set_defaults(func=_cmd_sim)
    r = sub.add_parser("run", help="calibrate from real board images and robot poses")
    r.add_argument("--images", type=Path, required=True, help="folder of board images")
    r.add_argument("--robot-poses", type=Path, required=True, help="JSON of flange poses, one per image")
    r.add_argument("--intrinsics", type=Path, required=True, help="JSON of the camera intrinsics")
    r.add_argument("--out", type=Path, required=True, help="calibration file to write (gluecell.handeye/1)")
    r.add_argument("--method", choices=_METHOD_CHOICES, default="all")
    r.add_argument("--serial", default="", help="camera serial number recorded in the file")
    r.add_argument("--keep-intrinsics", action="store_true", help="do not refine fx, fy, cx, cy from the images")
    r.add_argument("--board", type=Path, default=None, help="JSON of the ChArUco board (default: 7x5, 30 mm)")
    r.set_defaults(func=_cmd_run)


def _pose_from_entry(e: Any, i: int, path: Path) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    from gluecell.core.validate import as_array, as_pose

    where = f"{path}: poses[{i}]"
    if not isinstance(e, dict):
        raise FormatError(f"{where}: expected an object")
    try:
        if "T_base_flange" in e:
            return as_pose(f"{where}.T_base_flange", e["T_base_flange"])
        xyz = as_array(f"{where}.xyz", e["xyz"], ndim=1)
        q = as_array(f"{where}.quat_xyzw", e["quat_xyzw"], ndim=1)
    except KeyError as exc:
        raise FormatError(f"{where}: needs 'T_base_flange' or 'xyz' + 'quat_xyzw'") from exc
    if xyz.shape != (3,) or q.shape != (4,) or abs(np.linalg.norm(q) - 1) > 1e-3:
        raise ValidationError(f"{where}: xyz must have 3 values and quat_xyzw 4 with unit norm")
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(q).as_matrix()
    T[:3, 3] = xyz
    return T


def load_robot_poses(path: Path) -> tuple[list[str], np.ndarray]:
    """Read ``gluecell.robot_poses/1``: (image names, (n, 4, 4) T_base_flange)."""
    from gluecell.core.fileio import check_version, read_json

    doc = read_json(path)
    if not isinstance(doc, dict):
        raise FormatError(f"{path}: top level must be an object")
    check_version(doc.get("format"), POSES_FORMAT, what=str(path))
    if doc.get("units", "m") != "m" or doc.get("frame", "base_link") != "base_link":
        raise FormatError(f"{path}: poses must be in metres in base_link")
    entries = doc.get("poses")
    if not isinstance(entries, list) or not entries:
        raise FormatError(f"{path}: 'poses' must be a non-empty list")
    names = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("image"), str):
            raise FormatError(f"{path}: poses[{i}] needs an 'image' file name")
        names.append(e["image"])
    return names, np.stack([_pose_from_entry(e, i, path) for i, e in enumerate(entries)])


def load_intrinsics(path: Path) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Read intrinsics JSON: (width, height, (3, 3) K, (k,) distortion)."""
    from gluecell.core.fileio import read_json
    from gluecell.core.types import CameraIntrinsics

    d = read_json(path)
    try:
        intr = CameraIntrinsics(
            int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"])
        )
        dist = np.asarray(d.get("dist", [0.0] * 5), dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: bad intrinsics ({exc}); need width, height, fx, fy, cx, cy[, dist]") from exc
    if dist.ndim != 1 or dist.size not in (4, 5, 8, 12, 14) or not np.all(np.isfinite(dist)):
        raise FormatError(f"{path}: 'dist' must be 4, 5, 8, 12 or 14 finite OpenCV coefficients")
    return intr.width, intr.height, intr.K, dist


def load_board(path: Path | None) -> Any:
    """Read a board JSON into a :class:`BoardSpec` (unknown keys are an error); None gives the default."""
    from gluecell.core.config import from_dict
    from gluecell.core.fileio import read_json
    from gluecell.perception.charuco import BoardSpec

    if path is None:
        return BoardSpec()
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise FormatError(f"{path}: top level must be an object")
    return from_dict(BoardSpec, doc, path=str(path))


def save_run_inputs(
    folder: Path, images: np.ndarray, T_base_flange: np.ndarray, K: np.ndarray, dist: np.ndarray
) -> None:
    """Write images (PNG), ``poses.json`` and ``intrinsics.json`` in the ``calibrate run`` input format."""
    import cv2

    from gluecell.core.fileio import atomic_write_bytes, atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (img, T) in enumerate(zip(images, T_base_flange)):
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise FormatError(f"could not encode image {i}")
        atomic_write_bytes(folder / f"{i:03d}.png", buf.tobytes())
        entries.append({"image": f"{i:03d}.png", "T_base_flange": [[float(x) for x in r] for r in T]})
    atomic_write_json(
        folder / "poses.json", {"format": POSES_FORMAT, "frame": "base_link", "units": "m", "poses": entries}
    )
    h, w = images.shape[1:3]
    atomic_write_json(
        folder / "intrinsics.json",
        {
            "width": int(w),
            "height": int(h),
            "fx": float(K[0, 0]),
            "fy": float(K[1, 1]),
            "cx": float(K[0, 2]),
            "cy": float(K[1, 2]),
            "dist": [float(x) for x in dist],
        },
    )


def _read_images(folder: Path, names: list[str]) -> list[np.ndarray]:
    import cv2

    if not folder.is_dir():
        raise FormatError(f"{folder}: image folder not found")
    out = []
    for name in names:
        p = folder / name
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) if p.is_file() else None
        if img is None:
            raise FormatError(f"{p}: image missing or unreadable (named in the robot poses file)")
        out.append(img)
    return out


def _print_table(results: dict[str, Any], truth: np.ndarray | None) -> dict[str, Any]:
    from gluecell.perception.registration import pose_error

    print(
        f"{'method':<11} {'rms mm':>8} {'max mm':>8} {'rms deg':>8}"
        + ("  vs truth: mm     deg" if truth is not None else "")
    )
    summary: dict[str, Any] = {}
    for m, r in results.items():
        line = f"{m:<11} {r.residuals['rms_mm']:8.3f} {r.residuals['max_mm']:8.3f} {r.residuals['rms_deg']:8.4f}"
        summary[m] = dict(r.residuals)
        if truth is not None:
            e_mm, e_deg = pose_error(r.T_base_cam, truth)
            summary[m].update(error_mm=e_mm, error_deg=e_deg)
            line += f"  {e_mm:12.3f} {e_deg:7.4f}"
        print(line)
    return summary


def _solve_and_write(
    args: argparse.Namespace,
    images: list[np.ndarray],
    T_bf: np.ndarray,
    K: np.ndarray,
    dist: np.ndarray,
    serial: str,
    truth: np.ndarray | None,
    board: Any = None,
) -> int:
    from rich.console import Console

    from gluecell.perception.calibration import METHODS, calibrate_eye_to_hand, save_handeye
    from gluecell.perception.charuco import BoardSpec

    methods = METHODS if args.method == "all" else (args.method,)
    with Console(stderr=True).status(f"detecting the board in {len(images)} images and solving"):
        spec = board or BoardSpec()
        out = calibrate_eye_to_hand(images, T_bf, K, dist, spec, methods, refine=not args.keep_intrinsics)
    for msg in out.skipped:
        print(f"skipped {msg}")
    print(f"{len(out.used)} of {len(images)} images used")
    if not args.keep_intrinsics:
        f = out.K
        print(f"intrinsics refined: fx {f[0, 0]:.2f} fy {f[1, 1]:.2f} cx {f[0, 2]:.2f} cy {f[1, 2]:.2f} px "
              f"(reprojection {out.reproj_rms_px:.3f} px)")  # fmt: skip
    summary = _print_table(out.results, truth)
    extra = {
        "methods": summary,
        "images_used": out.used,
        "skipped": out.skipped,
        "K": [[float(x) for x in row] for row in out.K],
        "dist": [float(x) for x in out.dist],
        "intrinsics_refined": not args.keep_intrinsics,
    }
    # a cell has no truth: the method with the lowest residual is written
    save_handeye(args.out, out.best, serial, extra=extra)
    print(f"wrote {args.out} (method {out.best.method}, lowest residual)")
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    # The simulated run is the world (truth) talking, so it comes through the evaluator module,
    # which may read truth; the solving below sees only images, intrinsics and robot poses.
    from gluecell.cell.sim.calibration import simulated_calibration_inputs

    if args.poses < 3:
        raise ValidationError("--poses must be >= 3")
    images, T_bf, K, dist, serial, truth = simulated_calibration_inputs(args.seed, args.poses)
    if args.save_run is not None:
        save_run_inputs(args.save_run, images, T_bf, K, dist)
        print(f"wrote the run's images, poses.json and intrinsics.json to {args.save_run}")
    return _solve_and_write(args, list(images), T_bf, K, dist, serial, truth)


def _cmd_run(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    names, T_bf = load_robot_poses(args.robot_poses)
    w, h, K, dist = load_intrinsics(args.intrinsics)
    images = _read_images(args.images, names)
    for name, img in zip(names, images):
        if img.shape != (h, w):
            raise ValidationError(f"{name}: image is {img.shape[1]}x{img.shape[0]}, intrinsics say {w}x{h}")
    return _solve_and_write(args, images, T_bf, K, dist, args.serial, None, board)
