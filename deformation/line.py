"""The deformation step as the cell runs it: a predicted bite line with its uncertainty and the reasons, if
any, why that uncertainty cannot be trusted to keep glue below the true line (the pair then goes to a human).

A predicted line's sigma becomes the planner's safety margin (:mod:`gluecell.pathplan.safety`), so a sigma that
does not cover the line's error puts glue above the line. The sigma covers the error only where it was
measured to: the depth calibration (``gluecell deform calibrate``) fits the sigma model so that 95 % of the
training pairs' points lie within 2 sigma, for predictions made the same way (with or without the style
references). Without a calibration the solver's own sigma is a guess: on world seed 3 (a boot) its p95 was
0.77 mm while a third of the line lay more than 1.5 mm from the true line (worst 4.9 mm). Such a line is
returned with a reason (``line uncertain: ...``): the plan's verdict becomes ``needs_human``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gluecell.core.types import PartScan

from .calibration import DepthCalibration

__all__ = ["PredictedLine", "predict_bite_line", "line_reasons", "prediction_reasons", "predict_with_residual",
           "resolve_residual", "reasons_for"]  # fmt: skip


@dataclass(frozen=True)
class PredictedLine:
    """A predicted bite line for planning.

    Attributes:
        line: (m, 3) float64 closed bite line, base_link, metres.
        sigma: (m,) float64 per-point 1-sigma, metres.
        sigma_p95_m: p95 of ``sigma``, metres (what the margin is made of).
        reasons: why the sigma cannot be trusted (empty: it can); each starts with "line uncertain:".
        deform_ms: time of the prediction, milliseconds.
        diagnostics: the prediction's diagnostics (fallbacks, calibration, ...), JSON-able parts only.
    """

    line: np.ndarray
    sigma: np.ndarray
    sigma_p95_m: float
    reasons: tuple[str, ...] = ()
    deform_ms: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)


def line_reasons(calibration: DepthCalibration | None, with_reference: bool, with_sole_reference: bool) -> list[str]:
    """Why a line predicted in this configuration has a sigma that is not known to cover its error.

    Args:
        calibration: the depth calibration used (None: the solver's own sigma, never validated).
        with_reference / with_sole_reference: whether the style's nominal upper / sole were given.
    """
    if calibration is None:
        return ["line uncertain: no depth calibration, so the predictor's sigma is not known to cover its error "
                "(calibrate with `gluecell deform calibrate`, or mark the line)"]  # fmt: skip
    refs = calibration.references
    used = with_reference and with_sole_reference
    if refs is not None and refs != "none" and not used and calibration.unreferenced is None:
        return [f"line uncertain: the calibration was learnt with style references ({refs}) but the prediction "
                "was made without the nominal upper and sole; its sigma model does not apply"]  # fmt: skip
    if refs == "none" and (with_reference or with_sole_reference):
        return ["line uncertain: the calibration was learnt without style references but the prediction used "
                "them; its sigma model does not apply"]  # fmt: skip
    return []


def prediction_reasons(diagnostics: dict[str, Any], calibration: DepthCalibration | None, with_reference: bool,
                       with_sole_reference: bool) -> list[str]:  # fmt: skip
    """:func:`line_reasons` plus the prediction's own fallbacks that make its line uncertain (``diagnostics``
    of an :class:`~gluecell.core.types.AttachPrediction`)."""
    reasons = line_reasons(calibration, with_reference, with_sole_reference)
    if diagnostics.get("fallbacks", {}).get("wall_thickness_default"):
        reasons.append("line uncertain: no station showed the sole's wall thickness (a default was used)")
    return reasons


def reasons_for(diagnostics: dict[str, Any], residual_used: bool, calibration: DepthCalibration | None,
                with_reference: bool, with_sole_reference: bool) -> list[str]:  # fmt: skip
    """:func:`prediction_reasons` of a line, or, when the learnt residual made it (its sigma was made to cover its
    error with and without style references, no calibration applies), only the prediction's own fallbacks."""
    if residual_used:
        return [r for r in prediction_reasons(diagnostics, None, False, False) if "wall thickness" in r]
    return prediction_reasons(diagnostics, calibration, with_reference, with_sole_reference)


