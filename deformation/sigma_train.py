"""Learning what a prediction *without the style references* costs, on world-1 pairs only (issue 14, item 4).

A style the cell's library does not hold (every style of the second world, a new model in a plant) is predicted
without its nominal upper and sole; the calibration learnt with them does not apply. This trains the
calibration's *unreferenced* part (:attr:`~.calibration.DepthCalibration.unreferenced`): the depth offset and a
:class:`~.sigma_terms.SigmaTerms` sigma, from generated world-1 pairs predicted without their references (the
learnt residual's feature caches, :func:`~.residual_train.extract_dataset`, variant "unknown": the physics line,
its own sigma, the per-station state and the true line). Each generated dataset is one cell (its cameras' errors
are drawn once per seed), so the offset is the median of the cells' offsets and the sigma's conformal factor is
fitted with each cell held out in turn: it covers a calibration used on a cell it was not learnt on.

``python -m gluecell.deformation.sigma_train --cache DIR [--cache DIR ...] --calibration IN.json --out OUT.json``
(each DIR a cache folder, optionally ``DIR:IDS_SPLIT_DATASET``; see ``--help``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .residual import PAIR_CHANNELS, STATION_CHANNELS
from .sigma_terms import fit_sigma_terms, term_matrix

__all__ = ["cache_samples", "cell_offset", "fit_unreferenced", "main"]

_NAMES = list(STATION_CHANNELS + PAIR_CHANNELS)
#: Every n-th line point enters the fit (points 0.8 mm apart are not independent; it keeps the fit fast).
THIN = 3


def _terms_from_features(s: dict[str, np.ndarray]) -> np.ndarray:
    F = np.asarray(s["features"], dtype=np.float64)

    def ch(name: str) -> np.ndarray:
        return F[_NAMES.index(name)]

    pair = {"pose_rms_mm": float(ch("pose rms mm")[0]), "side_seen_share": float(ch("side seen share")[0]),
            "abs_perimeter_strain_pct": abs(float(ch("perimeter strain %")[0])),
            "valid_sole": float(ch("valid sole")[0])}  # fmt: skip
    return term_matrix(pair, s["theta"], s["theta_st"], ch("side seen") > 0.5, ch("depth slope"))


def cache_samples(cache_dir: str | Path, ids: list[str] | None, variant: str, group: str) -> list[dict[str, Any]]:
    """The cached predictions of ``ids`` (all cached pairs when None) in ``variant``, one dict each: ``line``,
    ``u``, ``true_line``, ``own`` (the predictor's own sigma), ``X`` (term values), ``offset`` (the pair's median
    offset of the true line along the side, metres), ``group``."""
    out = []
    for p in sorted(Path(cache_dir).glob(f"*_{variant}.npz")):
        sid = p.name.split("_")[0]
        if ids is not None and sid not in ids:
            continue
        with np.load(p) as z:
            if "refused" in z.files:
                continue
            s = {k: z[k] for k in z.files}
        lab = np.asarray(s["labels"]).reshape(len(s["mask"]), -1)[np.asarray(s["mask"], dtype=bool)]
        if not len(lab):
            continue
        out.append({"id": sid, "group": group, "line": s["line"], "u": s["u"], "true_line": s["true_line"],
                    "own": np.asarray(s["sigma_phys"], dtype=np.float64), "X": _terms_from_features(s),
                    "offset": float(np.median(lab[:, 0]))})  # fmt: skip
    return out


def cell_offset(samples: list[dict[str, Any]]) -> float:
    """Median over the cells of each cell's median pair offset (metres, + = deeper): every cell weighs the same."""
    cells = sorted({s["group"] for s in samples})
    return float(np.median([np.median([s["offset"] for s in samples if s["group"] == g]) for g in cells]))


def _distances(s: dict[str, Any], offset: float) -> np.ndarray:
    from gluecell.core.geometry import polyline_distance

    return polyline_distance(s["line"] + offset * s["u"], s["true_line"])


def fit_unreferenced(samples: list[dict[str, Any]]) -> tuple[float, Any]:
    """(depth offset metres, :class:`~.sigma_terms.SigmaTerms`) of predictions without style references."""
    off = cell_offset(samples)
    cells = sorted({s["group"] for s in samples})
    rows = []
    for s in samples:
        others = [t for t in samples if t["group"] != s["group"]]
        off_out = cell_offset(others) if len(cells) > 1 else off
        k = slice(None, None, THIN)
        rows.append({"group": s["group"], "d": _distances(s, off)[k], "d_out": _distances(s, off_out)[k],
                     "own": s["own"][k], "X": s["X"][k]})  # fmt: skip
    terms = fit_sigma_terms(rows)
    return off, terms


def coverage(samples: list[dict[str, Any]], offset: float, terms: Any) -> dict[str, float]:
    """Share of points within 2 sigma, sigma p95 (median over pairs, mm) and pairs over 1 mm sigma p95."""
    cov = n = 0
    s95 = []
    for s in samples:
        d = _distances(s, offset)
        sig = terms.sigma(s["own"], s["X"])
        cov += int(np.sum(d <= 2 * sig))
        n += len(d)
        s95.append(float(np.percentile(sig, 95) * 1e3))
    return {"within_2sigma": cov / max(n, 1), "sigma_p95_mm_median": float(np.median(s95)) if s95 else float("nan"),
            "over_1mm": float(np.sum(np.array(s95) > 1.0)), "pairs": float(len(samples))}  # fmt: skip


