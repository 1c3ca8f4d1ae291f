"""``gluecell predict`` (attach from two scans), ``gluecell junction`` (bite line of a finished shoe) and
``gluecell deform calibrate`` (learn the bite-depth offset per sole material on a dataset's training split).

Training (the calibration, the surrogate) lives in :mod:`gluecell.deformation.calibration_train`; this module
only parses, calls and prints. ``predict`` writes ``gluecell.attach/1`` JSON: the bite line in the same form as
in ``gluecell.plan/1`` (base_link, metres, closed ordered polyline, ~1 mm spacing) plus its per-point sigma.
Bad input or low confidence: the reason on stderr, a non-zero exit code and no file.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = [
    "register",
    "ATTACH_FORMAT",
    "attach_to_json",
    "load_scan_ply",
]

ATTACH_FORMAT = "gluecell.attach/1"


def load_scan_ply(path: str | Path, part: str, *, clean: bool = True) -> Any:
    """Read a PLY point cloud as a :class:`~gluecell.core.types.PartScan`: the support it stands on, outliers and
    stray pieces removed (:func:`gluecell.deformation.cloud_clean.clean_cloud`; ``clean=False``: read as it is,
    for commands that use the support themselves), normals estimated when absent."""
    from gluecell.core.ply import read_ply
    from gluecell.deformation.cloud_clean import clean_cloud
    from gluecell.deformation.inputs import scan_from_arrays

    cloud = read_ply(path)
    if not clean:
        return scan_from_arrays(part, cloud.points, cloud.normals, item_id=Path(path).stem)
    pts, nrm, removed = clean_cloud(cloud.points, cloud.normals)
    scan = scan_from_arrays(part, pts, nrm, item_id=Path(path).stem)
    scan.diagnostics["cloud_removed"] = removed
    return scan


def load_reference(path: str | Path | None, part: str) -> tuple[Any, Any] | None:
    """(points, normals) of a style's nominal part from PLY (normals estimated when absent), or None."""
    if path is None:
        return None
    r = load_scan_ply(path, part)
    return r.points, r.normals


def attach_to_json(pred: Any, timing_ms: dict[str, float], line_reasons: list[str] | None = None) -> dict[str, Any]:
    """The ``gluecell.attach/1`` document of an :class:`~gluecell.core.types.AttachPrediction`; ``line_reasons``:
    why its sigma is not known to cover its error (:func:`gluecell.deformation.line.prediction_reasons`), read
    back by ``gluecell plan --bite-line``."""
    diag = dict(pred.diagnostics)
    diag.pop("sigma_parts", None)  # per-point arrays for calibration, not part of the document
    return {
        "format": ATTACH_FORMAT,
        "frame": pred.frame,
        "units": "m",
        "item_id": pred.item_id,
        "bite_line": [[float(v) for v in p] for p in pred.bite_line],
        "bite_line_sigma": [float(s) for s in pred.bite_line_sigma],
        "T_attach": diag.pop("T_attach", None),
        "counts": {
            "upper_bond": 0 if pred.upper_bond is None else len(pred.upper_bond),
            "sole_bond": 0 if pred.sole_bond is None else len(pred.sole_bond),
            "deformed_sole": 0 if pred.deformed_sole is None else len(pred.deformed_sole),
        },
        "line_reasons": list(line_reasons or []),
        "diagnostics": diag,
        "timing_ms": timing_ms,
    }


def _cmd_predict(args: argparse.Namespace) -> int:
    from gluecell.core.fileio import atomic_write_json
    from gluecell.deformation.calibration import resolve_calibration
    from gluecell.deformation.line import predict_with_residual, reasons_for, resolve_residual
    from gluecell.deformation.predict import PredictConfig, predict_attach

    t0 = time.perf_counter()
    upper = load_scan_ply(args.upper, "upper")
    sole = load_scan_ply(args.sole, "sole")
    t1 = time.perf_counter()
    cfg = PredictConfig(max_sigma=args.max_sigma_mm * 1e-3)
    cal, notes = resolve_calibration(args.calibration, off=args.no_calibration, style=args.style)
    for note in notes:
        print(note, file=sys.stderr)
    ref = load_reference(args.reference, "upper")
    sref = load_reference(args.sole_reference, "sole")
    taught = _load_taught(args)
    sur = None
    if args.surrogate:
        from gluecell.deformation.surrogate import load_surrogate

        sur = load_surrogate(args.surrogate)
    kw = dict(material=args.material, cfg=cfg, calibration=cal, reference=ref, surrogate=sur, sole_reference=sref,
              style=args.style, attach_pose=_attach_pose(args))  # fmt: skip
    model = resolve_residual(args.residual) if taught is None else None
    if model is not None:  # the learnt residual (falls back to physics + calibration outside its distribution)
        pred, used = predict_with_residual(upper, sole, model, **kw)
    else:
        pred, used = predict_attach(upper, sole, taught=taught, **kw), False
    t2 = time.perf_counter()
    why = reasons_for(pred.diagnostics, used, cal, ref is not None, sref is not None)
    doc = attach_to_json(pred, {"read": (t1 - t0) * 1e3, "deformation": (t2 - t1) * 1e3}, why)
    atomic_write_json(args.out, doc)
    for r in why:
        print(r)
    print(
        f"bite line: {len(pred.bite_line)} points, sigma p95 "
        f"{float(sorted(pred.bite_line_sigma)[int(0.95 * (len(pred.bite_line_sigma) - 1))]) * 1e3:.2f} mm, "
        f"{(t2 - t1) * 1e3:.0f} ms -> {args.out}"
    )
    return 0