def predict_bite_line(
    upper: PartScan,
    sole: PartScan,
    *,
    material: str | None = None,
    calibration: DepthCalibration | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    sole_reference: tuple[np.ndarray, np.ndarray] | None = None,
    style: str | None = None,
    residual: Any = "default",
    **predict_kw: Any,
) -> PredictedLine:
    """Predict the bite line of one pair for planning (see the module docstring).

    Args:
        upper / sole: the scans (:class:`~gluecell.core.types.PartScan`, base_link).
        material, calibration, reference, sole_reference, style: as :func:`~.predict.predict_attach`.
        residual: the learnt residual (:class:`~.residual.ResidualModel`), "default" (the shipped one when it is
            marked on by default, see :func:`resolve_residual`) or None (physics + calibration only).
        predict_kw: further :func:`~.predict.predict_attach` arguments (``cfg``, ``surrogate``, ``taught``,
            ``check_confidence``).

    Raises:
        GlueCellError: bad scans, or (``LowConfidenceError``) a sigma over the predictor's limit: the pair goes
            to a human without a plan.
    """
    from .predict import predict_attach

    t0 = time.perf_counter()
    model = resolve_residual(residual) if predict_kw.get("taught") is None else None
    kw = dict(material=material, calibration=calibration, reference=reference, sole_reference=sole_reference,
              style=style, **predict_kw)  # fmt: skip
    pred, used = predict_with_residual(upper, sole, model, **kw) if model is not None else (predict_attach(
        upper, sole, **kw), False)  # fmt: skip
    ms = (time.perf_counter() - t0) * 1e3
    reasons = reasons_for(pred.diagnostics, used, calibration, reference is not None, sole_reference is not None)
    diag = {k: v for k, v in pred.diagnostics.items() if k != "sigma_parts"}
    sigma = np.asarray(pred.bite_line_sigma, dtype=np.float64)
    return PredictedLine(pred.bite_line, sigma, float(np.percentile(sigma, 95)), tuple(reasons), ms, diag)


_DEFAULT_RESIDUAL: dict[str, Any] = {}


def resolve_residual(residual: Any = "default") -> Any:
    """The residual model to use: ``residual`` itself, a checkpoint path loaded, "on" the shipped checkpoint,
    "off" (or None) none, and "default" the shipped checkpoint when it is marked on by default (it beat physics +
    calibration on held-out pairs of both worlds), else none (also when none is shipped)."""
    from .residual import DEFAULT_RESIDUAL, ResidualModel, load_residual

    if residual is None or isinstance(residual, ResidualModel):
        return residual
    if residual == "off":
        return None
    if residual == "on":
        return load_residual(DEFAULT_RESIDUAL)
    if isinstance(residual, str) and residual == "default":
        if "model" not in _DEFAULT_RESIDUAL:
            model = load_residual(DEFAULT_RESIDUAL) if DEFAULT_RESIDUAL.exists() else None
            _DEFAULT_RESIDUAL["model"] = model if model is not None and model.default_on else None
        return _DEFAULT_RESIDUAL["model"]
    return load_residual(residual)


def predict_with_residual(upper: PartScan, sole: PartScan, model: Any, **kw: Any) -> tuple[Any, bool]:
    """(AttachPrediction, used): the physics (+ the calibration for a ``base_calibrated`` model) corrected by the
    residual ``model``; outside its
    training distribution, physics + ``kw["calibration"]`` with ``diagnostics["residual"]`` saying why (used
    False). ``kw``: :func:`~.predict.predict_attach` arguments; its ``check_confidence`` (default True) and
    ``cfg.max_sigma`` apply to the corrected line's sigma.

    Raises:
        LowConfidenceError: the corrected line's sigma p95 is over the limit (the pair goes to a human).
    """
    from dataclasses import replace

    from .errors import LowConfidenceError
    from .predict import PredictConfig, predict_attach
    from .residual import ResidualOutOfDistribution

    check = kw.pop("check_confidence", True)
    cal = kw.pop("calibration", None)
    known = kw.get("reference") is not None and kw.get("sole_reference") is not None
    base_cal = cal if model.base_calibrated else None  # a net trained without its cell's offset sits on the calibration
    pred = predict_attach(upper, sole, calibration=base_cal, check_confidence=False, **kw)
    try:
        line, sigma = model.correct(pred.bite_line, pred.diagnostics, known)
    except ResidualOutOfDistribution as exc:
        pred = predict_attach(upper, sole, calibration=cal, check_confidence=check, **kw)
        pred.diagnostics["residual"] = f"fallback: {exc}"
        return pred, False
    diag = dict(pred.diagnostics, residual="used", calibrated=base_cal is not None)
    pred = replace(pred, bite_line=line, bite_line_sigma=sigma, diagnostics=diag)
    cfg = kw.get("cfg") or PredictConfig()
    p95 = float(np.percentile(sigma, 95))
    if check and p95 > cfg.max_sigma:
        raise LowConfidenceError(
            f"line uncertain: the learnt residual's sigma p95 {p95 * 1e3:.2f} mm is over {cfg.max_sigma * 1e3:.2f} mm: "
            "send the pair to a human", stage="deformation", item_id=upper.item_id, partial=pred)  # fmt: skip
    return pred, True
