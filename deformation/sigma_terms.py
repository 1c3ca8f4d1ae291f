"""Sigma terms for the conditions a prediction can see at run time (issue 14, item 4: honest uncertainty).

The calibration's plain sigma model (:meth:`~.calibration.DepthCalibration.total_sigma`) is one level for every
pair of the configuration it was learnt in. The error does not stay at one level: a pair whose two scans' outlines
fit each other badly, whose upper side was seen at fewer stations, or whose line runs far from the nearest station
where the side was seen, is further off. :class:`SigmaTerms` is the predictor's own sigma widened by a factor per
such condition::

    sigma = factor * sqrt((scale * own)^2 + floor^2) * exp(clip(sum_j coef_j (x_j - mean_j), -L, L))

``own`` is the predictor's uncalibrated per-point sigma (station scatter, material, sensor floor, the knee, the
fallbacks); ``x`` the run-time terms of :data:`TERMS`, each read off the prediction itself (nothing of the world).
``scale, floor, coef`` are the maximum likelihood of the training points' errors (half-normal); ``factor`` is the
conformal factor that puts 95 % of *held-out* points within 2 sigma: with ``groups`` (one per training cell: each
generated world has its own cameras' errors) the points of each cell are scored with the terms and the depth
offset learnt on the *other* cells, and the factor is the largest any held-out cell needs (the goal holds per
world, per plant, not on average), so it also covers a calibration carried to a cell it was not learnt in.
Fitted on world-1 pairs only (:mod:`.sigma_train`); nothing is fitted on the test world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TERMS", "SigmaTerms", "term_matrix", "terms_of_prediction", "fit_sigma_terms", "COVERAGE"]

#: The run-time terms, in order: per pair (the two scans' outline misfit after the attach pose, mm; the share of
#: upper stations whose side reached the bite depth; |upper outline / sole outline - 1|, %; the share of sole
#: stations measured), per point (the side was not seen at this station; stations to the nearest one where it
#: was; the bite depth's slope along the outline, the heel counter's knee).
TERMS: tuple[str, ...] = ("pose_rms_mm", "side_seen_share", "abs_perimeter_strain_pct", "valid_sole",
                          "unseen_station", "gap_stations", "depth_slope")  # fmt: skip
#: Share of held-out points within 2 sigma after the conformal factor.
COVERAGE = 0.95
#: Largest widening (or narrowing) the terms may apply, as a log factor (x10): a term far outside its training
#: range is not extrapolated without bound.
MAX_LOG = float(np.log(10.0))


def _gap_stations(seen: np.ndarray) -> np.ndarray:
    """(K,) stations from each station to the nearest one with ``seen`` (0 where seen; K/2 when none is)."""
    K = len(seen)
    idx = np.flatnonzero(seen)
    if len(idx) == 0:
        return np.full(K, K / 2.0)
    k = np.arange(K)
    return np.min(np.abs(((k[:, None] - idx[None, :]) + K // 2) % K - K // 2), axis=1).astype(np.float64)


def term_matrix(pair: dict[str, float], theta_line: np.ndarray, theta_st: np.ndarray, seen_st: np.ndarray,
                slope_st: np.ndarray) -> np.ndarray:  # fmt: skip
    """(m, len(TERMS)) term values of a line's m points.

    Args:
        pair: ``pose_rms_mm``, ``side_seen_share``, ``abs_perimeter_strain_pct``, ``valid_sole``.
        theta_line: (m,) each point's normalised outline angle; theta_st (K,) the stations'.
        seen_st: (K,) bool, the upper's side reached the bite depth at the station.
        slope_st: (K,) |d depth / d outline length| at each station (clipped to 0..5, then interpolated).
    """
    from .sections import periodic_interp

    seen = np.asarray(seen_st, dtype=bool)
    unseen = periodic_interp(theta_line, theta_st, (~seen).astype(np.float64))
    gap = periodic_interp(theta_line, theta_st, _gap_stations(seen))
    m = len(theta_line)
    cols = [np.full(m, float(pair[k])) for k in TERMS[:4]]
    slope = periodic_interp(theta_line, theta_st, np.clip(np.asarray(slope_st, dtype=np.float64), 0.0, 5.0))
    cols += [unseen, gap, slope]
    return np.column_stack(cols)


def terms_of_prediction(diagnostics: dict[str, Any], theta_line: np.ndarray) -> np.ndarray:
    """:func:`term_matrix` of a prediction from its diagnostics (with the per-station state in ``sigma_parts``)."""
    st = diagnostics["sigma_parts"]["stations"]
    fb = diagnostics.get("fallbacks", {})
    pair = {"pose_rms_mm": diagnostics["pose_rms_m"] * 1e3,
            "side_seen_share": float(fb.get("side_seen_fraction", 1.0)),
            "abs_perimeter_strain_pct": abs(diagnostics["perimeter_strain"]) * 100,
            "valid_sole": diagnostics["valid_sole"]}  # fmt: skip
    return term_matrix(pair, theta_line, st["us"].theta, st["sol"].seen, st["sol"].slope)


@dataclass(frozen=True)
class SigmaTerms:
    """A learnt sigma with run-time terms (see the module docstring). Lengths in metres."""

    scale: float
    floor: float
    coef: tuple[float, ...]
    mean: tuple[float, ...]
    factor: float = 1.0
    names: tuple[str, ...] = TERMS
    metrics: dict = field(default_factory=dict)

    def widening(self, X: np.ndarray) -> np.ndarray:
        """(m,) the terms' factor on the sigma for (m, T) term values."""
        z = (np.asarray(X, dtype=np.float64) - np.asarray(self.mean)) @ np.asarray(self.coef)
        return np.exp(np.clip(z, -MAX_LOG, MAX_LOG))

    def sigma(self, own: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(m,) 1-sigma, metres, from the predictor's own (m,) sigma and the (m, T) term values."""
        base = np.sqrt((self.scale * np.asarray(own, dtype=np.float64)) ** 2 + self.floor**2)
        return self.factor * base * self.widening(X)

    def drivers(self, X: np.ndarray, top: int = 3) -> list[str]:
        """The terms that widen this line's sigma most where it is widest (p95 of the factor over its points
        > 1.15), as text: the term, its value there and the factor."""
        X = np.asarray(X, dtype=np.float64)
        per = np.exp((X - np.asarray(self.mean)) * np.asarray(self.coef))
        hi = np.percentile(per, 95, axis=0)
        out = []
        for j in np.argsort(-hi)[:top]:
            if hi[j] > 1.15:
                at = X[np.argmin(np.abs(per[:, j] - hi[j])), j]
                out.append(f"{self.names[j]} {at:.3g} (sigma x{hi[j]:.2f})")
        return out

    def to_doc(self) -> dict[str, Any]:
        """JSON-able form (inside a calibration document)."""
        return {"scale": self.scale, "floor": self.floor, "coef": list(self.coef), "mean": list(self.mean),
                "factor": self.factor, "names": list(self.names), "metrics": dict(self.metrics)}  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SigmaTerms:
        """Read :meth:`to_doc`'s form; FormatError when its terms are not this code's."""
        from gluecell.core.errors import FormatError

        names = tuple(str(n) for n in doc.get("names", ()))
        if names != TERMS or len(doc.get("coef", ())) != len(TERMS) or len(doc.get("mean", ())) != len(TERMS):
            raise FormatError(f"sigma terms {names} differ from this gluecell's {TERMS}: recalibrate")
        return cls(scale=float(doc["scale"]), floor=float(doc["floor"]), coef=tuple(float(c) for c in doc["coef"]),
                   mean=tuple(float(c) for c in doc["mean"]), factor=float(doc.get("factor", 1.0)), names=names,
                   metrics={str(k): float(v) for k, v in dict(doc.get("metrics", {})).items()})  # fmt: skip


def _ml_fit(d: np.ndarray, own: np.ndarray, X: np.ndarray,
            w: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:  # fmt: skip
    """Weighted maximum likelihood of half-normal errors ``d``: (scale, floor, coef, mean)."""
    from scipy.optimize import minimize

    mean = np.average(X, axis=0, weights=w)
    Z = X - mean
    T = X.shape[1]

    def nll(x: np.ndarray) -> float:
        s = np.sqrt((np.exp(x[0]) * own) ** 2 + np.exp(x[1]) ** 2) * np.exp(np.clip(Z @ x[2:], -MAX_LOG, MAX_LOG))
        return float(np.average(np.log(s) + 0.5 * (d / s) ** 2, weights=w) + 1e-4 * np.sum(x[2:] ** 2))

    x0 = np.r_[np.log(0.5), np.log(max(float(np.median(d)), 1e-5)), np.zeros(T)]
    x = minimize(nll, x0, method="Powell", options={"maxiter": 40000, "xtol": 1e-4, "ftol": 1e-10}).x
    return float(np.exp(x[0])), float(np.exp(x[1])), x[2:], mean


def fit_sigma_terms(samples: list[dict[str, Any]], coverage: float = COVERAGE) -> SigmaTerms:
    """Fit :class:`SigmaTerms` on training lines.

    Args:
        samples: one dict per pair: ``d`` (m,) distance of each predicted point (after its learnt depth offset) to
            the true line, metres; ``own`` (m,) the predictor's own sigma; ``X`` (m, T) the term values; ``group``
            the cell it came from; optional ``d_out`` (m,) the distances with the offset learnt *without* its cell
            (the held-out score of :mod:`.sigma_train`); the fit weighs every pair the same, the held-out factor
            every cell the same.
        coverage: the share of points the factor puts within 2 sigma on the held-out cell that needs the most.
    """
    groups = sorted({s["group"] for s in samples})
    terms = fit_sigma_terms_plain(samples)
    need: dict[str, float] = {}
    for g in groups:  # held out: each cell scored with the terms fitted without it
        held = [s for s in samples if s["group"] == g]
        t_g = fit_sigma_terms_plain([s for s in samples if s["group"] != g]) if len(groups) > 1 else terms
        r = np.concatenate([s.get("d_out", s["d"]) / t_g.sigma(s["own"], s["X"]) for s in held])
        need[g] = float(np.quantile(r, coverage)) / 2.0
    # the goal holds per cell (per world, per plant), not on average: the factor every held-out cell needs
    factor = max(max(need.values()), 1e-3)
    metrics = {"pairs": float(len(samples)), "cells": float(len(groups)), "heldout_factor": factor,
               **{f"heldout_factor_cell_{g}": v for g, v in need.items()}}  # fmt: skip
    return SigmaTerms(scale=terms.scale, floor=terms.floor, coef=terms.coef, mean=terms.mean, factor=factor,
                      metrics=metrics)  # fmt: skip


def fit_sigma_terms_plain(samples: list[dict[str, Any]]) -> SigmaTerms:
    """:class:`SigmaTerms` by maximum likelihood only (factor 1); every pair weighs the same (the terms describe
    how pairs and points differ; the cells' own levels are the conformal factor's business)."""
    w = np.concatenate([np.full(len(s["d"]), 1.0 / len(s["d"])) for s in samples])
    scale, floor, coef, mean = _ml_fit(np.concatenate([s["d"] for s in samples]),
                                       np.concatenate([s["own"] for s in samples]),
                                       np.concatenate([s["X"] for s in samples]), w)  # fmt: skip
    return SigmaTerms(scale=scale, floor=floor, coef=tuple(float(c) for c in coef), mean=tuple(float(m) for m in mean))


def line_sigma(calibration: Any, sigma_model: np.ndarray, slope_pt: np.ndarray, fallback: np.ndarray,
               X: Any) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
    """(m,) the prediction's 1-sigma, metres, and what made it (``diagnostics["sigma"]``).

    Args:
        calibration: the :class:`~.calibration.DepthCalibration` part that applies (None: the predictor's own).
        sigma_model: (m,) the predictor's model sigma (scatter, material, sensor floor).
        slope_pt: (m,) the depth slope at each point; fallback (m,) the fallbacks' sigma.
        X: a callable giving the (m, T) term values (only called when the calibration has sigma terms).
    """
    from .calibration import DepthCalibration

    own = np.sqrt(DepthCalibration(offsets={}).total_sigma(sigma_model, slope_pt) ** 2 + fallback**2)
    if calibration is None:
        return own, {"model": "own (uncalibrated)"}
    terms = calibration.sigma_terms
    if terms is None:  # the fallbacks' uncertainty is added after the calibration: its model was not learnt on it
        return np.sqrt(calibration.total_sigma(sigma_model, slope_pt) ** 2 + fallback**2), {"model": "calibration"}
    x = X()
    refs = calibration.references or "?"
    return terms.sigma(own, x), {"model": f"calibration terms (references: {refs})", "drivers": terms.drivers(x)}
