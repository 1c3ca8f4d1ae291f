"""Error budget of the bite line: swap one input at a time for the world's truth (issue 14, item 1).

Every row runs the same predictor (:func:`gluecell.deformation.predict.predict_attach`, the physics with the
style's CAD references where the style is known, no learnt calibration, material unknown) on the same test
pairs; each row replaces one input by what the world's truth files hold, so the row's drop from ``budget_scan``
is what that input costs:

- ``budget_scan``: as delivered, the cell's scans (the baseline of the budget).
- ``budget_cad_reference``: for a style outside the cell's style library (world 2's), the scans with the style's
  own CAD nominal upper and sole as references (:func:`gluecell.cell.sim.references.nominal_world2`): not truth,
  but what a plant adding the style would load; shows what the missing reference costs.
- ``budget_true_cam_poses``: the depth frames fused with the true camera poses (no hand-eye error; the
  cameras' depth scale/bias errors stay).
- ``budget_true_surface_seen``: every scan point moved onto the true surface (closest point, true face normal):
  no depth noise, no pose error, no fusion error, but only what the cameras saw.
- ``budget_true_surface_full``: the whole true upper and sole (points sampled over the true meshes, true
  normals; no reference needed, so none is registered): no sensing and no registration error at all.
- ``budget_true_material``: the sole's material class given.
- ``budget_true_hidden``: the sole's true modulus and Poisson ratio and the upper's true thickness and stack
  modulus (the hidden parameters the model has inputs for).
- ``budget_all_true``: the full true surfaces and the true hidden parameters together: the floor of the
  physics model itself (what neither sensing nor parameters can remove).

The press (:mod:`gluecell.cell.sim.press`): where it puts the sole and at what pressure are drawn per
pair; no scan taken before the press can know them.

- ``budget_true_attach_pose``: the scans with the true attach pose (``predict_attach(attach_pose=...)``) instead
  of the outline ICP's.
- ``budget_all_true_attach_pose``: ``budget_all_true`` with the true attach pose as well.
- ``budget_all_true_exact_placement``: the ``budget_all_true`` prediction scored against the truth re-simulated with
  the sole placed exactly (no shift, no turn): the drop from ``budget_all_true`` is the placement's share of the
  model floor.
- ``budget_all_true_exact_press``: the same against the truth re-simulated with the sole placed exactly and the
  pressure at the middle of the world's range: the floor left once the press's random terms are gone.
- ``budget_scan_exact_press``: the ``budget_scan`` prediction against that same exact-press truth.
- ``budget_oracle_placement`` / ``budget_oracle_press``: no prediction: the re-simulated line of the exactly placed
  sole (and at mid pressure) scored against the true line. An oracle that knows every input but the press's random
  draw predicts no better than this: the part of the error no scan taken before the press can remove.
- ``budget_oracle_mean_press``: likewise, the station-by-station mean line of 16 presses drawn from the world's
  own placement and pressure distributions (a better oracle than the one exact press, to first order the best).

Error: the project's one bite-line error (:func:`gluecell.core.geometry.bite_line_error`), per pair p95 and max in
mm, median and worst over pairs; ``<row>_within_2sigma``: the share of the row's predicted points (all pairs
pooled) whose distance to the row's true line is within twice their predicted sigma (as ``deform_cal_within_2sigma``
of the deformation section; an honest sigma gives ~0.95); ``<row>_true_within_2sigma``: the same seen from the true
line (each true point's distance to the predicted line against twice the sigma of the nearest predicted point).
The truth is read here, by the evaluator; the predictor gets it only as one of its ordinary inputs.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

__all__ = ["bench", "budget_rows", "BUDGET_ROWS"]

BUDGET_ROWS: tuple[str, ...] = (
    "budget_scan",
    "budget_cad_reference",
    "budget_true_cam_poses",
    "budget_true_surface_seen",
    "budget_true_surface_full",
    "budget_true_material",
    "budget_true_hidden",
    "budget_all_true",
    "budget_true_attach_pose",
    "budget_all_true_attach_pose",
    "budget_all_true_exact_placement",
    "budget_all_true_exact_press",
    "budget_scan_exact_press",
    "budget_oracle_placement",
    "budget_oracle_press",
    "budget_oracle_mean_press",
)
#: Rows that score another row's prediction against a re-simulated truth: row -> (predicted row, truth line).
RESCORED: dict[str, tuple[str, str]] = {
    "budget_all_true_exact_placement": ("budget_all_true", "line_no_placement"),
    "budget_all_true_exact_press": ("budget_all_true", "line_no_press_noise"),
    "budget_scan_exact_press": ("budget_scan", "line_no_press_noise"),
}
#: Rows without a prediction: the re-simulated line itself scored against the true line (row -> truth line).
ORACLES: dict[str, str] = {"budget_oracle_placement": "line_no_placement", "budget_oracle_press": "line_no_press_noise",
                           "budget_oracle_mean_press": "line_mean_press"}  # fmt: skip
#: Points sampled from each true mesh for the ``*_full`` rows.
N_FULL = 40_000


def _snap(scan: Any, mesh: Any) -> Any:
    """``scan`` with every point moved onto ``mesh`` (closest point) and the true face normal."""
    import trimesh

    pts, _, fi = trimesh.proximity.closest_point(mesh, scan.points)
    return replace(scan, points=np.asarray(pts), normals=np.asarray(mesh.face_normals[fi]))


def _full(scan: Any, mesh: Any) -> Any:
    """A scan made of ``N_FULL`` points over the whole true ``mesh`` with its face normals."""
    pts, fi = mesh.sample(N_FULL, return_index=True, seed=3)
    return replace(scan, points=np.asarray(pts), normals=np.asarray(mesh.face_normals[fi]))


def _true_pose_frames(frames: list, poses: np.ndarray) -> list:
    """The frames with their believed camera pose replaced by the true one."""
    poses = np.asarray(poses)
    if poses.ndim == 2:
        poses = poses[None]
    return [replace(f, T_base_cam=np.asarray(T, dtype=float)) for f, T in zip(frames, poses, strict=False)]


def _hidden(params: dict) -> tuple[Any, Any] | None:
    """(Material, UpperContact) with the pair's true hidden values (world 1's flat keys or world 2's ``sole``/
    ``upper`` tables), or None when the truth does not hold them."""
    from gluecell.core.errors import GlueCellError
    from gluecell.deformation.material import UpperContact, get_material

    sole, upper = params.get("sole") or {}, params.get("upper") or {}
    E = params.get("youngs_modulus_pa", sole.get("E"))
    nu = params.get("poisson_ratio", sole.get("nu"))
    try:
        mat = replace(get_material(_material_class(params) or "unknown"), E=float(E), nu=float(nu))
    except (TypeError, ValueError, GlueCellError):
        return None
    contact = UpperContact()
    t_u = params.get("upper_thickness_m", upper.get("leather"))
    if t_u is not None:
        contact = replace(contact, t_u=float(t_u))
    if "upper_stack_modulus_pa" in params:
        contact = replace(contact, E_u=float(params["upper_stack_modulus_pa"]))
    return mat, contact


def _material_class(params: dict) -> str | None:
    from gluecell.cell.bench.deformation import material_class

    return material_class(params.get("material", ""))


def _references(cache: dict, item: Any) -> dict[str, Any]:
    """The style's CAD references, or none (with the reason) for a style the library does not hold."""
    from gluecell.cell.sim.references import nominal_sole, nominal_upper

    try:
        return {"reference": nominal_upper(cache, item)[:2], "sole_reference": nominal_sole(cache, item)}
    except Exception as exc:  # an unknown style: no reference (the world's own error type varies)
        cache.setdefault("reasons", set()).add(f"{item.style}: no style reference ({type(exc).__name__})")
        return {}


