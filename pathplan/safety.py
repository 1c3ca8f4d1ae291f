"""The per-pair safety policy of planning: a line's uncertainty becomes a margin, the plan is built, the learned
correction is re-checked, and the plan gets a verdict, ``"ok"`` or ``"needs_human"`` with its reasons.

Library functions an orchestrator calls without the CLI (``gluecell plan`` and the demo use them too):

- :func:`with_margin`: a :class:`~gluecell.pathplan.pipeline.PathplanConfig` whose upper region keeps
  ``margin_sigmas`` x the line's p95 sigma inside the line; a margin over what the region accepts (5 mm) is
  capped, and :func:`margin_reasons` reports it (the glue cannot be kept that far inside: a reason for a human).
- :func:`plan_checked`: plan both parts, apply the learned correction (re-checked with the same film model and
  limit as the uncorrected plan, rolled back when it fails), and judge: :class:`CheckedPlan`.
- :func:`plan_verdict`: the verdict of finished part metrics plus the reasons gathered on the way.

Reasons a plan needs a human (each a sentence that starts with its kind): ``coverage short`` (the band beyond the
1 mm tolerance strip is covered less than the tuning target), ``glue beyond the line`` (the film limit fails:
never expected from the tuner, which refuses such plans, but checked), ``line uncertain`` (the line's sigma is
not known to cover its error: :mod:`gluecell.deformation.line`), ``margin capped``, ``correction refused`` (the
correction was configured but not applied), ``metrics missing`` (a figure the verdict needs is absent or NaN).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gluecell.core.errors import ConfigError

__all__ = [
    "MARGIN_SIGMAS",
    "MAX_MARGIN_MM",
    "VERDICT_OK",
    "VERDICT_NEEDS_HUMAN",
    "margin_mm",
    "with_margin",
    "margin_reasons",
    "point_margins",
    "plan_verdict",
    "CheckedPlan",
    "plan_checked",
]

log = logging.getLogger(__name__)

#: Default safety margin of a predicted bite line, in sigmas of its uncertainty (p95 over the line).
MARGIN_SIGMAS = 2.0
#: Largest margin the upper's region accepts (``RegionParams.bite_margin_mm``), mm.
MAX_MARGIN_MM = 5.0
VERDICT_OK = "ok"
VERDICT_NEEDS_HUMAN = "needs_human"


def margin_mm(cfg: Any, sigma_p95_m: float, margin_sigmas: float = MARGIN_SIGMAS) -> float:
    """The margin (mm) the policy asks: ``margin_sigmas`` x ``sigma_p95_m``, never less than the config's own
    ``bite_margin_mm`` (uncapped: compare with :data:`MAX_MARGIN_MM`).

    Raises:
        ConfigError: ``margin_sigmas`` outside 0-5 or not finite, or ``sigma_p95_m`` NaN/negative.
    """
    if not (np.isfinite(margin_sigmas) and 0 <= margin_sigmas <= 5):
        raise ConfigError(f"--margin-sigmas must be within 0-5, got {margin_sigmas}", key="margin_sigmas")
    if not (np.isfinite(sigma_p95_m) and sigma_p95_m >= 0):
        raise ConfigError(f"the line's sigma p95 must be a finite length >= 0, got {sigma_p95_m}", key="sigma")
    return max(cfg.region.bite_margin_mm, margin_sigmas * sigma_p95_m * 1e3)


def with_margin(cfg: Any, sigma_p95_m: float, margin_sigmas: float = MARGIN_SIGMAS) -> Any:
    """``cfg`` whose region keeps :func:`margin_mm` inside the bite line, at most :data:`MAX_MARGIN_MM` (the
    cap is a reason for a human: :func:`margin_reasons`)."""
    mm = min(margin_mm(cfg, sigma_p95_m, margin_sigmas), MAX_MARGIN_MM)
    return replace(cfg, region=replace(cfg.region, bite_margin_mm=mm))


def margin_reasons(cfg: Any, sigma_p95_m: float, margin_sigmas: float = MARGIN_SIGMAS) -> list[str]:
    """``["margin capped: ..."]`` when the margin the policy asks is over :data:`MAX_MARGIN_MM`, else ``[]``."""
    want = margin_mm(cfg, sigma_p95_m, margin_sigmas)
    if want <= MAX_MARGIN_MM:
        return []
    return [f"margin capped: {margin_sigmas:g} x sigma p95 asks {want:.2f} mm inside the line, the planner keeps "
            f"at most {MAX_MARGIN_MM:.1f} mm"]  # fmt: skip


def point_margins(cfg: Any, sigma_m: np.ndarray, margin_sigmas: float = MARGIN_SIGMAS
                  ) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """Per-point margins (m,) metres from each bite-line point's own sigma: ``margin_sigmas`` x sigma, never
    less than the config's ``bite_margin_mm``, at most :data:`MAX_MARGIN_MM`; and the reasons for a human
    (``margin capped`` where a point asks more than the planner keeps).

    A single margin from the line's p95 sigma keeps a dry strip that wide all round where most points are
    known far better; per point, the glue reaches as close to the line as each point's uncertainty allows.

    Raises:
        ConfigError: ``margin_sigmas`` outside 0-5, or ``sigma_m`` not finite / negative / empty.
    """
    sig = np.asarray(sigma_m, dtype=np.float64).ravel()
    if sig.size == 0 or not np.all(np.isfinite(sig)) or sig.min() < 0:
        raise ConfigError("the line's per-point sigma must be finite lengths >= 0", key="sigma")
    margin_mm(cfg, float(sig.max()), margin_sigmas)  # validates margin_sigmas
    want = np.maximum(margin_sigmas * sig, cfg.region.bite_margin_mm * 1e-3)
    out = np.minimum(want, MAX_MARGIN_MM * 1e-3)
    capped = int(np.count_nonzero(want > MAX_MARGIN_MM * 1e-3 + 1e-12))
    why = [] if not capped else [
        f"margin capped: at {capped} of {sig.size} bite-line points {margin_sigmas:g} x sigma asks up to "
        f"{want.max() * 1e3:.2f} mm inside the line, the planner keeps at most {MAX_MARGIN_MM:.1f} mm"]  # fmt: skip
    return out, why


def plan_verdict(metrics: dict[str, dict[str, float]], cfg: Any, reasons: list[str] | tuple[str, ...] = ()
                 ) -> tuple[str, list[str]]:  # fmt: skip
    """``("ok", [])`` or ``("needs_human", reasons)`` for a plan's per-part ``metrics`` and earlier ``reasons``.

    Args:
        metrics: ``{part: metrics}`` as :class:`~gluecell.pathplan.pipeline.PartPlan` carries them.
        cfg: the :class:`~gluecell.pathplan.pipeline.PathplanConfig` the plan was made with (its limits).
        reasons: reasons gathered before planning (line uncertain, margin capped, correction refused).
    """
    from .pipeline import film_limit

    key, allow_mm, _ = film_limit(cfg)
    out = list(reasons)
    target = cfg.tuning.target_coverage
    for part, m in metrics.items():
        need = (key, "coverage_1mm")
        if any(not np.isfinite(float(m.get(k, float("nan")))) for k in need):
            out.append(f"metrics missing: the {part}'s {[k for k in need if k not in m]} figures are absent or NaN")
            continue
        if m[key] > allow_mm:
            out.append(f"glue beyond the line: {part} {m[key]:.2f} mm ({key}, allowed {allow_mm:.2f} mm)")
        if m["coverage_1mm"] < target:
            out.append(f"coverage short: {part} {m['coverage_1mm']:.1%} of the band beyond the 1 mm strip "
                       f"(target {target:.0%})")  # fmt: skip
    return (VERDICT_NEEDS_HUMAN, out) if out else (VERDICT_OK, [])


@dataclass(frozen=True)
class CheckedPlan:
    """Both parts planned and judged: the :class:`~gluecell.pathplan.pipeline.PairPlan` (the upper's part
    corrected when the correction passed its re-check), the config used (with the margin), the verdict and its
    reasons, and the correction's result (None when no model was given)."""

    pair: Any
    cfg: Any
    verdict: str
    reasons: tuple[str, ...]
    correction: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def plan_checked(upper: tuple[np.ndarray, np.ndarray | None], sole: tuple[np.ndarray, np.ndarray | None],
                 bite_line: np.ndarray, cfg: Any = None, *, sigma_p95_m: float | None = None,
                 margin_sigmas: float = MARGIN_SIGMAS, line_reasons: tuple[str, ...] | list[str] = (),
                 correction: Any = None, sigma_m: np.ndarray | None = None,
                 correction_required: bool = True) -> CheckedPlan:  # fmt: skip
    """The per-pair planning policy: margin from the line's sigma, plan, re-checked correction, verdict.

    Args:
        upper / sole: (points (n, 3), normals (n, 3) or None) in base_link, metres.
        bite_line: (m, 3) closed bite line, base_link.
        cfg: PathplanConfig (None: defaults).
        sigma_p95_m: p95 sigma of a predicted line (None: a marked or measured line, the config's margin).
        line_reasons: why the line's sigma cannot be trusted (:attr:`gluecell.deformation.line.PredictedLine.reasons`).
        correction: a loaded :class:`~gluecell.pathplan.correction.CorrectionModel` for the upper, or None.
        sigma_m: (m,) per-point sigma of a predicted line, metres, one per ``bite_line`` point: each point gets
            its own margin (:func:`point_margins`) instead of the one p95 margin of ``sigma_p95_m``.
        correction_required: True (a correction asked for by name): not applying it is a reason for a human;
            False (the shipped correction on by default): its gate may keep it off, the uncorrected plan stands
            and the reason stays in ``CheckedPlan.correction`` (its diagnostics) only.

    Raises:
        GlueCellError: the pair cannot be planned at all (unreachable, bad region, no safe tuning, NaN).
    """
    from .pipeline import PathplanConfig, plan_pair

    cfg = cfg or PathplanConfig()
    reasons = list(line_reasons)
    per_point = None
    if sigma_m is not None:
        if len(np.ravel(sigma_m)) != len(bite_line):
            raise ConfigError(f"sigma_m has {len(np.ravel(sigma_m))} values for {len(bite_line)} bite-line points",
                              key="sigma")  # fmt: skip
        per_point, why = point_margins(cfg, sigma_m, margin_sigmas)
        reasons += why
    elif sigma_p95_m is not None:
        reasons += margin_reasons(cfg, sigma_p95_m, margin_sigmas)
        cfg = with_margin(cfg, sigma_p95_m, margin_sigmas)
    pair = plan_pair(upper[0], sole[0], bite_line, cfg, upper_normals=upper[1], sole_normals=sole[1],
                     upper_margin_m=per_point)  # fmt: skip
    res = None
    if correction is not None:
        pair, res, why = _corrected(pair, correction, cfg)
        reasons += why if correction_required else []
    verdict, reasons = plan_verdict(pair.metrics, cfg, reasons)
    extra: dict[str, Any] = {"margin_mm": cfg.region.bite_margin_mm}
    if per_point is not None:
        extra.update(margin_mm=float(np.percentile(per_point, 95)) * 1e3, margin_mm_min=float(per_point.min()) * 1e3,
                     margin_mm_max=float(per_point.max()) * 1e3, margin_per_point=True)  # fmt: skip
    return CheckedPlan(pair, cfg, verdict, tuple(reasons), res, extra)


def _corrected(pair: Any, model: Any, cfg: Any) -> tuple[Any, Any, list[str]]:
    """The pair with the upper corrected (re-checked inside :func:`~.correction.correct_plan`), the result and
    the reasons for a human when the configured correction was not applied."""
    from .correction import correct_plan
    from .errors import UnreachableError

    up = pair.parts["upper"]
    try:
        new, res = correct_plan(up, model, cfg)
    except UnreachableError as exc:
        log.warning("correction not applied: the corrected path is unreachable (%s)", exc.message)
        return pair, None, [f"correction refused: the corrected path is unreachable ({exc.message})"]
    if not res.applied:
        return pair, res, [f"correction refused: {res.reason}"]
    parts = {**pair.parts, "upper": new}
    return replace(pair, parts=parts, paths={**pair.paths, "upper": new.path},
                   programs={**pair.programs, "upper": new.program},
                   metrics={**pair.metrics, "upper": dict(new.metrics)}), res, []  # fmt: skip