def _attach_pose(args: argparse.Namespace) -> Any:
    """``--attach-pose``'s matrix, or None."""
    if not getattr(args, "attach_pose", None):
        return None
    from gluecell.deformation.pose_given import read_attach_pose

    return read_attach_pose(args.attach_pose)


def _load_taught(args: argparse.Namespace) -> Any:
    """The taught pair from ``--taught-upper/--taught-sole/--taught-line`` (all three or none)."""
    names = (args.taught_upper, args.taught_sole, args.taught_line)
    if not any(names):
        return None
    import numpy as np

    from gluecell.core.errors import ConfigError, FormatError
    from gluecell.core.fileio import read_json
    from gluecell.deformation.taught import TaughtPair

    if not all(names):
        raise ConfigError("--taught-upper, --taught-sole and --taught-line go together")
    doc = read_json(args.taught_line)
    line = np.asarray(doc.get("bite_line") if isinstance(doc, dict) else None, dtype=np.float64)
    if line.ndim != 2 or line.shape[1] != 3 or len(line) < 3 or not np.all(np.isfinite(line)):
        raise FormatError(f"{args.taught_line}: no finite (m, 3) 'bite_line'")
    u, so = load_scan_ply(args.taught_upper, "upper"), load_scan_ply(args.taught_sole, "sole")
    return TaughtPair(upper=(u.points, u.normals), sole=(so.points, so.normals), bite_line=line)


