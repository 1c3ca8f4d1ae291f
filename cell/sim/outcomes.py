"""Spray outcomes simulated in the world: training labels and held-out evaluation of the learned correction.

Truth side (the simulated cell may import the world): for each pair of a dataset it samples an ideal scan
of the true upper, plans the upper with the **true** bite line given as the planner's bite-line input,
sprays the plan with the world's spray simulator and measures, for every waypoint of the edge pass, where
the glue's top edge really landed (surface distance from the true bite line, face centroids, as the
world's ``score_upper`` measures it). The label is the shift along the pass's inward tangent that would
have put that edge ``margin_mm`` below the true line: ``label = margin - edge`` (mm; negative = move
towards the line).

Why the true bite line: the correction is meant to learn the spray mismatch (the real fan, mist, valve
delays, grazing spray) between the planner's deposition model and the real gun, not the error of the
bite-line prediction (deformation's job, with its own error budget). Planning on a predicted line
would mix both into the labels and teach the network to guess the predictor's bias.

Scan: points sampled from the true mesh with 0.2 mm noise (FACTS: D405 noise 0.1-0.4 mm at 100-200 mm),
as in ``cell/bench_pathplan.py``. Each pair is sprayed ``runs`` times with independent hidden run draws
(flow, fan angles, misalignment, delays, path error); labels are the mean over runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import save_npz
from gluecell.core.fileio import atomic_write_json
from gluecell.pathplan.correction_train import OUTCOMES_FORMAT

log = logging.getLogger(__name__)

__all__ = ["OUTCOMES_FORMAT", "CollectOptions", "sample_upper_scan", "plan_upper", "face_geometry",
           "edge_positions", "pair_labels", "collect", "evaluate", "summarise"]  # fmt: skip

#: Noise of the ideal scan (m), FACTS.md D405 0.1-0.4 mm at 100-200 mm.
SCAN_NOISE_M = 0.2e-3
#: Faces within this arc length (m) along the bite line of a waypoint count for its glue edge.
EDGE_WINDOW_M = 2.0e-3
#: Only faces within this surface distance (m) of the line are searched for the glue edge.
EDGE_SEARCH_M = 10e-3


@dataclass(frozen=True)
class CollectOptions:
    """Collection settings: split(s) (comma-separated), pair limit, spray runs per pair, seed, label margin
    (mm), scan size."""

    split: str = "train"
    n: int | None = None
    runs: int = 2
    seed: int = 0
    margin_mm: float = 1.0
    scan_points: int = 60_000


def sample_upper_scan(mesh: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, 3) noisy points and (k, 3) outward normals sampled from the true upper ``mesh`` (base_link)."""
    import trimesh

    rng = np.random.default_rng(seed)
    pts, fi = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return pts + rng.normal(0.0, SCAN_NOISE_M, pts.shape), np.asarray(mesh.face_normals[fi])


def plan_upper(truth: Any, seed: int, cfg: Any = None, scan_points: int = 60_000) -> Any:
    """Plan the upper of ``truth`` (WorldPair or dataset truth dict) with its true bite line: a PartPlan."""
    from gluecell.pathplan.pipeline import PathplanConfig, plan_part

    mesh, bite = _get(truth, "upper_mesh"), _get(truth, "bite_line")
    pts, nrm = sample_upper_scan(mesh, scan_points, seed)
    return plan_part("upper", pts, cfg or PathplanConfig(), bite_line=bite, normals=nrm, robot=True)


def _get(truth: Any, key: str) -> Any:
    return truth[key] if isinstance(truth, dict) else getattr(truth, key)


@dataclass(frozen=True)
class FaceGeometry:
    """Per face of the true upper: signed surface distance (m, > 0 on the bond side) from the true bite
    line, arc position (m) of its nearest bite-line point; the line's resampled points and perimeter (m)."""

    signed: np.ndarray
    arc: np.ndarray
    line: np.ndarray
    line_arc: np.ndarray
    perimeter: float


def face_geometry(truth: Any) -> FaceGeometry:
    """Face distances from the true bite line, measured as the world's scorer measures them."""
    from scipy.spatial import cKDTree

    from gluecell.datasets.world.spray_score import face_line_distance
    from gluecell.pathplan.geom import resample_polyline

    mesh, bite = _get(truth, "upper_mesh"), np.asarray(_get(truth, "bite_line"), dtype=np.float64)
    v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
    bond = np.asarray(_get(truth, "upper_bond_faces"), dtype=bool)
    d = face_line_distance(v, f, bite)
    line = resample_polyline(bite, 0.5e-3)
    seg = np.linalg.norm(np.roll(line, -1, axis=0) - line, axis=1)
    line_arc = np.r_[0.0, np.cumsum(seg[:-1])]
    _, j = cKDTree(line).query(v[f].mean(axis=1))
    return FaceGeometry(np.where(bond, d, -d), line_arc[j], line, line_arc, float(seg.sum()))