def _variants(sid: str, dataset: Any, cache: dict) -> tuple[dict[str, tuple[Any, Any, dict[str, Any]]], dict]:
    """(row -> (upper scan, sole scan, predict_attach kwargs), {name: true line}) of one pair (``bite_line``, and
    the press's re-simulated lines where the world can be re-simulated); rows whose truth is missing are left
    out."""
    from gluecell.cell.sim.press import press_truth
    from gluecell.perception.scan import scan_part_frames

    inp, truth = dataset.inputs(sid), dataset.truth(sid)
    item = inp["workitem"]
    up = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
    so = scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid)
    base: dict[str, Any] = {"check_confidence": False, "style": item.style, **_references(cache, item)}
    out: dict[str, tuple[Any, Any, dict[str, Any]]] = {"budget_scan": (up, so, base)}
    if "reference" not in base:  # a style outside the cell's library: with its own CAD nominal (world 2's)
        from gluecell.cell.sim.references import nominal_world2

        cad = nominal_world2(cache, item)
        if cad is not None:
            out["budget_cad_reference"] = (up, so, {**base, "reference": cad["upper"], "sole_reference": cad["sole"]})
    if "T_base_cam_true_upper" in truth and "T_base_cam_true_sole" in truth:
        fu = _true_pose_frames(inp["frames"]["upper"], truth["T_base_cam_true_upper"])
        fs = _true_pose_frames(inp["frames"]["sole"], truth["T_base_cam_true_sole"])
        out["budget_true_cam_poses"] = (scan_part_frames(fu, "upper", item_id=sid),
                                        scan_part_frames(fs, "sole", item_id=sid), base)  # fmt: skip
    um, sm = truth["upper_mesh"], truth["sole_mesh"]
    out["budget_true_surface_seen"] = (_snap(up, um), _snap(so, sm), base)
    bare = {"check_confidence": False, "style": item.style}
    full = (_full(up, um), _full(so, sm))
    out["budget_true_surface_full"] = (*full, bare)
    cls = _material_class(truth["params"])
    if cls is not None:
        out["budget_true_material"] = (up, so, {**base, "material": cls})
    hidden = _hidden(truth["params"])
    all_true = {**bare, "material": hidden[0], "contact": hidden[1]} if hidden is not None else None
    if all_true is not None:
        out["budget_true_hidden"] = (up, so, {**base, "material": hidden[0], "contact": hidden[1]})
        out["budget_all_true"] = (*full, all_true)
    lines = {"bite_line": truth["bite_line"]}
    press = press_truth(truth, sid, getattr(dataset, "info", {}))
    if press is None:
        cache.setdefault("press_missing", []).append(sid)  # the press could not be re-simulated to the stored truth
    else:
        lines.update(line_no_placement=press.line_no_placement, line_no_press_noise=press.line_no_press_noise,
                     line_mean_press=press.line_mean_press)  # fmt: skip
        out["budget_true_attach_pose"] = (up, so, {**base, "attach_pose": press.T_attach})
        if all_true is not None:
            out["budget_all_true_attach_pose"] = (*full, {**all_true, "attach_pose": press.T_attach})
    return out, lines


