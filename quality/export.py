"""Export a QA model for deployment: TorchScript (``gluecell qa export``).

ONNX would need the ``onnx`` package (not installed beside the CPU torch here); TorchScript runs with torch
alone. The export is traced on a zero input of the model's image size, checked against the eager model on a
random input, and written with its record as a JSON sidecar (``<out>.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.fileio import atomic_write_json

from .errors import ModelError
from .model import LoadedModel
from .net import N_IN

__all__ = ["export_torchscript"]

#: Largest difference of logits allowed between the export and the eager model.
EXPORT_TOL = 1e-4


def export_torchscript(model: LoadedModel, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Trace ``model`` to TorchScript at ``out``; returns the sidecar record (with the check's max error)."""
    import torch

    h, w = (int(v) for v in model.record.get("image_size", (256, 256)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        traced = torch.jit.trace(model.net, torch.zeros(1, N_IN, h, w))
        x = torch.from_numpy(np.random.default_rng(0).random((1, N_IN, h, w), dtype=np.float32))
        err = float((traced(x) - model.net(x)).abs().max())
    if not err <= EXPORT_TOL:
        raise ModelError(f"export differs from the model by {err:.2e} (> {EXPORT_TOL}); not written")
    tmp = out.with_name(out.name + ".tmp")
    traced.save(str(tmp))
    torch.jit.load(str(tmp))  # reads back before it replaces anything
    os.replace(tmp, out)
    record = {"format": "gluecell.qa-export/1", "source": str(model.path), "source_sha256": model.sha256,
              "input": {"channels": N_IN, "height": h, "width": w}, "max_abs_error": err,
              "policy": model.policy.to_dict(), "features_version": model.record.get("features_version")}  # fmt: skip
    atomic_write_json(out.with_name(out.name + ".json"), record)
    return record
