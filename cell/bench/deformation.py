"""Deformation bench: bite-line error against the world's truth, against two baselines, and latency.

Rows (same test pairs for all):

- ``deform``: the reference solver with the sole material unknown (what the work item carries).
- ``deform_cal``: the solver with the style's nominal upper as a reference (fills the toe and heel overhangs the
  cameras above do not see; it is the upper "teach once" is taught on), the style's nominal sole as a reference
  for the wall-height profile (:mod:`gluecell.deformation.sole_reference`) and the depth calibration learnt on the
  dataset's *train* split (``gluecell deform calibrate``); material unknown.
- ``deform_cal_material``: as ``deform_cal`` with the sole's material class given (a plant knows it from the
  style's bill of materials); read from the dataset's params by this evaluator, passed as the class name only.
- ``deform_surrogate``: as ``deform_cal`` with the learnt ring-solver surrogate (``gluecell deform train``), trained
  on the solver's outputs over the dataset's *train* split; it falls back to the solver outside its training
  distribution (``deform_surrogate_fallbacks`` counts those pairs). ``deform_surrogate_vs_solver_max_mm_worst``:
  largest distance between the surrogate's and the solver's bite line on any test pair.
- ``deform_surrogate_plain``: the same surrogate on the plain configuration (no references, no calibration, as
  ``deform``): the latency of the surrogate path without the references' registration.
- ``deform_taught``: teach once, corrected per pair by the model (:mod:`gluecell.deformation.taught`): the taught
  line of the style/size/side, registered onto the upper, moved along the side by the solver's mean depth change
  from the taught pair (scanned by the same cell) to this pair. No learnt parameter.
- ``deform_taught_material``: as ``deform_taught`` with the material classes of the pair and of the taught pair known
  and the depth calibration's per-material offsets (learnt on the *train* split) applied to both.
- ``rigid``: "rigid sole" baseline (no deformation model).
- ``teach``: "teach once": one bite line per style, size and side, marked on one real pair of the style (the taught
  pair, :func:`gluecell.cell.sim.references.taught_world_pair`, scanned by the dataset's cell like any other
  pair) and placed on each new upper by rigidly registering the taught pair's scan onto this pair's scan (what
  most lines do). ``teach_line_surface_p95_mm_median``: how far that placed line lies off this pair's true
  upper surface (p95 per pair, median over pairs).

Error of a pair: the project's one bite-line error (:func:`gluecell.core.geometry.bite_line_error`): distances
from every predicted point to the true polyline and from every true point to the predicted polyline (so a
missing stretch counts); per pair p95 and max, in mm. A refused prediction (an error
raised for bad input) is counted in ``*_refused`` and left out of the error figures; low confidence does not
stop the measurement here, it is counted in ``deform_cal_low_confidence`` (pairs the cell would hand to a human).
``deform_cal_within_2sigma``: share of the ``deform_cal`` line's points (all test pairs pooled) within twice their
predicted sigma of the true line (an honest sigma gives ~0.95); ``deform_within_2sigma`` the same for the
``deform`` row's own (uncalibrated) sigma. A style the library does not hold (world 2) takes the calibration's
``unreferenced`` part when it has one. ``deform_unref_*`` (:mod:`gluecell.cell.bench.deformation_sigma`): every
pair predicted as an unknown style (no references, the shipped calibration's unreferenced part).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gluecell.cell.bench.worlds import (
    is_test_world,
    material_class,
    shipped_calibration,
    style_references,
    taught_world2,
)
from gluecell.core.geometry import bite_line_error, polyline_distance

__all__ = ["bench", "polyline_distance", "pair_errors", "material_class", "style_references", "is_test_world",
           "shipped_calibration"]  # fmt: skip

#: Sigma p95 over which the cell sends a pair to a human (PredictConfig.max_sigma).
MAX_SIGMA = 1.0e-3
ROWS: tuple[str, ...] = (
    "deform",
    "deform_cal",
    "deform_cal_material",
    "deform_surrogate",
    "deform_surrogate_plain",
    "deform_taught",
    "deform_taught_material",
    "rigid",
    "teach",
)


def pair_errors(pred_line: np.ndarray, true_line: np.ndarray) -> tuple[float, float]:
    """(p95, max) in mm of the project's one bite-line error (:func:`gluecell.core.geometry.bite_line_error`)."""
    e = bite_line_error(pred_line, true_line)
    return e.p95_mm, e.max_mm