#: One pair's score of one row: (p95 mm, max mm, predicted points within 2 sigma of the true line, predicted
#: points, true points within 2 sigma (of the nearest predicted point) of the predicted line, true points).
Score = tuple[float, float, int, int, int, int]
_REFUSED: Score = (float("nan"), float("nan"), 0, 0, 0, 0)


def _score(pred: Any, line: np.ndarray) -> Score:
    from gluecell.core.geometry import bite_line_error

    e = bite_line_error(pred.bite_line, line)
    from scipy.spatial import cKDTree

    sigma = np.asarray(pred.bite_line_sigma)
    within = int(np.sum(e.to_true <= 2.0 * sigma))
    near = cKDTree(pred.bite_line).query(np.asarray(line))[1]
    within_true = int(np.sum(e.to_pred <= 2.0 * sigma[near]))
    return e.p95_mm, e.max_mm, within, len(e.to_true), within_true, len(e.to_pred)


def budget_rows(dataset: Any, ids: list[str], cache: dict | None = None) -> dict[str, list[Score]]:
    """Row -> per-pair :data:`Score` on ``ids``; a refused row of a pair is recorded as ``(nan, nan, 0, 0, 0, 0)``."""
    from gluecell.core.errors import GlueCellError
    from gluecell.core.geometry import bite_line_error
    from gluecell.deformation.predict import predict_attach

    cache = {} if cache is None else cache
    errs: dict[str, list[Score]] = {r: [] for r in BUDGET_ROWS}
    for sid in _progress(ids):
        try:
            variants, lines = _variants(sid, dataset, cache)
        except GlueCellError:
            for r in BUDGET_ROWS:
                errs[r].append(_REFUSED)
            continue
        preds: dict[str, Any] = {}
        for row in BUDGET_ROWS:
            if row in ORACLES:
                if ORACLES[row] in lines:
                    e = bite_line_error(lines[ORACLES[row]], lines["bite_line"])
                    errs[row].append((e.p95_mm, e.max_mm, 0, 0, 0, 0))
                continue
            if row in RESCORED:
                src, name = RESCORED[row]
                if name in lines and src in variants:
                    errs[row].append(_score(preds[src], lines[name]) if src in preds else _REFUSED)
                continue
            if row not in variants:
                continue
            up, so, kw = variants[row]
            try:
                preds[row] = predict_attach(up, so, **kw)
            except GlueCellError as exc:
                cache.setdefault("refusals", []).append(f"{sid} {row}: {exc}")
                errs[row].append(_REFUSED)
                continue
            errs[row].append(_score(preds[row], lines["bite_line"]))
    return errs


