"""Correction bench: does the shipped learned spray-path correction earn its place on this world?

Per held-out pair (the dataset's ``test`` split; every pair of a test-only world such as world 2) and per line the
cell plans to (``predicted``: the deformation step's line with its per-point sigma; ``marked``: the operator's line
with ``MARKED_SIGMA_M``), the pair's camera frames go through perception, the cell's planning policy plans the
upper (:func:`gluecell.cell.sim.correction_perceived.plan_cell`), and the same plan is corrected by the shipped
correction exactly as the cell applies it (its gate: out-of-range features, the film re-check). Both paths are
sprayed by the world's true spray simulator with the same hidden draws and judged on the true mesh
(:func:`gluecell.cell.bench.pathplan.judge_true`).

Keys ``corr_<kind>_<uncorrected|corrected>_<figure>``: ``true_above_max_mm`` / ``true_above_p99_mm`` (glue above
the TRUE line, worst pair), ``true_dry_strip_p95_mm`` (worst pair) and ``_median``, ``true_band2mm_coverage``
(mean coverage of the 2 mm band below the true line), ``true_coverage`` / ``true_coverage_1mm`` (bond faces, all /
> 1 mm from the line), ``true_gap_mm2``; ``corr_<kind>_applied`` (share of plans it was applied to) and
``corr_<kind>_wins`` (1 wins, 0 off: never applied, -1 loses: the switch-on rule of
:func:`gluecell.pathplan.correction_train.beats_baseline_true`).

    gluecell bench --only correction --keep /work/data/bench-w1
    gluecell bench --only correction --world 2 --keep /work/data/bench-w2
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["bench", "evaluate_perceived", "flatten"]

#: Pairs (quick / full).
N_QUICK, N_FULL = 1, 24


def evaluate_perceived(dataset: str | Path, model: Any, *, split: str = "test", n: int | None = None,
                       kinds: tuple[str, ...] = ("predicted", "marked"), seed: int = 1,
                       runs: int = 1) -> list[dict[str, Any]]:  # fmt: skip
    """Held-out rows: per pair and line kind, the cell's uncorrected plan and the same plan with the correction
    (``model``: a CorrectionModel, re-checked and gated as the cell applies it), both sprayed with the same hidden
    run draws and judged on the true mesh (:func:`gluecell.cell.bench.pathplan.judge_true`)."""
    from rich.progress import Progress

    from gluecell.cell.bench.pathplan import judge_true
    from gluecell.cell.bench.worlds import is_test_world
    from gluecell.cell.sim.correction_perceived import cell_line, pair_seed, perceived_scans, plan_cell
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import open_dataset
    from gluecell.pathplan.correction import correct_plan

    ds = open_dataset(dataset)
    ids = ds.ids() if is_test_world(ds) else ds.ids(split)
    ids = ids[:n] if n else ids
    rows: list[dict[str, Any]] = []
    cache: dict = {}
    with Progress(transient=True) as bar:
        task = bar.add_task(f"evaluate {Path(dataset).name}", total=len(ids))
        for sid in ids:
            truth, s = ds.truth(sid), pair_seed(sid, seed)
            try:
                scans, item = perceived_scans(ds, sid)
            except GlueCellError as exc:
                log.warning("correction eval: %s perception refused: %s", sid, exc)
                bar.advance(task)
                continue
            for kind in kinds:
                try:
                    line, sig, why = cell_line(kind, scans, truth, item, cache, s)
                    checked = plan_cell(scans, line, sig, why)
                    up = checked.pair.parts["upper"]
                    corr, res = correct_plan(up, model, checked.cfg)
                except GlueCellError as exc:
                    log.warning("correction eval: %s %s refused: %s", sid, kind, exc)
                    continue
                rows.append({"id": sid, "kind": kind, "applied": bool(res.applied), "reason": res.reason,
                             "offset_mean_mm": float(res.diagnostics.get("offset_mean_mm", 0.0)),
                             "base": judge_true(up.path, truth, s, runs=runs),
                             "corr": judge_true(corr.path, truth, s, runs=runs)})  # fmt: skip
            bar.advance(task)
    return rows


def flatten(summary: dict[str, Any]) -> dict[str, float]:
    """A :func:`~gluecell.pathplan.correction_train.summarise_true` summary as flat bench keys."""
    out: dict[str, float] = {}
    code = {"wins": 1.0, "off": 0.0, "loses": -1.0}
    for kind, v in summary.items():
        if not isinstance(v, dict) or "uncorrected" not in v:
            continue
        out[f"corr_{kind}_plans"] = float(v["n"])
        out[f"corr_{kind}_applied"] = float(v["applied_fraction"])
        out[f"corr_{kind}_wins"] = code[v["verdict"]]
        for row in ("uncorrected", "corrected"):
            out.update({f"corr_{kind}_{row}_{k}": float(x) for k, x in v[row].items()})
    return out


def bench(ctx: Any) -> dict[str, float]:
    """The shipped correction vs the uncorrected planner on ``ctx.dataset`` (``ctx.quick``: one pair)."""
    from gluecell.pathplan.correction import DEFAULT_MODEL, load_model
    from gluecell.pathplan.correction_train import summarise_true

    model = load_model(DEFAULT_MODEL, require_beats_baseline=False)  # measured whether or not it is switched on
    rows = evaluate_perceived(ctx.dataset, model, n=N_QUICK if ctx.quick else N_FULL, seed=int(ctx.seed))
    return flatten(summarise_true(rows)) if rows else {"corr_all_plans": 0.0}
