"""The dataset folder format ``gluecell.dataset/1`` and its loader.

Layout::

    DIR/meta/info.json            format, generator version, seed, counts, splits, resolved config
    DIR/inputs/<id>/workitem.json what the MES says arrives (id, style, size, side)
    DIR/inputs/<id>/upper_cam<k>.npz, sole_cam<k>.npz   depth frames (gluecell.frame/1): what a real cell has
    DIR/truth/<id>/upper.ply, sole.ply                   true meshes in base_link (binary PLY with faces)
    DIR/truth/<id>/truth.npz                             bite line, feather edge, bond masks, poses, ...
    DIR/truth/<id>/params.json                           the hidden per-sample parameters

Pipeline code reads only :meth:`Dataset.inputs`; :meth:`Dataset.truth` is for training labels
and evaluation. A sample is complete when its ``truth/<id>`` folder exists (written last).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import load_npz
from gluecell.core.errors import FormatError, ValidationError
from gluecell.core.fileio import check_version, read_json
from gluecell.core.frames import load_frame
from gluecell.core.ply import read_ply
from gluecell.core.types import PARTS, DepthFrame, WorkItem

from .errors import DatasetsError

__all__ = [
    "commit_sample",
    "DATASET_FORMAT",
    "WORLD_GENERATOR",
    "SPLITS",
    "Dataset",
    "DatasetError",
    "open_dataset",
    "sample_ids",
    "assign_splits",
    "workitem_to_dict",
    "workitem_from_dict",
]

DATASET_FORMAT = "gluecell.dataset/1"
#: The generator of the synthetic world this code writes. 2.0 = round 2 (issue 12): new hidden variation,
#: the attach process, the sole from its own CAD, the scanner's new layout and noise. A dataset written by
#: another major of this world still loads (the folder format did not change) with a warning: its truth
#: follows other physics, so its figures are not comparable.
WORLD_GENERATOR = "gluecell-world/2.0"
SPLITS: tuple[str, ...] = ("train", "val", "test")
_ID_RE = re.compile(r"^[0-9]{5,}$")
_FRAME_RE = re.compile(r"^(upper|sole)_cam(\d+)\.npz$")


class DatasetError(DatasetsError, FormatError):
    """A dataset folder is missing, incomplete or inconsistent."""


def commit_sample(root: Path, sample_id: str, work: Path) -> None:
    """Move a sample written under ``work`` (``work/inputs``, ``work/truth``) into ``root``: inputs first, truth
    last, since the presence of ``truth/<id>`` marks a sample complete (an interrupted run redoes it)."""
    for kind in ("inputs", "truth"):
        dest = root / kind / sample_id
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / kind, dest)
    shutil.rmtree(work, ignore_errors=True)


def sample_ids(n: int) -> list[str]:
    """Ids of samples ``0..n-1`` ("00000", ...)."""
    return [f"{i:05d}" for i in range(n)]


def assign_splits(n: int, seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> dict[str, list[str]]:
    """Deterministic train/val/test split of ``n`` samples.

    Every split gets at least one sample when ``n >= 3``; the split is a seeded permutation,
    so it does not depend on generation order.
    """
    if n < 1:
        raise ValidationError(f"n must be >= 1, got {n}")
    ids = sample_ids(n)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5B117])).permutation(n)
    n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
    n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
    n_train = n - n_test - n_val
    order = [ids[i] for i in perm]
    return {
        "train": sorted(order[:n_train]),
        "val": sorted(order[n_train : n_train + n_val]),
        "test": sorted(order[n_train + n_val :]),
    }


def workitem_to_dict(item: WorkItem) -> dict[str, Any]:
    """JSON form of a work item."""
    return {"item_id": item.item_id, "style": item.style, "size_eu": item.size_eu, "side": item.side}


def workitem_from_dict(d: Any, *, what: str = "workitem") -> WorkItem:
    """Parse a work item, raising :class:`FormatError` on bad fields."""
    try:
        return WorkItem(item_id=str(d["item_id"]), style=str(d["style"]), size_eu=float(d["size_eu"]), side=d["side"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{what}: bad work item ({exc})") from exc


@dataclass(frozen=True)
class Dataset:
    """An opened dataset folder. Use :func:`open_dataset`."""

    root: Path
    info: dict[str, Any]

    @property
    def splits(self) -> dict[str, list[str]]:
        """Split name -> sample ids."""
        return self.info["splits"]

    def ids(self, split: str | None = None) -> list[str]:
        """Sample ids of ``split`` (all when None)."""
        if split is None:
            return sorted(i for s in SPLITS for i in self.splits.get(s, []))
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return list(self.splits.get(split, []))

    def _sample_dir(self, kind: str, sample_id: str) -> Path:
        if not isinstance(sample_id, str) or not _ID_RE.match(sample_id):
            raise DatasetError(f"bad sample id {sample_id!r}")
        d = self.root / kind / sample_id
        if not d.is_dir():
            raise DatasetError(f"{self.root}: sample {sample_id} has no {kind}/ folder (incomplete dataset?)")
        return d

    def frame_paths(self, sample_id: str) -> dict[str, list[Path]]:
        """Part -> frame files of a sample, ordered by camera index."""
        d = self._sample_dir("inputs", sample_id)
        out: dict[str, list[tuple[int, Path]]] = {p: [] for p in PARTS}
        for f in d.iterdir():
            m = _FRAME_RE.match(f.name)
            if m:
                out[m.group(1)].append((int(m.group(2)), f))
        return {p: [f for _, f in sorted(v)] for p, v in out.items()}

    def workitem(self, sample_id: str) -> WorkItem:
        """The work item of a sample."""
        path = self._sample_dir("inputs", sample_id) / "workitem.json"
        return workitem_from_dict(read_json(path), what=str(path))

    def inputs(self, sample_id: str) -> dict[str, Any]:
        """What a real cell would have: ``{"workitem": WorkItem, "frames": {"upper": [...], "sole": [...]}}``."""
        item = self.workitem(sample_id)
        frames: dict[str, list[DepthFrame]] = {
            part: [load_frame(f) for f in files] for part, files in self.frame_paths(sample_id).items()
        }
        return {"workitem": item, "frames": frames}

    def truth(self, sample_id: str) -> dict[str, Any]:
        """Hidden truth of a sample (training labels and evaluation only).

        Keys: ``upper_mesh``/``sole_mesh`` (trimesh.Trimesh, base_link), every array in
        ``truth.npz`` (``bite_line``, ``feather_edge``, ``upper_bond_faces``, ``sole_bond_faces``,
        ``deformed_sole_vertices``, ``T_base_upper``, ``T_base_sole``, ``T_base_cam_true_upper``,
        ``T_base_cam_true_sole``), and ``params`` (dict).
        """
        import trimesh

        d = self._sample_dir("truth", sample_id)
        out: dict[str, Any] = dict(load_npz(d / "truth.npz", required=("bite_line",)))
        for part in PARTS:
            cloud = read_ply(d / f"{part}.ply")
            if cloud.faces is None:
                raise DatasetError(f"{d / f'{part}.ply'}: expected a mesh with faces")
            out[f"{part}_mesh"] = trimesh.Trimesh(cloud.points, cloud.faces, process=False)
        out["params"] = read_json(d / "params.json")
        return out


def _check_generator(found: Any, what: str) -> None:
    """Warn when a dataset of this world was written by another major of its generator."""
    import warnings

    if not isinstance(found, str) or found.partition("/")[0] != WORLD_GENERATOR.partition("/")[0]:
        return  # another generator (e.g. an independent world) keeps its own versions
    major = found.partition("/")[2].partition(".")[0]
    if major != WORLD_GENERATOR.partition("/")[2].partition(".")[0]:
        warnings.warn(f"{what}: generated by {found!r}, this code writes {WORLD_GENERATOR!r}: its truth and "
                      "scans follow that world's physics; regenerate it for figures comparable with this world",
                      stacklevel=3)  # fmt: skip


def open_dataset(root: str | os.PathLike[str]) -> Dataset:
    """Open a dataset folder, checking its format version and completeness."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"{root}: not a gluecell dataset (no meta/info.json); generate one with "
                           "`gluecell datasets generate --n N --seed S --out DIR`")
    info = read_json(info_path)
    if not isinstance(info, dict):
        raise DatasetError(f"{info_path}: top level must be an object")
    check_version(info.get("format"), DATASET_FORMAT, what=str(info_path))
    _check_generator(info.get("generator"), str(info_path))
    splits = info.get("splits")
    if not isinstance(splits, dict) or not all(isinstance(splits.get(s), list) for s in SPLITS):
        raise DatasetError(f"{info_path}: missing or malformed 'splits'")
    ds = Dataset(root=root, info=info)
    missing = [i for i in ds.ids() if not (root / "truth" / i).is_dir() or not (root / "inputs" / i).is_dir()]
    if missing:
        raise DatasetError(f"{root}: {len(missing)} sample(s) incomplete (e.g. {missing[0]}); "
                           "re-run the same generate command to resume", missing=missing)
    return ds
