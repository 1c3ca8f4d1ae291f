"""Loading inspection datasets for training and evaluation: features, label masks, dataset hashes.

Training code may read labels through the dataset loader (DESIGN "Ground truth stays on its side"); the
loader is :mod:`gluecell.datasets.inspection.format`, which holds no world code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import FormatError
from gluecell.core.types import DEFECT_TYPES

from .errors import TrainingError
from .geometry import view_geometry
from .net import features

__all__ = ["SplitData", "open_data", "load_split", "dataset_hash"]


@dataclass(frozen=True)
class SplitData:
    """Features and labels of one split.

    Attributes:
        x: (n, 8, h, w) float16 network inputs; y: (n, 5, h, w) uint8 masks (glue + defects).
        labels: (n, 4) bool view-level defect labels in ``DEFECT_TYPES`` order.
        ids: view ids; entries: the labels.json entry of each view (verdict, overspray_mm, ...).
        classical: (n, 4) float classical scores (for the baseline comparison), or None.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    ids: list[str]
    entries: list[dict[str, Any]]
    classical: np.ndarray | None = None


def open_data(root: str | os.PathLike[str]) -> Any:
    """Open an inspection dataset, turning format errors into a training-level message."""
    from gluecell.datasets.inspection.format import open_inspection

    try:
        return open_inspection(root)
    except FormatError as exc:
        raise TrainingError(f"cannot use {root} as QA data: {exc}") from exc


def dataset_hash(ds: Any) -> str:
    """SHA-256 over the dataset's info.json and every view's input/label file sizes and names."""
    h = hashlib.sha256((Path(ds.root) / "meta" / "info.json").read_bytes())
    for vid in ds.ids():
        for kind in ("inputs", "labels"):
            pair, _, view = vid.partition("/")
            f = Path(ds.root) / kind / pair / f"{view}.npz"
            h.update(f"{kind}/{vid}:{f.stat().st_size if f.exists() else -1}".encode())
    return h.hexdigest()


def load_split(ds: Any, split: str, *, classical: bool = False, limit: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> SplitData:  # fmt: skip
    """Features and masks of every view of ``split`` (computed from inputs and the plan only)."""
    from .measure import measure_view

    ids = ds.ids(None if split == "all" else split)
    ids = ids[:limit] if limit else ids
    if not ids:
        raise TrainingError(f"{ds.root}: split {split!r} holds no views")
    xs, ys, labs, ents, cls = [], [], [], [], []
    plans: dict[str, Any] = {}
    for k, vid in enumerate(ids):
        pair = vid.partition("/")[0]
        plan = plans.setdefault(pair, ds.plan(vid))
        view = ds.view(vid)
        g = view_geometry(view, plan)
        xs.append(features(view, g).astype(np.float16))
        lab = ds.labels(vid)
        ys.append(lab.pop("masks").astype(np.uint8))
        labs.append([t in lab["defects"] for t in DEFECT_TYPES])
        ents.append(lab)
        if classical:
            m = measure_view(view, g)
            cls.append([m.scores[t] for t in DEFECT_TYPES])
        if progress:
            progress(k + 1, len(ids))
    shapes = {x.shape for x in xs}
    if len(shapes) != 1:
        raise TrainingError(f"{ds.root}: views of different sizes {sorted(shapes)}; one model needs one image size")
    return SplitData(x=np.stack(xs), y=np.stack(ys), labels=np.asarray(labs, dtype=bool), ids=ids, entries=ents,
                     classical=np.asarray(cls) if classical else None)  # fmt: skip