def _taught(cache: dict, item: Any) -> Any:
    """The taught pair as the cell would have it: one real pair of the style scanned by the cell's cameras
    (``cache["cameras"]``, the dataset's cell, when set), and the line the teacher marked on it."""
    from gluecell.cell.sim.references import TAUGHT_SEED, taught_world_pair
    from gluecell.cell.sim.world import scan_part
    from gluecell.core.errors import GlueCellError
    from gluecell.deformation.taught import TaughtPair
    from gluecell.perception.scan import scan_part_frames

    key = ("taught", item.style, float(item.size_eu), item.side)
    if key in cache:
        return cache[key]
    cache[key] = None
    if cache.get("world2_seed") is not None:
        cache[key] = taught_world2(item, int(cache["world2_seed"]))
        return cache[key]
    # The teacher's pair; if the cell cannot scan it (placed across an image border), the next.
    cams = cache.get("cameras")
    for seed in range(TAUGHT_SEED, TAUGHT_SEED + 3):
        try:
            pair = taught_world_pair(item, seed)
        except GlueCellError:  # a style this world cannot make a taught pair of: no teach-once row for it
            break
        rng = np.random.default_rng(seed)
        try:
            up = scan_part_frames(scan_part(pair, "upper", rng, cameras=cams).frames, "upper", item_id="taught")
            so = scan_part_frames(scan_part(pair, "sole", rng, cameras=cams).frames, "sole", item_id="taught")
        except GlueCellError:
            continue
        line = np.asarray(pair.bite_line)
        cache[key] = TaughtPair(upper=(up.points, up.normals), sole=(so.points, so.normals), bite_line=line)
        cache[key].cache["material_class"] = str(pair.params.material)
        break
    return cache[key]


def _with_material(taught: Any) -> Any:
    """The taught pair with its material class (the nominal pair's, as a plant knows its taught pair's sole)."""
    if taught is None:
        return None
    from dataclasses import replace

    return replace(taught, material=taught.cache.get("material_class"), cache=taught.cache.setdefault("m", {}))


def teach_transform(cache: dict, item: Any, upper_scan: Any) -> tuple[np.ndarray, Any] | None:
    """(T (4, 4) taking the taught pair's scan onto ``upper_scan``, the taught pair), or None when the taught
    pair could not be scanned: rigid ICP of the taught scan's bottom (what the camera above sees) onto this scan."""
    from gluecell.deformation.reference import rigid_icp, seen_sample

    taught = _taught(cache, item)
    if taught is None:
        return None
    pts, nrm = taught.upper
    T, _ = rigid_icp(seen_sample(pts, nrm), upper_scan.points, upper_scan.normals)
    return T, taught


def _teach_line(cache: dict, item: Any, upper_scan: Any) -> np.ndarray | None:
    """The line marked on the taught pair of the item's style/size/side, placed on this upper (None: no taught pair)."""
    from gluecell.deformation.reference import apply_T

    got = teach_transform(cache, item, upper_scan)
    return None if got is None else apply_T(got[0], np.asarray(got[1].bite_line))


def surface_p95_mm(line: np.ndarray, mesh: Any) -> float:
    """p95 (mm) of the distance of ``line`` (m, 3) from the surface of ``mesh`` (the pair's true upper)."""
    import trimesh

    _, d, _ = trimesh.proximity.closest_point(mesh, np.asarray(line))
    return float(np.percentile(d, 95) * 1e3)


def _summ(prefix: str, errs: list[tuple[float, float]], refused: int) -> dict[str, float]:
    out = {f"{prefix}_refused": float(refused)}
    if errs:
        p95 = np.array([e[0] for e in errs])
        mx = np.array([e[1] for e in errs])
        out.update(
            {
                f"{prefix}_bite_p95_mm_median": float(np.median(p95)),
                f"{prefix}_bite_p95_mm_worst": float(p95.max()),
                f"{prefix}_bite_max_mm_median": float(np.median(mx)),
                f"{prefix}_bite_max_mm_worst": float(mx.max()),
                f"{prefix}_pairs_meeting_goal": float(np.mean((p95 <= 0.5) & (mx <= 1.0))),
            }
        )
    return out