def edge_positions(geo: FaceGeometry, contact: np.ndarray, film: np.ndarray, visible_m: float) -> np.ndarray:
    """True glue top edge (k,) metres near each waypoint: the smallest signed distance of a visible face
    within ``EDGE_WINDOW_M`` of the waypoint's position along the line (negative = glue above the line);
    NaN where no visible face lies within ``EDGE_SEARCH_M``."""
    from scipy.spatial import cKDTree

    _, j = cKDTree(geo.line).query(np.asarray(contact, dtype=np.float64))
    s = geo.line_arc[j]
    sel = np.flatnonzero((np.abs(geo.signed) < EDGE_SEARCH_M) & (film >= visible_m))
    out = np.full(len(s), np.nan)
    if not len(sel):
        return out
    order = np.argsort(geo.arc[sel])
    fa, fd = geo.arc[sel][order], geo.signed[sel][order]
    for k, sk in enumerate(s):
        lo, hi = sk - EDGE_WINDOW_M, sk + EDGE_WINDOW_M
        m = (fa >= lo) & (fa <= hi)
        if lo < 0:
            m |= fa >= lo + geo.perimeter
        if hi > geo.perimeter:
            m |= fa <= hi - geo.perimeter
        if np.any(m):
            out[k] = fd[m].min()
    return out


def pair_labels(truth: Any, pp: Any, runs: int, seed: int, margin_mm: float) -> dict[str, np.ndarray]:
    """Features, per-run glue edges and labels of the edge pass of the PartPlan ``pp`` on ``truth``.

    Returns:
        ``features`` (k, F), ``edge_mm`` (runs, k), ``label_mm`` (k,) (NaN where no run saw an edge),
        ``indices`` (k,), ``scores`` (runs, 4): glue_above_max_mm, glue_above_p99_mm, band_coverage_2mm, coverage.
    """
    from gluecell.datasets.world.spray import score_upper, simulate_spray
    from gluecell.pathplan.correction import edge_features, edge_pass_indices

    idx = edge_pass_indices(pp.toolpath)
    feats = edge_features(pp.toolpath, pp.region, idx, pp.path.t)
    geo = face_geometry(truth)
    edges, scores = [], []
    for r in range(runs):
        out = simulate_spray(_get(truth, "upper_mesh"), pp.path, seed * 1000 + r, part="upper")
        edges.append(edge_positions(geo, pp.toolpath.contact[idx], out.film_m, out.visible_m) * 1e3)
        sc = score_upper(truth, out)
        scores.append([sc["glue_above_max_mm"], sc["glue_above_p99_mm"], sc["band_coverage_2mm"], sc["coverage"]])
    e = np.asarray(edges)
    seen = np.isfinite(e)
    mean_edge = np.where(seen.any(axis=0), np.where(seen, e, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1), np.nan)
    return {"features": feats, "edge_mm": e, "label_mm": margin_mm - mean_edge, "indices": idx,
            "scores": np.asarray(scores)}  # fmt: skip


def _progress(total: int, label: str) -> tuple[Any, Callable[[], None]]:
    from rich.progress import Progress

    prog = Progress(transient=True)
    task = prog.add_task(label, total=total)
    return prog, lambda: prog.advance(task)


def collect(dataset: str | Path, out: str | Path, opts: CollectOptions) -> dict[str, Any]:
    """Plan, spray and label every pair of ``opts.split``; writes ``out/<id>.npz`` and ``out/meta.json``.

    Resumable: pairs whose npz exists are skipped. Pairs the planner refuses are logged and counted.
    """
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import open_dataset
    from gluecell.pathplan.correction import planner_fingerprint

    ds = open_dataset(dataset)
    ids = [i for sp in opts.split.split(",") for i in ds.ids(sp.strip())]
    ids = ids[: opts.n] if opts.n else ids
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done, refused = [], {}
    prog, step = _progress(len(ids), f"collect {opts.split}")
    with prog:
        for k, sid in enumerate(ids):
            f = out / f"{sid}.npz"
            if not f.exists():
                truth = ds.truth(sid)
                try:
                    pp = plan_upper(truth, opts.seed + 17 * k, scan_points=opts.scan_points)
                except GlueCellError as exc:
                    log.warning("correction collect: pair %s refused by the planner: %s", sid, exc)
                    refused[sid] = str(exc)
                    step()
                    continue
                save_npz(f, pair_labels(truth, pp, opts.runs, opts.seed + 17 * k, opts.margin_mm))
            done.append(sid)
            step()
    meta = {"format": OUTCOMES_FORMAT, "dataset": str(Path(dataset).resolve()), "split": opts.split,
            "ids": done, "refused": refused, "runs": opts.runs, "seed": opts.seed, "margin_mm": opts.margin_mm,
            "scan_points": opts.scan_points, "scan_noise_m": SCAN_NOISE_M, "planner_fingerprint": planner_fingerprint(),
            "bite_line": "true (see module doc)"}  # fmt: skip
    atomic_write_json(out / "meta.json", meta)
    return meta


