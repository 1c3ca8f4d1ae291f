"""The film check of a plan: the limit a plan's predicted film must meet beyond the line, and the same check
on a changed path (the learned correction's), with the same deposition model and evaluation points."""

from __future__ import annotations

from typing import Any

import numpy as np

from gluecell.core.types import SprayPath

from .deposition import film_thickness, path_samples, spray_metrics
from .toolpath import ToolPath

__all__ = ["film_limit", "recheck_film", "spray_labels", "find_spec"]


def find_spec(specs: tuple[dict, ...], name: str) -> dict:
    """The (copied) spec of stage ``name`` in a stage list, or ``{"name": name}`` when it is not there."""
    return next((dict(s) for s in specs if s.get("name") == name), {"name": name})


def spray_labels(sp: SprayPath, tp: ToolPath, mspecs: tuple[dict, ...]) -> np.ndarray:
    """Class of every waypoint (n,) int: 0 edge pass, 1 other pass, 2 sprayed outside a pass (lead-in/out)."""
    within = float(find_spec(mspecs, "standoff").get("edge_within_mm", 5.0)) * 1e-3
    lab = np.where(np.abs(tp.offset) < within, 0, 1)
    return np.where(tp.pass_id >= 0, lab, 2)


def film_limit(cfg: Any) -> tuple[str, float, float]:
    """The limit a plan's film must meet beyond the line: (metric key, allowed mm, film level in metres).

    With ``edge_by_covered`` (the default) no film of the visible level may land more than
    ``max_visible_above_mm`` beyond the line (``above_visible_mm``); otherwise the trace level and
    ``max_above_mm`` (``above_line_mm``). This is the figure the CLI prints and the verdict checks.
    """
    tun, dep = cfg.tuning, cfg.deposition
    if tun.edge_by_covered:
        return "above_visible_mm", tun.max_visible_above_mm, dep.visible_mm * 1e-3
    return "above_line_mm", tun.max_above_mm, dep.trace_mm * 1e-3


def recheck_film(part_plan: Any, path: SprayPath, cfg: Any) -> dict[str, float]:
    """Film metrics of a changed ``path`` (same waypoints as ``part_plan``'s, e.g. the learned correction's; the
    waypoints keep the plan's spray classes) predicted with the same deposition model on the same evaluation
    points as the plan was tuned on, with ``meets_coverage`` and ``film_ok`` (1.0 when the :func:`film_limit` holds).

    Raises:
        ValueError: the plan carries no evaluation points (built by hand, not by :func:`plan_part`).
        NonFiniteError: NaN film or distances (:func:`~.deposition.spray_metrics`).
    """
    if part_plan.eval_region is None or part_plan.eval_area is None:
        raise ValueError("the plan carries no evaluation points: re-plan it with plan_part")
    region, area, dep = part_plan.eval_region, part_plan.eval_area, cfg.deposition
    mspecs = part_plan.stages[0]["modifiers"]
    samples = path_samples(path, dep.step_mm * 1e-3, spray_labels(path, part_plan.toolpath, mspecs))
    films = film_thickness(samples, region.points, region.normals, dep, n_labels=3)
    m = spray_metrics(films.sum(axis=0), region.signed, region.band_mask, area, dep)
    key, allow_mm, _ = film_limit(cfg)
    m["meets_coverage"] = float(m["coverage_1mm"] >= cfg.tuning.target_coverage)
    m["film_ok"] = float(m[key] <= allow_mm)
    return m
