"""Bench rows of the learnt residual on top of the physics (``deform_residual_*``, issue 14 items 3-4).

The shipped checkpoint (:data:`gluecell.deformation.residual.DEFAULT_RESIDUAL`, trained on generated world-1
pairs of other seeds than the bench's) is run on the same pairs as the other deformation rows, the way the cell
runs it (:func:`gluecell.deformation.line.predict_with_residual`): the style references where the style library
holds the style (world 1), none otherwise (world 2); outside its training distribution it falls back to physics
+ calibration (``deform_residual_fallbacks`` counts those pairs). Figures: p95 and max per pair (median and
worst), the share of the line's points within 2 sigma of the true line (pooled), sigma p95 (median), the pairs
whose sigma p95 is over the limit (they would go to a human), latency.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["load_model", "residual_pair", "residual_summary"]


def load_model() -> Any:
    """The shipped residual checkpoint, or None when none is shipped."""
    from gluecell.deformation.residual import DEFAULT_RESIDUAL, load_residual

    return load_residual(DEFAULT_RESIDUAL) if DEFAULT_RESIDUAL.exists() else None


def residual_pair(acc: dict, model: Any, scans: tuple[Any, Any], refs: tuple[Any, Any], calibration: Any,
                  style: str, true_line: np.ndarray) -> None:  # fmt: skip
    """Run the residual on one pair and add its figures to ``acc``."""
    from gluecell.core.errors import GlueCellError
    from gluecell.core.geometry import bite_line_error, polyline_distance
    from gluecell.deformation.line import predict_with_residual

    t0 = time.perf_counter()
    try:
        pred, used = predict_with_residual(*scans, model, reference=refs[0], sole_reference=refs[1], style=style,
                                           calibration=calibration, check_confidence=False)  # fmt: skip
    except GlueCellError:
        acc["refused"] = acc.get("refused", 0) + 1
        return
    acc.setdefault("latency", []).append((time.perf_counter() - t0) * 1e3)
    acc["fallbacks"] = acc.get("fallbacks", 0) + int(not used)
    e = bite_line_error(pred.bite_line, true_line)
    acc.setdefault("errors", []).append((e.p95_mm, e.max_mm))
    d = polyline_distance(pred.bite_line, true_line)
    acc.setdefault("cover", []).append((int(np.sum(d <= 2 * pred.bite_line_sigma)), len(d)))
    acc.setdefault("sigma95", []).append(float(np.percentile(pred.bite_line_sigma, 95) * 1e3))


def error_rows(prefix: str, acc: dict, max_sigma_m: float) -> dict[str, float]:
    """The per-pair error, 2-sigma coverage and confidence rows ``<prefix>_*`` of ``acc`` (empty without pairs)."""
    errs = acc.get("errors", [])
    if not errs:
        return {}
    p95 = np.array([e[0] for e in errs])
    mx = np.array([e[1] for e in errs])
    return {
        f"{prefix}_bite_p95_mm_median": float(np.median(p95)),
        f"{prefix}_bite_p95_mm_worst": float(p95.max()),
        f"{prefix}_bite_max_mm_median": float(np.median(mx)),
        f"{prefix}_bite_max_mm_worst": float(mx.max()),
        f"{prefix}_pairs_meeting_goal": float(np.mean((p95 <= 0.5) & (mx <= 1.0))),
        f"{prefix}_within_2sigma": sum(c for c, _ in acc["cover"]) / sum(n for _, n in acc["cover"]),
        f"{prefix}_sigma_p95_mm_median": float(np.median(acc["sigma95"])),
        f"{prefix}_low_confidence": float(np.sum(np.array(acc["sigma95"]) > max_sigma_m * 1e3)),
        f"{prefix}_pairs": float(len(errs)),
    }  # fmt: skip


def residual_summary(acc: dict, max_sigma_m: float) -> dict[str, float]:
    """The ``deform_residual_*`` rows of ``acc``."""
    out = {"deform_residual_refused": float(acc.get("refused", 0)), "deform_residual_fallbacks":
           float(acc.get("fallbacks", 0)), **error_rows("deform_residual", acc, max_sigma_m)}  # fmt: skip
    if acc.get("errors"):
        out["deform_residual_latency_p50_ms"] = float(np.percentile(acc["latency"], 50))
        out["deform_residual_latency_p95_ms"] = float(np.percentile(acc["latency"], 95))
    return out