def _score_pair(truth: Any, sp: Any, seed: int) -> dict[str, float]:
    from gluecell.datasets.world.spray import score_upper, simulate_spray

    return score_upper(truth, simulate_spray(_get(truth, "upper_mesh"), sp, seed, part="upper"))


def evaluate(dataset: str | Path, model_path: str | Path, *, split: str = "test", n: int | None = None,
             seed: int = 1, runs: int = 1, write: bool = False, max_offset_mm: float = 1.5,
             constant: bool = False) -> dict[str, Any]:  # fmt: skip
    """Held-out comparison on ``split``: the uncorrected upper plan vs the corrected one, sprayed with the
    same hidden run draws; with ``write`` the result and ``beats_baseline`` go into the checkpoint; ``constant``
    replaces the network by its training constant (ablation, never written)."""
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import open_dataset
    from gluecell.pathplan.correction import apply_correction, load_model
    from gluecell.pathplan.correction_train import record_heldout

    model = load_model(model_path, require_beats_baseline=False)
    if constant:  # ablation: one fixed shift instead of the network (never written into the checkpoint)
        from gluecell.pathplan.correction_train import constant_model

        model, write = constant_model(model), False
    ds = open_dataset(dataset)
    ids = ds.ids(split)[:n] if n else ds.ids(split)
    rows: list[dict[str, Any]] = []
    prog, step = _progress(len(ids), f"evaluate {split}")
    with prog:
        for k, sid in enumerate(ids):
            truth = ds.truth(sid)
            try:
                pp = plan_upper(truth, seed + 31 * k)
            except GlueCellError as exc:
                log.warning("correction eval: pair %s refused by the planner: %s", sid, exc)
                step()
                continue
            sp, res = apply_correction(pp, model, max_offset_mm=max_offset_mm)
            for r in range(runs):
                s = seed * 7919 + 31 * k + r
                rows.append({"id": sid, "run": r, "applied": res.applied, "reason": res.reason,
                             "offset_mean_mm": float(res.diagnostics.get("offset_mean_mm", 0.0)),
                             "base": _score_pair(truth, pp.path, s), "corr": _score_pair(truth, sp, s)})  # fmt: skip
            step()
    summary = summarise(rows)
    summary.update(dataset=str(Path(dataset).resolve()), split=split, seed=seed, runs=runs, max_offset_mm=max_offset_mm,
                   ablation="constant" if constant else "")
    if write:
        record_heldout(model_path, summary)
    return summary


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled held-out numbers with and without the correction, and whether it beats the baseline."""
    from gluecell.pathplan.correction_train import beats_baseline

    def agg(key: str) -> dict[str, float]:
        if not rows:
            return {}
        above = np.array([r[key]["glue_above_max_mm"] for r in rows])
        p99 = np.array([r[key]["glue_above_p99_mm"] for r in rows])
        return {"glue_above_max_mm": float(above.max()), "glue_above_p99_mm": float(np.percentile(p99, 99)),
                "glue_above_mean_mm": float(above.mean()),
                "pairs_with_glue_above": float(np.mean(above > 0)),
                "band_coverage_2mm_mean": float(np.mean([r[key]["band_coverage_2mm"] for r in rows])),
                "band_coverage_5mm_mean": float(np.mean([r[key]["band_coverage_5mm"] for r in rows])),
                "coverage_mean": float(np.mean([r[key]["coverage"] for r in rows]))}  # fmt: skip

    base, corr = agg("base"), agg("corr")
    ok, why = beats_baseline(base, corr) if rows else (False, "no held-out pairs")
    metrics = ("glue_above_max_mm", "band_coverage_2mm", "coverage")
    return {"n_runs": len(rows), "n_pairs": len({r["id"] for r in rows}),
            "applied_fraction": float(np.mean([r["applied"] for r in rows])) if rows else 0.0,
            "not_applied": sorted({r["reason"] for r in rows if not r["applied"]}),
            "offset_mean_mm": float(np.mean([r.get("offset_mean_mm", 0.0) for r in rows])) if rows else 0.0,
            "baseline": base, "corrected": corr, "beats_baseline": ok, "rule": why,
            "per_pair": [{"id": r["id"], "run": r["run"], "applied": r["applied"],
                          **{f"{k}_{m}": float(r[k][m]) for k in ("base", "corr") for m in metrics}}
                         for r in rows]}  # fmt: skip
