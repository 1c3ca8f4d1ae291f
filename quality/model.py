"""QA model files (``gluecell.qa-model/1``): weights plus everything needed to trust them.

A model file is a ``torch.save`` of plain containers (loaded with ``weights_only=True``: no pickled code):
format, code and features versions, the dataset format it expects, the architecture, the state dict, the
verdict policy chosen on validation, the resolved training config, the dataset hashes and metrics.
Loading refuses another format major, another features version or another dataset format with
:class:`ModelVersionError`, and a truncated or foreign file with :class:`ModelError`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError, ModelVersionError
from .net import FEATURES_VERSION, build_unet
from .policy import VerdictPolicy

__all__ = ["MODEL_FORMAT", "DATASET_FORMAT", "LoadedModel", "save_model", "load_model", "file_sha256"]

MODEL_FORMAT = "gluecell.qa-model/1"
#: The dataset format whose views and masks the model was trained on.
DATASET_FORMAT = "gluecell.inspection/1"
MAX_MODEL_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: the torch module (eval mode), its record and its policy."""

    net: Any
    record: dict[str, Any]
    policy: VerdictPolicy
    path: Path
    sha256: str


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(path: str | os.PathLike[str], net: Any, record: dict[str, Any]) -> None:
    """Write a model file atomically and check that it reads back before it replaces anything."""
    import torch

    from gluecell.core.fileio import atomic_open

    payload = {"format": MODEL_FORMAT, "features_version": FEATURES_VERSION, "dataset_format": DATASET_FORMAT,
               **record, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}  # fmt: skip
    path = Path(path)
    tmp = path.with_name(path.name + ".check")
    torch.save(payload, tmp)
    try:
        load_model(tmp)  # a broken file never replaces a good one
    except ModelError:
        tmp.unlink(missing_ok=True)
        raise
    with atomic_open(path, "wb") as fh:
        fh.write(tmp.read_bytes())
    tmp.unlink(missing_ok=True)


def _check(d: Any, path: Path) -> None:
    if not isinstance(d, dict) or "format" not in d:
        raise ModelError(f"{path}: not a gluecell QA model")
    fmt = str(d["format"])
    if fmt.split("/")[0] != MODEL_FORMAT.split("/")[0]:
        raise ModelError(f"{path}: format {fmt!r} is not a QA model ({MODEL_FORMAT})")
    if fmt.split("/")[-1].split(".")[0] != MODEL_FORMAT.split("/")[-1]:
        raise ModelVersionError(f"{path}: model format {fmt!r}, this code reads {MODEL_FORMAT}; retrain or use a "
                                "matching gluecell version")  # fmt: skip
    if d.get("features_version") != FEATURES_VERSION:
        raise ModelVersionError(f"{path}: trained on input features v{d.get('features_version')}, this code computes "
                                f"v{FEATURES_VERSION}; retrain with `gluecell qa train`")  # fmt: skip
    if d.get("dataset_format") != DATASET_FORMAT:
        raise ModelVersionError(f"{path}: expects dataset format {d.get('dataset_format')!r}, this code reads "
                                f"{DATASET_FORMAT}")  # fmt: skip


def load_model(path: str | os.PathLike[str], *, expect_dataset_format: str | None = None) -> LoadedModel:
    """Load and validate a model file (see the module doc for what is refused)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{path}: larger than {MAX_MODEL_BYTES >> 20} MiB; not a QA model")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt zip/pickle
        raise ModelError(f"{path}: unreadable or corrupt model file ({type(exc).__name__}: {exc})") from exc
    _check(d, path)
    if expect_dataset_format is not None and expect_dataset_format != d["dataset_format"]:
        raise ModelVersionError(f"{path}: trained for {d['dataset_format']}, the data is {expect_dataset_format}")
    arch = d.get("arch", {})
    try:
        net = build_unet(int(arch.get("width", 8)), int(arch.get("depth", 3)), blind=tuple(arch.get("blind", ())))
        net.load_state_dict(d["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: weights do not fit the architecture {arch} ({exc})") from exc
    net.eval()
    record = {k: v for k, v in d.items() if k != "state_dict"}
    policy = VerdictPolicy.from_dict(record["policy"]) if "policy" in record else VerdictPolicy()
    return LoadedModel(net=net, record=record, policy=policy, path=path, sha256=file_sha256(path))
