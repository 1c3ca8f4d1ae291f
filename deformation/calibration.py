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
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import FormatError
from gluecell.core.fileio import atomic_write_json, check_version, read_json

__all__ = [
    "DEFAULT_CALIBRATION",
    "resolve_calibration",
    "DepthCalibration",
    "CALIBRATION_FORMAT",
    "fit_calibration",
    "save_calibration",
    "load_calibration",
    "depth_error",
    "fit_sigma_model",
]

#: The shipped calibration: learnt with the style references of the simulated cell on a training world (seed
#: 4101, train split; ``deformation/models/calibration.json`` records how). Use it with the same references.
DEFAULT_CALIBRATION = Path(__file__).parent / "models" / "calibration.json"

CALIBRATION_FORMAT = "gluecell.deform_calibration/1"
#: An offset is only learnt for a material with at least this many pairs; the others use the overall one.
MIN_PAIRS = 3
#: Default station-matching uncertainty, metres of outline (see :attr:`DepthCalibration.sigma_match`).
DEFAULT_SIGMA_MATCH = 1.0e-3
#: Share of points whose error the learnt sigma must cover within 2 sigma (an honest Gaussian: 0.954).
COVERAGE = 0.95


@dataclass(frozen=True)
class DepthCalibration:
    """Depth offsets (metres, + = bite line further from the bottom) per material name and "unknown"."""

    offsets: dict[str, float]
    n_pairs: int = 0
    residual_std: float = 0.0
    metrics: dict = field(default_factory=dict)
    #: Factor on the solver's per-point sigma (scan scatter, material, unseen side, sensor floor).
    sigma_scale: float = 1.0
    #: Per-pair level uncertainty added in quadrature (metres): the wall level read from one scan.
    sigma_floor: float = 0.0
    #: Uncertainty, metres of outline, of where the sole's stations land on the upper's; times the bite depth's
    #: slope along the outline it is the error at the heel counter's knee. Default 1 mm (chosen: the attach
    #: pose's station matching scatters ~0.03 rad of normalised outline angle, 1-3 mm, on the world's pairs).
    sigma_match: float = DEFAULT_SIGMA_MATCH
    #: Extra offset per style (metres): the median residual of the style's pairs after the material offset. The
    #: scans read the sole's wall level with a style-dependent bias (its cavity's depth and width against the
    #: cameras; on the world's train pairs boots -0.4 mm against the others).
    style_offsets: dict[str, float] = field(default_factory=dict)
    #: The style references the calibration was learnt with ("none", "sim", ...; None = not recorded). Its
    #: sigma model holds only for predictions made the same way (:func:`gluecell.deformation.line.line_reasons`).
    references: str | None = None
    #: Learnt sigma with run-time terms (:class:`~.sigma_terms.SigmaTerms`); when set it replaces
    #: :meth:`total_sigma` (and the fallbacks' quadrature term, which it was learnt with) in the prediction.
    sigma_terms: Any = None
    #: The part that applies to predictions made *without* the style references this calibration was learnt with
    #: (an unknown style): its own depth offset and sigma, learnt on pairs predicted without their references
    #: (:mod:`.sigma_train`). None: such a prediction has no calibration that applies.
    unreferenced: DepthCalibration | None = None

    def for_prediction(self, with_references: bool) -> DepthCalibration:
        """The part of this calibration that applies to a prediction made with / without the style references:
        itself, or :attr:`unreferenced` for a prediction without them when it was learnt with them."""
        learnt_with = self.references not in (None, "none")
        if learnt_with and not with_references and self.unreferenced is not None:
            return self.unreferenced
        return self

    def offset(self, material: str, style: str | None = None) -> float:
        """Offset for ``material`` (falls back to the overall "unknown" one) plus the ``style``'s, if learnt."""
        base = float(self.offsets.get(material, self.offsets.get("unknown", 0.0)))
        return base + float(self.style_offsets.get(style, 0.0)) if style else base

    def total_sigma(self, model: np.ndarray, slope: np.ndarray) -> np.ndarray:
        """(m,) per-point 1-sigma, metres: ``sqrt((scale model)^2 + floor^2 + (match slope)^2)``.

        Args:
            model: (m,) the solver's per-point sigma, metres.
            slope: (m,) |d depth / d outline length| at each point, dimensionless.
        """
        return np.sqrt(
            (self.sigma_scale * model) ** 2 + self.sigma_floor**2 + (self.sigma_match * np.asarray(slope)) ** 2
        )


def depth_error(pred_line: np.ndarray, true_line: np.ndarray) -> float:
    """Median height of the predicted bite line over the true one (metres; + = predicted too close to the bottom).

    The upper stands bottom up, so a bite line too close to the bottom is too high in z.
    """
    from scipy.spatial import cKDTree

    _, j = cKDTree(true_line).query(pred_line)
    return float(np.median(pred_line[:, 2] - true_line[j, 2]))


