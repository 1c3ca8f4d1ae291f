"""End-to-end bench: from the cameras' depth frames to sprayed glue, judged by the world's truth.

Per held-out pair (the dataset's ``test`` split) the pair's own depth frames go through perception; then
one bite line per row, the path planner on the *perceived* upper and sole clouds, and the world's true spray
simulator (``cell.sim.world``: double-beta fan, the gun's hidden per-run variation, the robot's path errors)
scores the upper's glue on the true mesh. Rows, side by side on the same pairs:

- ``marked``: the bite line marked by hand on each pair (the simulated cell plays the operator:
  :func:`gluecell.cell.sim.outcome.marked_bite_line`, 0.3 mm smooth pen noise), as lines without a
  deformation model work today.
- ``predicted``: the full pipeline, the deformation step's predicted line in its best configuration (the
  deformation bench's ``deform_cal``: the style's nominal upper and sole as references, offsets and the sigma
  model learnt on the dataset's *train* split, material unknown), the glue kept ``MARGIN_SIGMAS`` x each
  point's own sigma inside it as ``gluecell plan`` does (per-point margins, issue 15). Planned even when the
  prediction reports low confidence (the cell would hand those to the human: counted in
  ``e2e_predicted_low_confidence``), to show what it would do.
- ``corrected``: ``predicted`` with the shipped learned path correction (``pathplan/models/correction.pt``,
  switched on only because it beat the planner on held-out pairs) applied to the upper's path.
- ``rigid``: no deformation model: the free sole's rim placed rigidly by the attach pose.
- ``teach``: teach once: the path taught once on one real pair of the style/size/side (the taught pair, scanned by
  the dataset's cell like any other pair; planned on its scan along the line the teacher marked on it), placed
  rigidly by registering the taught scan onto this pair's scan (:func:`teach_path`).

- ``trueline``: the world's true bite line (sigma 0) on the perceived clouds: what planning alone achieves on
  real scans when the line is exact (issue 15: dry strip <= 1 mm, nothing > 0.5 mm above it).

Metrics per row (``e2e_<row>_*``): ``planned`` (pairs with a plan), ``refused_<kind>`` (refusals by the
error's kind, each reason logged), ``human_<kind>`` (planned pairs whose verdict has a reason of that
kind), ``bite_p95_mm``/``bite_max_mm`` (line
vs the true line, median over pairs), ``true_coverage_mean`` (true bond faces), ``true_band2mm_coverage_mean``,
``true_above_p99_mm``/``true_above_max_mm`` (glue above the true bite line, worst pair), ``true_gap_area_mm2``,
``true_dry_strip_p95_mm`` (worst pair) / ``_median`` (the dry strip below the true line: p95 over 2 mm stretches,
on the true mesh refined near the line, :func:`gluecell.cell.bench.pathplan.refine_truth`;
``true_dry_strip_face_p95_mm``: on the world's own ~2.5 mm faces, as before), ``true_coverage_1mm_mean``/``_min``
(bond faces > 1 mm from the line),
``needs_human`` (pairs whose plan verdict, :mod:`gluecell.pathplan.safety`, is ``needs_human``: coverage short,
line uncertain, margin capped, correction refused).
For ``predicted`` also ``e2e_latency_p50_ms``/``_p95_ms``: two perceived clouds to both ``RobotProgram`` s
(deformation + planning; perception is benched in its own section).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["bench", "ROWS"]

#: Rows, in table order.
ROWS = ("marked", "predicted", "corrected", "rigid", "teach")
#: Every row a pair may carry (``trueline``: the true line on the perceived clouds, issue 15), in table order.
ALL_ROWS = ("trueline", *ROWS)
#: Train pairs the predictor's offsets and sigma model are learnt on (quick / full).
N_CAL_QUICK, N_CAL_FULL = 4, 24
#: Pairs (quick / full) from the test split.
N_QUICK, N_FULL = 1, 8


def _lines(scans: dict[str, Any], truth: dict[str, Any], seed: int,
           predict_kw: dict[str, Any]) -> dict[str, Callable[[], Any]]:  # fmt: skip
    """Bite-line makers per row (each returns (line, planner config, extra metrics))."""
    from gluecell.cell.sim.outcome import marked_bite_line
    from gluecell.deformation.baselines import predict_rigid
    from gluecell.deformation.line import line_reasons
    from gluecell.deformation.predict import predict_attach
    from gluecell.pathplan.pipeline import PathplanConfig
    from gluecell.pathplan.safety import MARGIN_SIGMAS, point_margins

    upper_pts = scans["upper"].points

    def predicted() -> tuple[np.ndarray, Any, dict[str, float]]:
        t0 = time.perf_counter()
        pred = predict_attach(scans["upper"], scans["sole"], check_confidence=False, **predict_kw)
        deform_ms = (time.perf_counter() - t0) * 1e3
        sig = float(np.percentile(pred.bite_line_sigma, 95))
        cfg = PathplanConfig()
        margins, capped = point_margins(cfg, pred.bite_line_sigma, MARGIN_SIGMAS)  # per point, as gluecell plan
        kw = predict_kw
        why = line_reasons(kw.get("calibration"), kw.get("reference") is not None,
                           kw.get("sole_reference") is not None) + capped
        extra = {"sigma_p95_mm": sig * 1e3, "low_confidence": float(sig > 1e-3), "margin_m": margins,
                 "margin_mm": float(np.percentile(margins, 95)) * 1e3, "deform_ms": deform_ms, "reasons": why}
        return pred.bite_line, cfg, extra

    return {
        "trueline": lambda: (np.asarray(truth["bite_line"], dtype=float), PathplanConfig(), {}),
        "marked": lambda: (marked_bite_line(truth, seed=seed), PathplanConfig(), {}),
        "predicted": predicted,
        "rigid": lambda: (_snapped(predict_rigid(scans["upper"], scans["sole"]).bite_line, upper_pts),
                          PathplanConfig(), {}),
    }


def refusal_kind(exc: Exception) -> str:
    """Short name of a refusal's kind for the bench keys: ``CoverageError`` -> ``coverage``."""
    name = type(exc).__name__
    return (name[: -len("Error")] if name.endswith("Error") else name).lower() or "other"


