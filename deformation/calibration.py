"""Depth calibration: the measured gap between the solver's bite depth and reality, per sole material.

The reference solver leaves out what it cannot see in the scans: the press compresses the sole body
(FACTS.md: 0.3-0.5 MPa for 30-90 s) and pushes the rim further down the side; the virtual corners of the
two parts need not coincide. Both shift the bite line along the side by a near-constant amount per
material. This module learns that offset from attached pairs with known bite lines (training split of a
dataset: its truth is training data) and adds it to the solver's depth. It is a correction learnt from
data, reported apart from the pure solver in the bench.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from gluecell.core.errors import FormatError
from gluecell.core.fileio import atomic_write_json, check_version, read_json

__all__ = [
    "DepthCalibration",
    "CALIBRATION_FORMAT",
    "fit_calibration",
    "save_calibration",
    "load_calibration",
    "depth_error",
]

CALIBRATION_FORMAT = "gluecell.deform_calibration/1"
#: An offset is only learnt for a material with at least this many pairs; the others use the overall one.
MIN_PAIRS = 3


@dataclass(frozen=True)
class DepthCalibration:
    """Depth offsets (metres, + = bite line further from the bottom) per material name and "unknown"."""

    offsets: dict[str, float]
    n_pairs: int = 0
    residual_std: float = 0.0
    metrics: dict = field(default_factory=dict)
    #: Factor on the solver's per-point sigma so that its p95 matches the p95 error seen in training.
    sigma_scale: float = 1.0

    def offset(self, material: str) -> float:
        """Offset for ``material`` (falls back to the overall "unknown" one)."""
        return float(self.offsets.get(material, self.offsets.get("unknown", 0.0)))


def depth_error(pred_line: np.ndarray, true_line: np.ndarray) -> float:
    """Median height of the predicted bite line over the true one (metres; + = predicted too close to the bottom).

    The upper stands bottom up, so a bite line too close to the bottom is too high in z.
    """
    from scipy.spatial import cKDTree

    _, j = cKDTree(true_line).query(pred_line)
    return float(np.median(pred_line[:, 2] - true_line[j, 2]))


def fit_calibration(samples: list[tuple[str, float]], sigma_ratios: list[float] | None = None) -> DepthCalibration:
    """Fit offsets from ``(material, measured depth error in metres)`` per pair (median, robust).

    ``sigma_ratios``: per pair, p95 of the actual bite-line error over p95 of the predicted sigma (after the
    offset); their median becomes :attr:`DepthCalibration.sigma_scale` (never below 1).
    """
    scale = max(1.0, float(np.median(sigma_ratios))) if sigma_ratios else 1.0
    if not samples:
        return DepthCalibration(offsets={"unknown": 0.0}, sigma_scale=scale)
    errs = np.array([e for _, e in samples], dtype=float)
    offsets = {"unknown": float(np.median(errs))}
    for mat in sorted({m for m, _ in samples}):
        e = np.array([x for m, x in samples if m == mat])
        if len(e) >= MIN_PAIRS:
            offsets[mat] = float(np.median(e))
    resid = np.array([x - offsets.get(m, offsets["unknown"]) for m, x in samples])
    return DepthCalibration(offsets=offsets, n_pairs=len(samples), residual_std=float(np.std(resid)), sigma_scale=scale)


def save_calibration(path: str | os.PathLike[str], cal: DepthCalibration, config: dict | None = None) -> None:
    """Write ``gluecell.deform_calibration/1`` JSON atomically (with the settings that produced it)."""
    atomic_write_json(
        path,
        {
            "format": CALIBRATION_FORMAT,
            "units": "m",
            "offsets": cal.offsets,
            "n_pairs": cal.n_pairs,
            "residual_std": cal.residual_std,
            "sigma_scale": cal.sigma_scale,
            "metrics": cal.metrics,
            "config": config or {},
        },
    )


def load_calibration(path: str | os.PathLike[str]) -> DepthCalibration:
    """Read a calibration file (raises FormatError / VersionError on a bad or incompatible file)."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise FormatError(f"{path}: not a calibration document")
    check_version(doc.get("format"), CALIBRATION_FORMAT, what=str(path))
    return DepthCalibration(
        offsets={str(k): float(v) for k, v in doc["offsets"].items()},
        n_pairs=int(doc.get("n_pairs", 0)),
        residual_std=float(doc.get("residual_std", 0.0)),
        metrics=dict(doc.get("metrics", {})),
        sigma_scale=float(doc.get("sigma_scale", 1.0)),
    )