def run_pairs(
    dataset: Any, ids: list[str], calibration: Any = None, cache: dict | None = None, surrogate: Any = None
) -> dict[str, Any]:
    """Evaluate every row on ``ids``; returns per-row error lists, refusals and latencies."""
    from gluecell.core.errors import GlueCellError
    from gluecell.deformation.baselines import predict_rigid
    from gluecell.deformation.predict import predict_attach
    from gluecell.perception.scan import scan_part_frames

    rows = ROWS
    errs: dict[str, list] = {r: [] for r in rows}
    refused = dict.fromkeys(rows, 0)
    lat: dict[str, list[float]] = {
        k: [] for k in ("deform", "deform_cal", "deform_surrogate", "deform_surrogate_plain", "deform_taught")
    }
    ring_ms: dict[str, list[float]] = {
        "deform": [],
        "deform_cal": [],
        "deform_surrogate": [],
        "deform_surrogate_plain": [],
    }
    fallbacks = dict.fromkeys(("deform_surrogate", "deform_surrogate_plain"), 0)
    agree: list[float] = []
    lines: dict[str, Any] = {}
    extra: list[tuple[float, float]] = []
    low_conf = 0
    cover: list[tuple[int, int]] = []
    plain_cover: list[tuple[int, int]] = []
    sig95: list[float] = []
    cache = {} if cache is None else cache
    cache.setdefault("cameras", dataset_cell_cameras(dataset))
    if is_test_world(dataset):  # world 2: its taught pairs are world-2 pairs scanned by its cell
        cache.setdefault("world2_seed", int(dataset.info.get("seed", 0)))
    teach_surface: list[float] = []
    for sid in ids:
        inp = dataset.inputs(sid)
        truth = dataset.truth(sid)
        item = inp["workitem"]
        try:
            upper = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
            sole = scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid)
        except GlueCellError:
            for r in rows:
                refused[r] += 1
            continue
        ref, sref, pair_cal = style_references(cache, item, calibration)
        if pair_cal is None and getattr(calibration, "unreferenced", None) is not None:
            pair_cal = calibration  # an unknown style: the calibration's part learnt without references applies
        mat = material_class(truth["params"]["material"])
        cal = {
            "reference": ref,
            "sole_reference": sref,
            "calibration": pair_cal,
            "check_confidence": False,
            "style": item.style,
        }
        taught = {
            "reference": ref,
            "sole_reference": sref,
            "taught": _taught(cache, item),
            "check_confidence": False,
            "style": item.style,
        }
        runs = {
            "deform": (predict_attach, {"material": None, "check_confidence": False}),
            "deform_cal": (predict_attach, {"material": None, **cal}),
            "deform_cal_material": (predict_attach, {"material": mat, **cal}),
            "deform_surrogate": (predict_attach, {"material": None, "surrogate": surrogate, **cal}),
            "deform_surrogate_plain": (
                predict_attach,
                {"material": None, "surrogate": surrogate, "check_confidence": False},
            ),
            "deform_taught": (predict_attach, {"material": None, **taught}),
            "deform_taught_material": (
                predict_attach,
                {**taught, "material": mat, "calibration": pair_cal, "taught": _with_material(taught["taught"])},
            ),
            "rigid": (predict_rigid, {}),
        }
        if surrogate is None:
            runs.pop("deform_surrogate")
            runs.pop("deform_surrogate_plain")
        if taught["taught"] is None:
            for name in ("deform_taught", "deform_taught_material"):
                runs.pop(name)
                refused[name] += 1
        lines.clear()
        for name, (fn, kw) in runs.items():
            t0 = time.perf_counter()
            try:
                pred = fn(upper, sole, **kw)
            except GlueCellError:
                refused[name] += 1
                continue
            if name in lat:
                lat[name].append((time.perf_counter() - t0) * 1e3)
            if name in ring_ms:
                ring_ms[name].append(float(pred.diagnostics["ring_ms"]))
            lines[name] = pred.bite_line
            if name in fallbacks:
                fallbacks[name] += int(str(pred.diagnostics["surrogate"]).startswith("fallback"))
                if name == "deform_surrogate" and "deform_cal" in lines:  # same pair, same settings, FE solver
                    agree.append(float(polyline_distance(pred.bite_line, lines["deform_cal"]).max() * 1e3))
            if name == "deform":  # the predictor's own sigma (no calibration): what deform_cal's sigma replaces
                d0 = polyline_distance(pred.bite_line, truth["bite_line"])
                plain_cover.append((int(np.sum(d0 <= 2.0 * pred.bite_line_sigma)), len(d0)))
            if name == "deform_cal":
                extra.append(_region_errors(pred, truth))
                low_conf += int(np.percentile(pred.bite_line_sigma, 95) > MAX_SIGMA)
                d = polyline_distance(pred.bite_line, truth["bite_line"])
                cover.append((int(np.sum(d <= 2.0 * pred.bite_line_sigma)), len(d)))
                sig95.append(float(np.percentile(pred.bite_line_sigma, 95) * 1e3))
            errs[name].append(pair_errors(pred.bite_line, truth["bite_line"]))
        if cache.get("residual") is not None:  # the learnt residual (cell/bench/deformation_residual.py)
            from gluecell.cell.bench.deformation_residual import residual_pair

            residual_pair(cache.setdefault("residual_acc", {}), cache["residual"], (upper, sole), (ref, sref),
                          pair_cal, item.style, truth["bite_line"])  # fmt: skip
        if cache.get("shipped") is not None:  # an unknown style's honest sigma (cell/bench/deformation_sigma.py)
            from gluecell.cell.bench.deformation_sigma import unref_pair

            unref_pair(cache.setdefault("unref_acc", {}), cache["shipped"], (upper, sole), item.style,
                       truth["bite_line"])  # fmt: skip
        teach = _teach_line(cache, item, upper)
        if teach is None:
            refused["teach"] += 1
        else:
            errs["teach"].append(pair_errors(teach, truth["bite_line"]))
            teach_surface.append(surface_p95_mm(teach, truth["upper_mesh"]))
    return {
        "errors": errs,
        "refused": refused,
        "latency_ms": lat,
        "ring_ms": ring_ms,
        "regions": extra,
        "low_confidence": low_conf,
        "cover": cover,
        "plain_cover": plain_cover,
        "sigma_p95_mm": sig95,
        "fallbacks": fallbacks,
        "agreement_mm": agree,
        "teach_surface_mm": teach_surface,
    }


