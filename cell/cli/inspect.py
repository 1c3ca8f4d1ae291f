"""``gluecell inspect``: run ``quality.inspect`` on files (views, plan) and print the verdict."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register", "read_single_view"]


def read_single_view(image: str, depth_before: str, depth_after: str, calibration: str) -> Any:
    """An InspectionView from an RGB image, two 16-bit depth PNGs and a calibration JSON.

    The calibration JSON: ``{"width", "height", "fx", "fy", "cx", "cy", "depth_scale", "T_base_cam": 4x4}``.
    """
    import cv2
    import numpy as np

    from gluecell.core.errors import FormatError
    from gluecell.core.fileio import read_json
    from gluecell.core.types import CameraIntrinsics, InspectionView

    if not Path(calibration).is_file():
        raise FormatError(f"{calibration}: calibration file not found (the camera must be calibrated first)")
    cal = read_json(calibration)
    try:
        intr = CameraIntrinsics(int(cal["width"]), int(cal["height"]), float(cal["fx"]), float(cal["fy"]),
                                float(cal["cx"]), float(cal["cy"]))  # fmt: skip
        scale, T = float(cal["depth_scale"]), np.asarray(cal["T_base_cam"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{calibration}: bad calibration ({exc}); needs width, height, fx, fy, cx, cy, "
                          "depth_scale, T_base_cam") from exc  # fmt: skip

    def read(path: str, flags: int, what: str) -> Any:
        if not Path(path).is_file():
            raise FormatError(f"{path}: {what} not found")
        arr = cv2.imread(path, flags)
        if arr is None:
            raise FormatError(f"{path}: not a readable image ({what})")
        return arr

    img = read(image, cv2.IMREAD_COLOR, "UV image")
    d0 = read(depth_before, cv2.IMREAD_UNCHANGED, "depth before")
    d1 = read(depth_after, cv2.IMREAD_UNCHANGED, "depth after")
    if img.dtype != np.uint8:
        raise FormatError(f"{image}: expected an 8-bit RGB image, got {img.dtype}")
    return InspectionView(image=cv2.cvtColor(img, cv2.COLOR_BGR2RGB), depth_before=d0, depth_after=d1,
                          depth_scale=scale, intrinsics=intr, T_base_cam=T)  # fmt: skip


def _cmd_inspect(args: argparse.Namespace) -> int:
    import cv2

    from gluecell.core.errors import FormatError
    from gluecell.core.fileio import atomic_write_json
    from gluecell.core.plan import read_plan
    from gluecell.datasets.inspection.format import load_view
    from gluecell.quality import inspect
    from gluecell.quality.inspect import inspection_summary
    from gluecell.quality.policy import load_policy

    views = [load_view(v) for v in args.view or []]
    single = [args.image, args.depth_before, args.depth_after]
    if any(single):
        if not all(single) or args.calibration is None:
            raise FormatError("--image needs --depth-before, --depth-after and --calibration")
        views.append(read_single_view(args.image, args.depth_before, args.depth_after, args.calibration))
    if not views:
        raise FormatError("give --view FILE.npz (one per camera) or --image/--depth-before/--depth-after/--calibration")
    model = None if args.classical else args.model
    policy = load_policy(args.policy) if args.policy else None
    ins = inspect(views, read_plan(args.plan), item_id=args.item or "", model=model, policy=policy,
                  registry=args.registry)  # fmt: skip
    summary = inspection_summary(ins)
    if args.crops:
        Path(args.crops).mkdir(parents=True, exist_ok=True)
        for k, d in enumerate(ins.defects):
            if d.crop is not None and d.crop.size:
                cv2.imwrite(str(Path(args.crops) / f"defect{k}_{d.kind}.png"), cv2.cvtColor(d.crop, cv2.COLOR_RGB2BGR))
    if args.out:
        atomic_write_json(args.out, summary)
    print(f"verdict {ins.verdict}  coverage {ins.coverage:.3f}  overspray {ins.overspray_mm:.2f} mm  "
          f"gaps {ins.gap_area_mm2:.1f} mm2  ({ins.diagnostics['timing_ms']['total']:.0f} ms)")
    for d in ins.defects:
        print(f"  {d.kind:6} score {d.score:.2f}  view {d.view}  box {list(d.bbox_px)}  size {d.size_mm:.2f}")
    if not args.out:
        print(json.dumps({k: summary[k] for k in ("verdict", "coverage", "overspray_mm", "gap_area_mm2")}))
    return 0


def register(sub: Any) -> None:
    """Add ``gluecell inspect``."""
    p = sub.add_parser("inspect", help="inspect the glue on a sprayed part (UV image + depth + plan)")
    p.add_argument("--plan", required=True, help="the plan that was sprayed (gluecell.plan/1)")
    p.add_argument("--view", action="append", help="a station view (.npz, gluecell.inspection/1); repeat per camera")
    p.add_argument("--image", help="UV image (8-bit RGB PNG) of a single view")
    p.add_argument("--depth-before", help="16-bit depth PNG before spraying, registered to --image")
    p.add_argument("--depth-after", help="16-bit depth PNG after spraying")
    p.add_argument("--calibration", help="camera calibration JSON (intrinsics, depth_scale, T_base_cam)")
    p.add_argument("--model", default="champion", help="model file, registered name or alias (default champion)")
    p.add_argument("--registry", help="registry folder (default $GLUECELL_QA_REGISTRY or the shipped quality/models)")
    p.add_argument("--classical", action="store_true", help="classical measurement only (no network)")
    p.add_argument("--policy", help="TOML with a [policy] table overriding the model's thresholds")
    p.add_argument("--item", help="work item id for the record")
    p.add_argument("--out", help="write the inspection as JSON here")
    p.add_argument("--crops", help="write each defect's image crop (rework bin) into this folder")
    p.set_defaults(func=_cmd_inspect)