def fit_calibration(
    samples: list[tuple[str, float]], sigma_ratios: list[float] | None = None, styles: list[str] | None = None
) -> DepthCalibration:
    """Fit offsets from ``(material, measured depth error in metres)`` per pair (median, robust).

    ``styles``: the style of each sample (same order); a style with at least ``MIN_PAIRS`` pairs gets the
    median of its residuals after the material offsets as :attr:`DepthCalibration.style_offsets`.

    ``sigma_ratios``: the factor on the predicted sigma that puts 95 % of the bite-line points' errors (after the
    offset) within 2 sigma, one value per pair or one pooled over all training points (what
    ``gluecell deform calibrate`` passes); their median becomes :attr:`DepthCalibration.sigma_scale` (never
    below 1), so that ``|error| <= 2 sigma`` holds for ~95 % of the points of pairs like the training ones.
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
    by_style: dict[str, float] = {}
    if styles is not None:
        for st in sorted(set(styles)):
            r = resid[np.array([x == st for x in styles])]
            if len(r) >= MIN_PAIRS:
                by_style[st] = float(np.median(r))
        resid = resid - np.array([by_style.get(st, 0.0) for st in styles])
    return DepthCalibration(
        offsets=offsets,
        n_pairs=len(samples),
        residual_std=float(np.std(resid)),
        sigma_scale=scale,
        style_offsets=by_style,
    )


def fit_sigma_model(
    errors: list[np.ndarray], model: list[np.ndarray], slope: list[np.ndarray]
) -> tuple[float, float, float]:
    """Learn (scale, floor, match) of :meth:`DepthCalibration.total_sigma` from training pairs.

    Maximum likelihood of the per-point errors (distance to the true line after the learnt offset, one (m,) array
    per pair) as half-normal with that sigma, then all three multiplied by one factor so that ``COVERAGE`` of
    the pooled points lie within 2 sigma (the likelihood alone is pulled by the many small errors).

    Returns:
        (sigma_scale, sigma_floor metres, sigma_match metres).
    """
    from scipy.optimize import minimize

    d = np.concatenate(errors)
    m = np.concatenate(model)
    k = np.concatenate(slope)

    def sig(x: np.ndarray) -> np.ndarray:
        a, b, c = np.exp(x)
        return np.sqrt((a * m) ** 2 + b**2 + (c * k) ** 2)

    def nll(x: np.ndarray) -> float:
        s = sig(x)
        return float(np.mean(np.log(s) + 0.5 * (d / s) ** 2))

    x0 = np.log([1.0, max(float(np.median(d)), 1e-5), DEFAULT_SIGMA_MATCH])
    x = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-9, "maxiter": 600}).x
    factor = max(float(np.quantile(d / sig(x), COVERAGE)) / 2.0, 1e-3)
    a, b, c = np.exp(x) * factor
    return float(a), float(b), float(c)


def save_calibration(path: str | os.PathLike[str], cal: DepthCalibration, config: dict | None = None) -> None:
    """Write ``gluecell.deform_calibration/1`` JSON atomically (with the settings that produced it)."""
    atomic_write_json(path, {"format": CALIBRATION_FORMAT, "units": "m", **_to_doc(cal), "config": config or {}})


def _to_doc(cal: DepthCalibration) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "offsets": cal.offsets,
        "n_pairs": cal.n_pairs,
        "residual_std": cal.residual_std,
        "sigma_scale": cal.sigma_scale,
        "sigma_floor": cal.sigma_floor,
        "sigma_match": cal.sigma_match,
        "style_offsets": cal.style_offsets,
        "metrics": cal.metrics,
    }
    if cal.sigma_terms is not None:
        doc["sigma_terms"] = cal.sigma_terms.to_doc()
    if cal.unreferenced is not None:
        doc["unreferenced"] = {**_to_doc(cal.unreferenced), "references": cal.unreferenced.references or "none"}
    return doc


def load_calibration(path: str | os.PathLike[str]) -> DepthCalibration:
    """Read a calibration file (raises FormatError / VersionError on a bad or incompatible file)."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise FormatError(f"{path}: not a calibration document")
    check_version(doc.get("format"), CALIBRATION_FORMAT, what=str(path))
    return _from_doc(doc, _references(doc.get("config")))


def _from_doc(doc: dict[str, Any], references: str | None) -> DepthCalibration:
    from .sigma_terms import SigmaTerms

    unref = doc.get("unreferenced")
    if unref is not None and not isinstance(unref, dict):
        raise FormatError("calibration: 'unreferenced' is not an object")
    return DepthCalibration(
        offsets={str(k): float(v) for k, v in doc["offsets"].items()},
        n_pairs=int(doc.get("n_pairs", 0)),
        residual_std=float(doc.get("residual_std", 0.0)),
        metrics=dict(doc.get("metrics", {})),
        sigma_scale=float(doc.get("sigma_scale", 1.0)),
        sigma_floor=float(doc.get("sigma_floor", 0.0)),
        sigma_match=float(doc.get("sigma_match", DEFAULT_SIGMA_MATCH)),
        style_offsets={str(k): float(v) for k, v in doc.get("style_offsets", {}).items()},
        references=references,
        sigma_terms=SigmaTerms.from_doc(doc["sigma_terms"]) if doc.get("sigma_terms") is not None else None,
        unreferenced=_from_doc(unref, str(unref.get("references", "none"))) if unref is not None else None,
    )


def _references(config: object) -> str | None:
    refs = config.get("references") if isinstance(config, dict) else None
    return None if refs is None else str(refs)


def resolve_calibration(
    path: str | os.PathLike[str] | None = None, *, off: bool = False, style: str | None = None
) -> tuple[DepthCalibration | None, list[str]]:
    """The calibration a user gets: ``path``, or the shipped one (:data:`DEFAULT_CALIBRATION`) when None; none
    with ``off``. Returns (calibration or None, warnings): a ``style`` the calibration learnt no offset for falls
    back to the material offset alone, with a warning saying so.
    """
    if off:
        return None, []
    cal = load_calibration(path if path is not None else DEFAULT_CALIBRATION)
    notes: list[str] = []
    if style is not None and style not in cal.style_offsets:
        known = ", ".join(sorted(cal.style_offsets)) or "none"
        notes.append(f"warning: style {style!r} is unknown to the calibration (it knows: {known}); "
                     "the material offset alone is applied")  # fmt: skip
    return cal, notes