def _cmd_junction(args: argparse.Namespace) -> int:
    from gluecell.core.fileio import atomic_write_json
    from gluecell.deformation.junction import find_junction, junction_to_json, load_mesh, plot_junction

    verts, faces = load_mesh(args.mesh)
    res = find_junction(verts, faces, up_axis=args.up, toe_axis=args.toe)
    if args.png:
        plot_junction(verts, faces, res, args.png)
    atomic_write_json(args.out, junction_to_json(res, str(args.mesh)))
    print(
        f"junction: {len(res.line)} points, height {res.height_m.min() * 1e3:.1f}-{res.height_m.max() * 1e3:.1f} mm "
        f"above the tread, coverage {res.coverage:.0%} -> {args.out}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict`` and ``junction``."""
    p = subparsers.add_parser("predict", help="predict the bite line of a pair from its upper and sole scans")
    p.add_argument("--upper", required=True, help="PLY scan of the lasted upper (bottom up, base_link, metres)")
    p.add_argument("--sole", required=True, help="PLY scan of the sole (footbed up, base_link, metres)")
    p.add_argument(
        "--material", choices=("eva", "rubber", "pu", "tpu", "unknown"), default="unknown", help="sole material"
    )
    p.add_argument("--out", required=True, help="output JSON (gluecell.attach/1)")
    p.add_argument("--max-sigma-mm", type=float, default=1.0, help="refuse when the sigma p95 is over this")
    p.add_argument("--calibration", help="depth calibration JSON from `gluecell deform calibrate` "
                   "(default: the one shipped with gluecell)")  # fmt: skip
    p.add_argument("--no-calibration", action="store_true", help="the pure solver, no depth calibration")
    p.add_argument("--style", help="the work item's style (selects the calibration's learnt style offset; an "
                   "unknown style falls back to the material offset with a warning)")  # fmt: skip
    p.add_argument("--reference", help="PLY of the style's nominal upper (with normals), sectioned at this pose")
    p.add_argument("--sole-reference", help="PLY of the style's nominal sole (with normals): wall-height profile")
    p.add_argument("--taught-upper", help="PLY scan of the taught pair's upper (with --taught-sole, --taught-line)")
    p.add_argument("--taught-sole", help="PLY scan of the taught pair's sole")
    p.add_argument("--taught-line", help="JSON with the taught 'bite_line' (gluecell.plan/1 or gluecell.attach/1)")
    p.add_argument("--surrogate", help="surrogate checkpoint from `gluecell deform train` (solver used outside it)")
    p.add_argument("--attach-pose", help="JSON with the measured rigid sole->upper station pose (4x4, or the "
                   "'T_attach' of an attach JSON): replaces the outline fit")  # fmt: skip
    p.add_argument("--residual", default="default", help="learnt residual on top of the physics: on (the shipped "
                   "checkpoint), off, a checkpoint file from `gluecell deform train-residual`, or default (the "
                   "shipped one if it is marked on by default)")  # fmt: skip
    p.set_defaults(func=_cmd_predict)
    j = subparsers.add_parser("junction", help="find the sole/upper junction (bite line) on a finished-shoe mesh")
    j.add_argument("--mesh", required=True, help="OBJ/PLY/STL mesh of an attached pair (metres)")
    j.add_argument("--out", required=True, help="output JSON (gluecell.junction/1)")
    j.add_argument("--png", help="picture of the junction (several views)")
    j.add_argument("--up", default="+y", help="the mesh's up axis (+x, +y, +z, -x, ...), default +y")
    j.add_argument("--toe", default="+x", help="the mesh's toe axis, default +x")
    j.set_defaults(func=_cmd_junction)
    d = subparsers.add_parser("deform", help="deformation model maintenance")
    dsub = d.add_subparsers(dest="deform_command", metavar="COMMAND", required=True)
    c = dsub.add_parser(
        "calibrate", help="learn the bite-depth offset per sole material from a dataset's training split"
    )
    c.add_argument("--dataset", required=True, help="generated dataset folder (gluecell.dataset/1)")
    c.add_argument("--split", default="train", help="split to learn from (default train)")
    c.add_argument("--limit", type=int, default=0, help="use at most this many pairs (0 = all)")
    c.add_argument("--references", choices=("none", "sim"), default="none",
                   help="style references to learn with: none (scans only) or sim (the simulated cell's nominal "
                        "upper and sole per style/size/side; world datasets); predict with the same")  # fmt: skip
    c.add_argument("--out", required=True, help="output JSON (gluecell.deform_calibration/1)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_calibrate)
    t = dsub.add_parser("train", help="train the learnt surrogate of the ring solver on a dataset's training split")
    t.add_argument("--dataset", required=True, help="generated dataset folder (gluecell.dataset/1)")
    t.add_argument("--out", required=True, help="output checkpoint (gluecell.deform_surrogate/1, torch)")
    t.add_argument("--limit", type=int, default=0, help="use at most this many training pairs (0 = all)")
    t.add_argument("--steps", type=int, default=800, help="optimiser steps")
    t.add_argument("--seed", type=int, default=0, help="training seed")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)
    r = dsub.add_parser("train-residual", help="train the learnt residual (depth correction + sigma) on top of the "
                        "physics on a generated dataset (train split; sigma factor on its val split)")  # fmt: skip
    r.add_argument("--dataset", required=True, help="generated world dataset folder (gluecell.dataset/1)")
    r.add_argument("--out", required=True, help="output checkpoint (gluecell.deform_residual/1, torch)")
    r.add_argument("--cache", help="per-pair feature cache (default: DATASET/residual-cache; re-run resumes)")
    r.add_argument("--workers", type=int, default=2, help="processes extracting features")
    r.add_argument("--limit", type=int, default=0, help="use at most this many pairs per split (0 = all)")
    r.add_argument("--steps", type=int, default=600, help="optimiser steps")
    r.add_argument("--seed", type=int, default=0, help="training seed")
    r.add_argument("--remove-cell-offset", action="store_true", help="take the training cell's median offset "
                   "out of the labels: the net corrects on top of physics + the cell's depth calibration")  # fmt: skip
    r.add_argument("--default-on", action="store_true", help="mark the checkpoint on by default (only once it beat "
                   "physics + calibration at p95 on held-out pairs of both worlds)")  # fmt: skip
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_train_residual)
    s = dsub.add_parser("train-sigma", help="fit the sigma of predictions made without a style reference "
                        "(unknown styles) on world-1 feature caches, one per cell")  # fmt: skip
    from gluecell.deformation.sigma_train import add_arguments

    add_arguments(s)
    s.set_defaults(func=_cmd_train_sigma)