def residual_cell_scale(model: Any, specs: list[str]) -> tuple[float, dict[str, float]]:
    """The learnt residual's conformal sigma factor that puts 95 % of the points of *every* held-out world-1 cell in
    ``specs`` (feature caches of cells it was not trained on) within 2 sigma: (largest factor, factor per cell).

    Its shipped factor was fitted on its own training seed's validation split (one cell); on other cells it covered
    86-95 %. Each cell's own offset is moved into its base line first (the residual sits on each cell's depth
    calibration, ``base_calibrated``); pairs outside its training distribution are left out (they fall back).
    """
    from .residual_train import cell_offsets, centre_cell_offset, conformal_scale, load_cache

    need: dict[str, float] = {}
    for spec in specs:
        cache, ids, group = _split_ids(spec)
        ids = ids if ids is not None else sorted({p.name.split("_")[0] for p in Path(cache).glob("*.npz")})
        samples = load_cache(cache, ids)
        samples = [s for s in centre_cell_offset(samples, cell_offsets(samples)) if model.check(s["features"]) is None]
        if samples:
            need[group] = conformal_scale(model, samples)
    if not need:
        raise ValueError("no in-distribution pairs in the residual's held-out cells")
    return max(need.values()), need


def _rescale_residual(cells: list[str], out: str) -> None:
    """Write the shipped residual with its sigma factor from :func:`residual_cell_scale`."""
    from dataclasses import replace

    import torch

    from .residual import DEFAULT_RESIDUAL, load_residual, save_residual

    model = load_residual(DEFAULT_RESIDUAL)
    config = dict(torch.load(DEFAULT_RESIDUAL, map_location="cpu", weights_only=True).get("config", {}))
    scale, need = residual_cell_scale(model, cells)
    metrics = {**model.metrics, "sigma_scale_own_val": model.sigma_scale,
               **{f"sigma_scale_cell_{g}": v for g, v in need.items()}}  # fmt: skip
    config["sigma_scale"] = f"largest of the held-out cells' conformal factors ({', '.join(cells)})"
    save_residual(out, replace(model, sigma_scale=scale, metrics=metrics), config)
    print(f"residual: sigma factor {model.sigma_scale:.3f} -> {scale:.3f} "
          f"({', '.join(f'{g} {v:.3f}' for g, v in need.items())}) -> {out}")


def _split_ids(spec: str) -> tuple[str, list[str] | None, str]:
    """``CACHE[:DATASET:SPLIT]`` -> (cache dir, ids of the dataset's split(s) or None, group name)."""
    parts = spec.split(":")
    cache = parts[0]
    if len(parts) == 3:  # SPLIT may join several with "+", e.g. train+val
        info = json.loads((Path(parts[1]) / "meta" / "info.json").read_text())
        ids = [i for split in parts[2].split("+") for i in info["splits"][split]]
        return cache, ids, f"seed{info.get('seed', parts[1])}"
    info_path = Path(cache).parent / "meta" / "info.json"  # a dataset's own residual-cache: named by its seed
    if info_path.is_file():
        return cache, None, f"seed{json.loads(info_path.read_text()).get('seed', cache)}"
    return cache, None, cache


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of ``gluecell deform train-sigma`` (and of this module's ``main``)."""
    ap.add_argument("--cache", action="append", required=True,
                    help="feature cache of world-1 pairs (residual-cache), as DIR or DIR:DATASET:SPLIT; one per cell")
    ap.add_argument("--calibration", required=True, help="calibration (with references) to add the part to")
    ap.add_argument("--out", required=True)
    ap.add_argument("--residual-cell", action="append", default=[],
                    help="feature cache of a world-1 cell the residual was not trained on (repeatable); with "
                         "--residual-out, refit the shipped residual's sigma factor on them")  # fmt: skip
    ap.add_argument("--residual-out", help="where to write the residual with its refitted sigma factor")


def main(argv: list[str] | None = None) -> int:
    """Fit the unreferenced part and write it into a copy of a calibration file."""
    ap = argparse.ArgumentParser(prog="gluecell deform train-sigma", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``train-sigma`` command line."""
    from dataclasses import replace

    from .calibration import DepthCalibration, load_calibration, save_calibration

    if args.residual_out and args.residual_cell:
        _rescale_residual(args.residual_cell, args.residual_out)
    samples = []
    for spec in args.cache:
        cache, ids, group = _split_ids(spec)
        samples += cache_samples(cache, ids, "unknown", group)
    off, terms = fit_unreferenced(samples)
    metrics = {f"train_{k}": v for k, v in coverage(samples, off, terms).items()}
    cal = load_calibration(args.calibration)
    unref = DepthCalibration(offsets={"unknown": off}, n_pairs=len(samples), sigma_terms=replace(
        terms, metrics={**terms.metrics, **metrics}), references="none")  # fmt: skip
    doc = json.loads(Path(args.calibration).read_text())
    config = dict(doc.get("config", {}))
    config["unreferenced"] = {"caches": args.cache, "variant": "unknown (predicted without the style references)",
                              "make": "gluecell datasets generate --n N --seed S --workers 2 --out DIR, then "
                                      "residual_train.extract_dataset (gluecell deform train-residual extracts the "
                                      "same cache)"}  # fmt: skip
    save_calibration(args.out, replace(cal, unreferenced=unref), config)
    print(f"unreferenced: {len(samples)} pairs, {int(terms.metrics['cells'])} cells, offset {off * 1e3:+.2f} mm, "
          f"sigma factor {terms.factor:.2f}, coef {dict(zip(terms.names, np.round(terms.coef, 3)))}; train "
          f"within 2 sigma {metrics['train_within_2sigma']:.1%} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
