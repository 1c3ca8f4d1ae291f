"""The inspection dataset format ``gluecell.inspection/1`` and its loader (no world import: pipeline-safe).

Layout::

    DIR/meta/info.json                 format, generator, seed, counts, splits (of view ids), config, label names
    DIR/inputs/<pair>/plan.json        the plan the cell sprayed (gluecell.plan/1 + "bite_line_sigma")
    DIR/inputs/<pair>/view<k>.npz      image (h, w, 3) uint8, depth_before/after uint16, depth_scale,
                                       K (3, 3), size (w, h), T_base_cam (4, 4): what the station delivers
    DIR/labels/<pair>/view<k>.npz      masks (5, h, w) bool (glue, gap, above, thin, blob)
    DIR/labels/<pair>/labels.json      per view: verdict, defects, overspray_mm, gap_area_mm2, band_coverage;
                                       faults and appearance of the run (truth)

A view id is ``<pair>/view<k>``. A pair is complete when ``labels/<pair>`` exists (written last).
Training reads labels through :meth:`InspectionDataset.labels`; the inspector reads only inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import load_npz, save_npz
from gluecell.core.errors import FormatError
from gluecell.core.fileio import check_version, read_json
from gluecell.core.plan import Plan, read_plan
from gluecell.core.types import CameraIntrinsics, InspectionView

__all__ = ["INSPECTION_FORMAT", "MASK_NAMES", "InspectionDataset", "open_inspection", "view_to_arrays",
           "view_from_arrays", "save_view", "load_view"]  # fmt: skip

INSPECTION_FORMAT = "gluecell.inspection/1"
MASK_NAMES: tuple[str, ...] = ("glue", "gap", "above", "thin", "blob")
_MAX_SIDE = 4096


def view_to_arrays(view: InspectionView) -> dict[str, np.ndarray]:
    """Arrays of one view for an npz file."""
    K = view.intrinsics
    return {"format": np.array(INSPECTION_FORMAT), "image": view.image, "depth_before": view.depth_before,
            "depth_after": view.depth_after, "depth_scale": np.array(view.depth_scale), "K": K.K,
            "size": np.array([K.width, K.height]), "T_base_cam": view.T_base_cam}  # fmt: skip


def view_from_arrays(a: dict[str, np.ndarray], *, what: str = "view") -> InspectionView:
    """Validate and build a view; raises :class:`FormatError` naming what is wrong."""
    try:
        check_version(str(a.get("format", "")), INSPECTION_FORMAT, what=what)
        w, h = (int(x) for x in a["size"])
        if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE):
            raise FormatError(f"{what}: image size {w}x{h} outside 1..{_MAX_SIDE}")
        K = np.asarray(a["K"], dtype=np.float64)
        intr = CameraIntrinsics(w, h, float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
        return InspectionView(image=a["image"], depth_before=a["depth_before"], depth_after=a["depth_after"],
                              depth_scale=float(a["depth_scale"]), intrinsics=intr, T_base_cam=a["T_base_cam"])
    except KeyError as exc:
        raise FormatError(f"{what}: missing array {exc}") from exc
    except (ValueError, TypeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{what}: {exc}") from exc


def save_view(path: str | os.PathLike[str], view: InspectionView) -> None:
    """Write one view (compressed npz, atomic)."""
    save_npz(path, view_to_arrays(view))


def load_view(path: str | os.PathLike[str]) -> InspectionView:
    """Read one view written by :func:`save_view`."""
    return view_from_arrays(load_npz(path), what=str(path))


@dataclass(frozen=True)
class InspectionDataset:
    """An opened inspection dataset. Use :func:`open_inspection`."""

    root: Path
    info: dict[str, Any]

    def ids(self, split: str | None = None) -> list[str]:
        """View ids (``<pair>/view<k>``) of ``split`` (all when None)."""
        splits = self.info["splits"]
        if split is None:
            return sorted(i for s in splits.values() for i in s)
        if split not in splits:
            raise FormatError(f"unknown split {split!r}; choose one of {', '.join(splits)}")
        return list(splits[split])

    def _paths(self, vid: str) -> tuple[Path, Path, str]:
        pair, _, view = vid.partition("/")
        if not pair.isdigit() or not view.startswith("view") or not view[4:].isdigit():
            raise FormatError(f"bad view id {vid!r}")
        return self.root / "inputs" / pair, self.root / "labels" / pair, view

    def view(self, vid: str) -> InspectionView:
        """The station's output for a view."""
        d, _, view = self._paths(vid)
        return load_view(d / f"{view}.npz")

    def plan(self, vid: str) -> Plan:
        """The plan of the view's pair."""
        d, _, _ = self._paths(vid)
        return read_plan(d / "plan.json")

    def labels(self, vid: str) -> dict[str, Any]:
        """Truth labels of a view: the labels.json entry plus ``masks`` (5, h, w) bool."""
        _, d, view = self._paths(vid)
        k = int(view[4:])
        entry = dict(read_json(d / "labels.json")["views"][str(k)])
        entry["masks"] = load_npz(d / f"{view}.npz", required=("masks",))["masks"].astype(bool)
        return entry


def open_inspection(root: str | os.PathLike[str]) -> InspectionDataset:
    """Open an inspection dataset, checking format, splits and that it is not empty."""
    root = Path(root)
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise FormatError(f"{root}: not an inspection dataset (no meta/info.json); generate one with "
                          "`gluecell datasets generate --kind inspection --n N --seed S --out DIR`")  # fmt: skip
    info = read_json(path)
    if not isinstance(info, dict):
        raise FormatError(f"{path}: top level must be an object")
    check_version(info.get("format"), INSPECTION_FORMAT, what=str(path))
    splits = info.get("splits")
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise FormatError(f"{path}: missing or malformed 'splits'")
    ds = InspectionDataset(root, info)
    if not ds.ids():
        raise FormatError(f"{root}: the dataset holds no views")
    return ds