def _progress(ids: list[str]) -> Any:
    """``ids`` with a progress bar on a terminal (stderr)."""
    import sys

    if not sys.stderr.isatty():
        return ids
    from rich.progress import track

    return track(ids, description="error budget", transient=True)


def bench(ctx: Any) -> dict[str, float]:
    """The error budget on every pair of the bench world (it fits nothing, so no pair is spent on training;
    the test pairs first, 4 pairs with ``--quick``)."""
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(ctx.dataset)
    ids = ds.ids("test") + ds.ids("val") + ds.ids("train")
    ids = ids[: 4 if ctx.quick else None]
    cache: dict = {}
    errs = budget_rows(ds, ids, cache)
    out: dict[str, float] = {"budget_pairs": float(len(ids)),
                             "budget_style_references_missing": float(len(cache.get("reasons", ()))),
                             "budget_press_not_resimulated": float(len(cache.get("press_missing", ())))}  # fmt: skip
    for why in cache.get("refusals", []):  # which pair and row was refused, and why
        logging.getLogger(__name__).warning("budget: refused: %s", why)
    for row, vals in errs.items():
        if not vals:
            continue
        a = np.asarray(vals, dtype=float)
        ok = ~np.isnan(a[:, 0])
        out[f"{row}_refused"] = float((~ok).sum())
        if ok.any():
            out[f"{row}_p95_mm_median"] = float(np.median(a[ok, 0]))
            out[f"{row}_p95_mm_worst"] = float(a[ok, 0].max())
            out[f"{row}_max_mm_median"] = float(np.median(a[ok, 1]))
            out[f"{row}_max_mm_worst"] = float(a[ok, 1].max())
            if a[ok, 3].sum() > 0:  # rows with a predicted sigma
                out[f"{row}_within_2sigma"] = float(a[ok, 2].sum() / a[ok, 3].sum())
                out[f"{row}_true_within_2sigma"] = float(a[ok, 4].sum() / max(a[ok, 5].sum(), 1.0))
    return out


def budget_table(section: dict[str, float]) -> str:
    """The budget section's figures (``bench(ctx)``'s dict, or the ``budget`` table of a bench JSON) as a Markdown
    table: one line per row with its p95 and max (median and worst over pairs, mm), within-2-sigma share and
    refusals."""
    lines = ["| row | p95 median | p95 worst | max median | max worst | within 2σ | true within 2σ | refused |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in BUDGET_ROWS:
        if f"{row}_refused" not in section:
            continue

        def f(key: str, fmt: str = "{:.2f}", row: str = row) -> str:
            v = section.get(f"{row}_{key}")
            return "-" if v is None else fmt.format(v)

        lines.append(f"| {row} | {f('p95_mm_median')} | {f('p95_mm_worst')} | {f('max_mm_median')} | "
                     f"{f('max_mm_worst')} | {f('within_2sigma', '{:.0%}')} | {f('true_within_2sigma', '{:.0%}')} | "
                     f"{f('refused', '{:.0f}')} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":  # python -m gluecell.cell.bench.budget BENCH.json: the budget table in Markdown
    import json
    import sys

    doc = json.loads(open(sys.argv[1], encoding="utf-8").read())
    print(budget_table(doc.get("sections", doc).get("budget", doc)))