def _cmd_train_sigma(args: argparse.Namespace) -> int:
    from gluecell.deformation.sigma_train import run

    return run(args)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.calibration import save_calibration
    from gluecell.deformation.calibration_train import calibrate_on_dataset

    ds = open_dataset(args.dataset)
    ids = ds.ids(args.split)[: args.limit] if args.limit else ds.ids(args.split)
    refs: dict[str, Any] = {}
    if args.references == "sim":
        from gluecell.cell.sim.references import nominal_sole, nominal_upper

        cache: dict = {}
        refs = {"reference_for": lambda item: nominal_upper(cache, item)[:2],
                "sole_reference_for": lambda item: nominal_sole(cache, item)}  # fmt: skip
    cal, metrics = calibrate_on_dataset(ds, ids, progress=not args.quiet, **refs)
    cal = replace(cal, metrics=metrics, references=args.references)
    save_calibration(args.out, cal, {"dataset": str(args.dataset), "split": args.split, "limit": args.limit,
                                     "references": args.references})  # fmt: skip
    offs = ", ".join(f"{k} {v * 1e3:+.2f} mm" for k, v in cal.offsets.items())
    print(
        f"depth offsets: {offs}; residual std {cal.residual_std * 1e3:.2f} mm over {cal.n_pairs} pairs; "
        f"sigma {cal.sigma_scale:.2f} x model (+) {cal.sigma_floor * 1e3:.2f} mm (+) {cal.sigma_match * 1e3:.2f} mm "
        f"x depth slope -> {args.out}"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from gluecell.core.fileio import atomic_write_json
    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.calibration_train import train_on_dataset
    from gluecell.deformation.surrogate import SURROGATE_FORMAT, SurrogateConfig, save_surrogate

    ds = open_dataset(args.dataset)
    train = ds.ids("train")[: args.limit] if args.limit else ds.ids("train")
    cfg = SurrogateConfig(steps=args.steps, seed=args.seed)
    t0 = time.perf_counter()
    sur = train_on_dataset(ds, train, ds.ids("val"), cfg, progress=not args.quiet)
    config = {"dataset": str(args.dataset), "split": "train", "limit": args.limit, **dataclasses.asdict(cfg)}
    save_surrogate(args.out, sur, config)
    sidecar = Path(args.out).with_suffix(".json")
    atomic_write_json(sidecar, {"format": SURROGATE_FORMAT, "config": config, "metrics": sur.metrics})
    m = sur.metrics
    print(
        f"surrogate: {int(m['train_pairs'])} train pairs, strain rmse train {m['train_rmse_strain']:.2e} "
        f"val {m.get('val_rmse_strain', float('nan')):.2e}, {time.perf_counter() - t0:.0f} s -> {args.out}, {sidecar}"
    )
    return 0


_SIM_REFS: dict = {}


def sim_style_references(item: Any) -> tuple[Any, Any]:
    """(nominal upper (points, normals), nominal sole (points, normals)) of ``item``'s style from the simulated
    cell's style library (the references the cell predicts with); a picklable ``module:function`` for workers."""
    from gluecell.cell.sim.references import nominal_sole, nominal_upper

    return nominal_upper(_SIM_REFS, item)[:2], nominal_sole(_SIM_REFS, item)


def _cmd_train_residual(args: argparse.Namespace) -> int:
    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.residual import ResidualConfig, save_residual
    from gluecell.deformation.residual_train import train_on_dataset

    ds = open_dataset(args.dataset)
    cache = Path(args.cache) if args.cache else Path(args.dataset) / "residual-cache"
    cfg = ResidualConfig(steps=args.steps, seed=args.seed)
    t0 = time.perf_counter()
    model = train_on_dataset(ds, args.dataset, cache, cfg, refs_spec="gluecell.cell.cli.predict:sim_style_references",
                             workers=args.workers, limit=args.limit, progress=not args.quiet,
                             remove_cell_offset=args.remove_cell_offset)  # fmt: skip
    model.default_on = bool(args.default_on)
    save_residual(args.out, model, {"dataset": str(args.dataset), "limit": args.limit, "steps": args.steps,
                                    "seed": args.seed, "references": "sim + none (both variants)",
                                    "remove_cell_offset": args.remove_cell_offset})  # fmt: skip
    m = model.metrics
    print(f"residual: {int(m['train_samples'])} train samples, sigma factor {model.sigma_scale:.2f}; "
          f"val p95 {m.get('val_p95_mm_median', float('nan')):.2f} mm (physics "
          f"{m.get('val_physics_p95_mm_median', float('nan')):.2f}), within 2 sigma "
          f"{m.get('val_within_2sigma', float('nan')):.1%}; {time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0