def dataset_cell_cameras(dataset: Any) -> Any:
    """The dataset's cell cameras (None for a dataset of world 1, whose cameras were redrawn per frame)."""
    from gluecell.cell.sim.references import dataset_cameras

    info = getattr(dataset, "info", None)
    if not isinstance(info, dict) or not str(info.get("generator", "")).startswith("gluecell-world/2"):
        return None
    return dataset_cameras(info)


def _region_errors(pred: Any, truth: dict) -> tuple[float, float]:
    """(p95 mm of the deformed sole's distance to the true deformed sole surface, share of upper-bond points
    that fall on the true bond faces)."""
    import trimesh

    dm = trimesh.Trimesh(truth["deformed_sole_vertices"], truth["sole_mesh"].faces, process=False)
    d = np.abs(trimesh.proximity.signed_distance(dm, pred.deformed_sole[:: max(1, len(pred.deformed_sole) // 2000)]))
    um = truth["upper_mesh"]
    _, _, fi = trimesh.proximity.closest_point(um, pred.upper_bond[:: max(1, len(pred.upper_bond) // 2000)])
    return float(np.percentile(d, 95) * 1e3), float(np.asarray(truth["upper_bond_faces"], dtype=bool)[fi].mean())


def bench(ctx: Any) -> dict[str, float]:
    """Bite-line error (p95/max mm per pair) of the predictor and the two baselines, and the solver latency."""
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.calibration_train import calibrate_on_dataset

    ds = open_dataset(ctx.dataset)
    ids = ds.ids() if is_test_world(ds) else ds.ids("test")  # a test-only world: every pair is held out
    train = ds.ids("train")[: 6 if ctx.quick else 24]
    if ctx.quick:
        ids = ids[:4]
    cache: dict = {}
    ref_for = lambda item: nominal_upper(cache, item)[:2]  # noqa: E731
    sref_for = lambda item: nominal_sole(cache, item)  # noqa: E731
    if train and not is_test_world(ds):
        cal, cal_metrics = calibrate_on_dataset(ds, train, reference_for=ref_for, sole_reference_for=sref_for)
        sur = _train_surrogate(ds, ctx.quick, ref_for, sref_for)
    else:  # a test-only world: nothing is fitted on it; the shipped calibration (learnt on world 1) is used
        cal, cal_metrics, sur = shipped_calibration(), {"pairs_used": 0.0}, None
    from gluecell.cell.bench.deformation_residual import load_model, residual_summary

    cache["residual"] = load_model()
    cache["shipped"] = shipped_calibration()
    res = run_pairs(ds, ids, calibration=cal, cache=cache, surrogate=sur)
    out: dict[str, float] = {"deform_pairs": float(len(ids)), "deform_calibration_pairs": cal_metrics["pairs_used"]}
    out["deform_calibration_offset_mm"] = cal.offset("unknown") * 1e3
    out["deform_styles_without_reference"] = float(len(cache.get("fallbacks", {})))
    for name in ROWS:
        out.update(_summ(name, res["errors"][name], res["refused"][name]))
    out["deform_cal_low_confidence"] = float(res["low_confidence"])
    if cache["residual"] is not None:
        out.update(residual_summary(cache.get("residual_acc", {}), MAX_SIGMA))
    from gluecell.cell.bench.deformation_sigma import unref_summary

    out.update(unref_summary(cache.get("unref_acc", {}), MAX_SIGMA))
    if res["teach_surface_mm"]:
        out["teach_line_surface_p95_mm_median"] = float(np.median(res["teach_surface_mm"]))
    if res["plain_cover"]:
        out["deform_within_2sigma"] = sum(c for c, _ in res["plain_cover"]) / sum(n for _, n in res["plain_cover"])
    if res["cover"]:
        # share of all predicted points whose distance to the true line is within 2 sigma (honest sigma: ~0.95)
        out["deform_cal_within_2sigma"] = sum(c for c, _ in res["cover"]) / sum(n for _, n in res["cover"])
        out["deform_cal_sigma_p95_mm_median"] = float(np.median(res["sigma_p95_mm"]))
    if res["regions"]:
        out["deform_cal_deformed_sole_p95_mm_median"] = float(np.median([r[0] for r in res["regions"]]))
        out["deform_cal_upper_bond_precision_median"] = float(np.median([r[1] for r in res["regions"]]))
    for name, vals in res["latency_ms"].items():
        if vals:
            out[f"{name}_latency_p50_ms"] = float(np.percentile(vals, 50))
            out[f"{name}_latency_p95_ms"] = float(np.percentile(vals, 95))
    for name, vals in res["ring_ms"].items():
        if vals:
            out[f"{name}_ring_stage_p95_ms"] = float(np.percentile(vals, 95))
    for name, n in res["fallbacks"].items():
        if sur is not None:  # no surrogate (a test-only world): no surrogate rows
            out[f"{name}_fallbacks"] = float(n)
    if res["agreement_mm"]:
        out["deform_surrogate_vs_solver_max_mm_worst"] = float(max(res["agreement_mm"]))
    for k in ("train_rmse_strain", "val_rmse_strain", "val_in_distribution", "train_pairs"):
        if sur is not None:
            out[f"deform_surrogate_{k}"] = float(sur.metrics.get(k, float("nan")))
    return out


def _train_surrogate(ds: Any, quick: bool, reference_for: Any, sole_reference_for: Any) -> Any:
    """The ring-solver surrogate trained on the dataset's train split (metrics on its val split)."""
    from gluecell.deformation.calibration_train import train_on_dataset
    from gluecell.deformation.surrogate import SurrogateConfig

    train, val = ds.ids("train"), ds.ids("val")
    cfg = SurrogateConfig(steps=200 if quick else 800)
    train, val = (train[:6], val[:2]) if quick else (train, val)
    return train_on_dataset(ds, train, val, cfg, reference_for, sole_reference_for=sole_reference_for)