def reason_kind(reason: str) -> str:
    """A verdict reason's kind (its words before the first ``:``) as a key: ``coverage short`` -> ``coverage_short``."""
    return "_".join(reason.split(":", 1)[0].lower().split()) or "other"


def _snapped(line: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """``line`` (m, 3) moved onto the nearest points of ``cloud`` (n, 3), then a closed 5-point moving average."""
    from scipy.spatial import cKDTree

    on = cloud[cKDTree(cloud).query(line)[1]]
    return sum(np.roll(on, k, axis=0) for k in range(-2, 3)) / 5.0


def _one(ds: Any, sid: str, seed: int, cache: dict, setup: dict[str, Any]) -> dict[str, dict[str, float]]:
    """All rows of one pair: ``{row: metrics}`` (a refused row has ``refused`` = 1 and its reason logged)."""
    from gluecell.cell.bench.deformation import pair_errors, style_references
    from gluecell.cell.bench.pathplan import judge_true
    from gluecell.core.errors import GlueCellError
    from gluecell.pathplan.pipeline import plan_pair
    from gluecell.pathplan.safety import plan_verdict
    from gluecell.perception.scan import scan_part_frames

    inp = ds.inputs(sid)
    truth = ds.truth(sid)
    item = inp["workitem"]
    scans = {p: scan_part_frames(inp["frames"][p], p, item_id=sid) for p in ("upper", "sole")}
    up, so = scans["upper"], scans["sole"]
    ref, sref, cal = style_references(cache, item, setup["calibration"])  # unknown style: none, reason kept
    kw = {"reference": ref, "sole_reference": sref, "calibration": cal, "style": item.style}
    out: dict[str, dict[str, float]] = {}
    for row, make in _lines(scans, truth, seed, kw).items():
        try:
            line, cfg, extra = make()
            margins = extra.pop("margin_m", None)
            t0 = time.perf_counter()
            plan = plan_pair(up.points, so.points, line, cfg, upper_normals=up.normals, sole_normals=so.normals,
                             upper_margin_m=margins)  # fmt: skip
            plan_ms = (time.perf_counter() - t0) * 1e3
        except GlueCellError as exc:
            log.warning("e2e bench: %s row refused pair %s: %s", row, sid, exc)
            out[row] = {"refused": 1.0, f"refused_{refusal_kind(exc)}": 1.0}
            if row == "predicted":
                out["corrected"] = {"refused": 1.0}
            continue
        p95, mx = pair_errors(line, truth["bite_line"])
        why = list(extra.pop("reasons", []))
        verdict, why = plan_verdict(plan.metrics, cfg, why)
        m = {"refused": 0.0, "bite_p95_mm": p95, "bite_max_mm": mx, **extra, "needs_human": float(verdict != "ok"),
             **{f"human_{reason_kind(w)}": 1.0 for w in why}}
        if row == "predicted":
            m["latency_ms"] = m.pop("deform_ms") + plan_ms
            out["corrected"] = _corrected(plan, cfg, truth, seed, setup["correction"], why)
        m.update(judge_true(plan.paths["upper"], truth, seed + 5))
        out[row] = m
    try:
        path = teach_path(cache, item, up)
        out["teach"] = {"refused": 0.0, **judge_true(path, truth, seed + 5)}
    except GlueCellError as exc:
        log.warning("e2e bench: teach row refused pair %s: %s", sid, exc)
        out["teach"] = {"refused": 1.0}
    return out


def teach_path(cache: dict, item: Any, upper_scan: Any) -> Any:
    """Teach once: the upper path planned once on the taught pair's scan along its marked line (kept in
    ``cache``), moved onto this pair by the taught-scan-to-scan registration."""
    from gluecell.cell.bench.deformation import teach_transform
    from gluecell.cell.bench.pathplan import _moved
    from gluecell.pathplan.errors import PathplanError
    from gluecell.pathplan.pipeline import PathplanConfig, plan_part

    got = teach_transform(cache, item, upper_scan)
    if got is None:
        raise PathplanError("teach once: the taught pair could not be scanned")
    T, taught = got
    key = ("teach_path", item.style, float(item.size_eu), item.side)
    if key not in cache:
        pts, nrm = taught.upper
        cache[key] = plan_part("upper", pts, PathplanConfig(), bite_line=np.asarray(taught.bite_line), normals=nrm).path
    return _moved(cache[key], T)


def _corrected(plan: Any, cfg: Any, truth: dict[str, Any], seed: int, model: Any,
               reasons: list[str]) -> dict[str, float]:  # fmt: skip
    """The predicted row's upper path with the learned correction (re-checked by ``correct_plan``; rolled back
    when its film fails), judged like the others; ``reasons``: the predicted row's verdict reasons."""
    from gluecell.cell.bench.pathplan import judge_true
    from gluecell.core.errors import GlueCellError
    from gluecell.pathplan.correction import correct_plan
    from gluecell.pathplan.safety import plan_verdict

    try:
        pp, res = correct_plan(plan.parts["upper"], model, cfg)
    except GlueCellError as exc:
        log.warning("e2e bench: correction refused: %s", exc)
        return {"refused": 1.0}
    if not res.applied:
        log.warning("e2e bench: correction not applied: %s", res.reason)
    why = [*reasons, *([] if res.applied else [f"correction refused: {res.reason}"])]
    verdict, _ = plan_verdict({**plan.metrics, "upper": pp.metrics}, cfg, why)
    return {"refused": 0.0, "applied": float(res.applied), "needs_human": float(verdict != "ok"),
            **judge_true(pp.path, truth, seed + 5)}  # fmt: skip


def _table(pairs: list[dict[str, dict[str, float]]]) -> dict[str, float]:
    out: dict[str, float] = {"e2e_pairs": float(len(pairs))}
    for row in (r for r in ALL_ROWS if r in ROWS or any(r in p for p in pairs)):
        got = [p[row] for p in pairs if not p[row]["refused"]]
        out[f"e2e_{row}_planned"] = float(len(got))
        for k in sorted({k for p in pairs for k in p[row] if k.startswith("refused_")}):
            out[f"e2e_{row}_{k}"] = float(sum(p[row].get(k, 0.0) for p in pairs))

        def col(key: str, got: list = got) -> np.ndarray:
            return np.array([g[key] for g in got if key in g], dtype=float)

        if not got:
            continue
        stats = {
            "true_coverage_mean": col("true_coverage").mean(),
            "true_band2mm_coverage_mean": col("true_band2mm_coverage").mean(),
            "true_above_p99_mm": col("true_above_p99_mm").max(),
            "true_above_max_mm": col("true_above_max_mm").max(),
            "true_gap_area_mm2": col("true_gap_mm2").mean(),
        }
        for key in ("true_dry_strip_p95_mm", "true_dry_strip_face_p95_mm"):  # older row dicts may lack them
            if len(col(key)):
                stats[key] = col(key).max()
                stats[f"{key}_median"] = float(np.median(col(key)))
        if len(col("true_coverage_1mm")):
            stats["true_coverage_1mm_mean"] = col("true_coverage_1mm").mean()
            stats["true_coverage_1mm_min"] = col("true_coverage_1mm").min()
        if len(col("bite_p95_mm")):
            stats["bite_p95_mm"] = float(np.median(col("bite_p95_mm")))
            stats["bite_max_mm"] = float(np.median(col("bite_max_mm")))
        if len(col("low_confidence")):
            stats["low_confidence"] = col("low_confidence").sum()
        if len(col("applied")):
            stats["applied"] = col("applied").sum()
        if len(col("needs_human")):
            stats["needs_human"] = col("needs_human").sum()
        out.update({f"e2e_{row}_{k}": float(v) for k, v in stats.items()})
        for k in sorted({k for g in got for k in g if k.startswith("human_")}):
            out[f"e2e_{row}_{k}"] = float(col(k).sum())
        lat = col("latency_ms")
        if len(lat):
            out["e2e_latency_p50_ms"] = float(np.percentile(lat, 50))
            out["e2e_latency_p95_ms"] = float(np.percentile(lat, 95))
    return out


def bench(ctx: Any) -> dict[str, float]:
    """Run the end-to-end bench on ``ctx.dataset``'s test split (``ctx.quick``: one pair)."""
    from rich.progress import Progress

    from gluecell.cell.bench.deformation import dataset_cell_cameras, is_test_world, shipped_calibration
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.calibration_train import calibrate_on_dataset
    from gluecell.pathplan.correction import DEFAULT_MODEL, CorrectionRefusedError, load_model

    ds = open_dataset(ctx.dataset)
    ids = (ds.ids() if is_test_world(ds) else ds.ids("test"))[: N_QUICK if ctx.quick else N_FULL]
    cache: dict = {"cameras": dataset_cell_cameras(ds)}
    if is_test_world(ds):  # teach once on a world-2 pair of the style, scanned by this dataset's cell
        cache["world2_seed"] = int(ds.info.get("seed", 0))
    train = ds.ids("train")[: N_CAL_QUICK if ctx.quick else N_CAL_FULL]
    if train and not is_test_world(ds):
        cal, _ = calibrate_on_dataset(ds, train, reference_for=lambda item: nominal_upper(cache, item)[:2],
                                      sole_reference_for=lambda item: nominal_sole(cache, item))  # fmt: skip
    else:  # a test-only world: nothing fitted on it
        cal = shipped_calibration()
    try:  # the cell's default: the shipped correction where it is switched on (its record says where it won)
        correction = load_model(DEFAULT_MODEL)
    except CorrectionRefusedError as exc:
        log.warning("e2e bench: the shipped correction is switched off: %s", exc.message)
        correction = None
    setup = {"calibration": cal, "correction": correction}
    pairs = []
    with Progress(transient=True) as bar:
        task = bar.add_task("end-to-end bench", total=len(ids))
        for k, sid in enumerate(ids):
            pairs.append(_one(ds, sid, int(ctx.seed) + 31 * k, cache, setup))
            bar.advance(task)
    return _table(pairs)
