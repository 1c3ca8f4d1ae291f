"""``gluecell correction``: collect spray outcomes, train the learned path correction, evaluate it held out.

``collect`` and ``eval`` run the simulated cell (the world's spray simulator plays the real gun); ``train`` needs
only the collected outcomes. By default both work on what the cell really has (``--scan perceived``: the pair's
camera frames through perception, planned to the predicted line and to the operator-marked line,
:mod:`gluecell.cell.sim.correction_perceived`); ``--scan ideal`` keeps the earlier ideal-scan, true-line
collection (:mod:`gluecell.cell.sim.outcomes`). Retraining::

    gluecell correction collect --dataset TRAIN_DIR --split train,val --out OUTCOMES --workers 2
    gluecell correction train --outcomes OUTCOMES --out model.pt
    gluecell correction eval --dataset BENCH_W1 --model model.pt --world world1 --write   # its test split
    gluecell correction eval --dataset BENCH_W2 --model model.pt --world world2 --write   # every pair

Only a checkpoint whose held-out evaluations recorded ``beats_baseline: true`` (it wins on a world and loses on
none) can be switched on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _collect(args: argparse.Namespace) -> int:
    if args.scan == "perceived":
        from gluecell.cell.sim.correction_perceived import PerceivedOptions, collect_perceived

        kinds = tuple(k.strip() for k in args.lines.split(","))
        popts = PerceivedOptions(split=args.split, n=args.n, runs=args.runs, seed=args.seed,
                                 margin_mm=args.margin_mm, lines=kinds, workers=args.workers)  # fmt: skip
        meta = collect_perceived(args.dataset, args.out, popts)
    else:
        from gluecell.cell.sim.outcomes import CollectOptions, collect

        opts = CollectOptions(split=args.split, n=args.n, runs=args.runs, seed=args.seed, margin_mm=args.margin_mm)
        meta = collect(args.dataset, args.out, opts)
    print(f"collected {len(meta['ids'])} labelled plans into {args.out} ({len(meta['refused'])} refused)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from gluecell.pathplan.correction_train import TrainConfig, train_from_outcomes

    kw: dict[str, Any] = {} if args.quantile is None else {"quantile": args.quantile}
    if args.margin_mm is not None:
        kw["margin_mm"] = args.margin_mm
    if args.max_toward_mm is not None:
        kw["max_toward_mm"] = args.max_toward_mm
    kw["margin_use"] = args.margin_use
    if args.lines:
        kw["line_kinds"] = tuple(k.strip() for k in args.lines.split(","))
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, **kw)
    rec = train_from_outcomes(args.outcomes, args.out, cfg)
    m = rec["train_metrics"]
    print(f"trained on {m['n_train']} waypoints ({m['n_pairs']} pairs); validation MAE {m['val'].get('mae_mm', 0):.3f}"
          f" mm (constant offset {m['val_constant_offset'].get('mae_mm', 0):.3f} mm); wrote {args.out}"
          " (not enabled until `gluecell correction eval --write` shows it beats the baseline)")  # fmt: skip
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.scan == "ideal":
        from gluecell.cell.sim.outcomes import evaluate

        s = evaluate(args.dataset, args.model, split=args.split, n=args.n, seed=args.seed, runs=args.runs,
                     write=args.write, max_offset_mm=args.max_offset_mm, constant=args.constant)  # fmt: skip
        _table(s)
    else:
        s = _eval_perceived(args)
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=2) + "\n")
    return 0


def _eval_perceived(args: argparse.Namespace) -> dict[str, Any]:
    from gluecell.cell.bench.correction import evaluate_perceived
    from gluecell.pathplan.correction import load_model
    from gluecell.pathplan.correction_train import constant_model, record_world, summarise_true

    model = load_model(args.model, require_beats_baseline=False)
    model = constant_model(model) if args.constant else model
    kinds = tuple(k.strip() for k in args.lines.split(","))
    rows = evaluate_perceived(args.dataset, model, split=args.split, n=args.n, kinds=kinds, seed=args.seed,
                              runs=args.runs)  # fmt: skip
    s = summarise_true(rows)
    s.update(dataset=str(Path(args.dataset).resolve()), split=args.split, seed=args.seed, runs=args.runs,
             lines=list(kinds), ablation="constant" if args.constant else "")  # fmt: skip
    true_table(s)
    if args.write and not args.constant:
        rec = record_world(args.model, args.world, s)
        print(f"recorded {args.world} in {args.model}: beats_baseline {rec['beats_baseline']} ({rec['heldout_rule']})")
    return s


def true_table(s: dict[str, Any]) -> None:
    """Print a :func:`~gluecell.pathplan.correction_train.summarise_true` summary, one block per line kind."""
    keys = ("true_above_max_mm", "true_above_p99_mm", "true_dry_strip_p95_mm", "true_dry_strip_p95_mm_median",
            "true_band2mm_coverage", "true_coverage", "true_coverage_1mm", "true_gap_mm2")  # fmt: skip
    for kind, v in s.items():
        if not isinstance(v, dict) or "uncorrected" not in v:
            continue
        print(f"[{kind}] {v['n']} plans; correction applied on {v['applied_fraction']:.0%}"
              f" ({'; '.join(v['not_applied']) or 'all'}); verdict {v['verdict']}")  # fmt: skip
        print(f"  {'metric':30s} {'uncorrected':>12s} {'corrected':>12s}")
        for k in keys:
            a, b = v["uncorrected"].get(k, float("nan")), v["corrected"].get(k, float("nan"))
            print(f"  {k:30s} {a:12.3f} {b:12.3f}")


def _table(s: dict[str, Any]) -> None:
    keys = ("glue_above_max_mm", "glue_above_p99_mm", "pairs_with_glue_above", "band_coverage_2mm_mean",
            "band_coverage_5mm_mean", "coverage_mean")  # fmt: skip
    print(
        f"held-out {s['split']}: {s['n_pairs']} pairs x {s['runs']} runs; correction applied on "
        f"{s['applied_fraction']:.0%} ({', '.join(s['not_applied']) or 'all'})"
    )
    print(f"{'metric':28s} {'uncorrected':>12s} {'corrected':>12s}")
    for k in keys:
        print(f"{k:28s} {s['baseline'].get(k, float('nan')):12.3f} {s['corrected'].get(k, float('nan')):12.3f}")
    print(f"beats_baseline: {s['beats_baseline']}  ({s['rule']})")


def register(sub: Any) -> None:
    """Add ``correction collect|train|eval``."""
    p = sub.add_parser("correction", help="learned spray-path correction: collect outcomes, train, evaluate")
    cs = p.add_subparsers(dest="correction_command", metavar="ACTION", required=True)
    c = cs.add_parser("collect", help="plan + simulate spray on a dataset's pairs, write per-waypoint labels")
    c.add_argument("--dataset", required=True, help="dataset folder (gluecell datasets generate; not seed 9001)")
    c.add_argument("--out", required=True, help="outcomes folder (resumable)")
    c.add_argument("--split", default="train,val", help="split(s), comma-separated (default train,val)")
    c.add_argument("--n", type=int, default=None, help="at most this many pairs")
    c.add_argument("--runs", type=int, default=2, help="spray runs per pair (one sample per run)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--margin-mm", type=float, default=1.0, help="target glue edge below the true bite line (mm)")
    _scan_args(c)
    c.add_argument("--workers", type=int, default=1, help="worker processes (perceived scans only)")
    c.set_defaults(func=_collect)
    t = cs.add_parser("train", help="train the correction MLP on collected outcomes")
    t.add_argument("--outcomes", required=True)
    t.add_argument("--out", required=True, help="checkpoint path (model.pt)")
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--quantile",
        type=float,
        default=None,
        help="fit this quantile of the needed shift (0: the mean; default: TrainConfig's, 0.99)",
    )
    t.add_argument("--margin-mm", type=float, default=None, help="target glue edge below the line (default: collect's)")
    t.add_argument("--max-toward-mm", type=float, default=None,
                   help="clamp of moves towards the line, kept in the checkpoint (0: only away from it)")  # fmt: skip
    t.add_argument("--margin-use", type=float, default=0.0,
                   help="share (0-1) of each point's line margin the corrected film may use, recorded in the "
                        "checkpoint (0: the planner's own film limit)")  # fmt: skip
    t.add_argument("--lines", default="", help="train on these line kinds only (e.g. predicted; default: all)")
    t.set_defaults(func=_train)
    e = cs.add_parser("eval", help="held-out comparison with the uncorrected planner (world spray)")
    e.add_argument("--dataset", required=True, help="dataset of ANOTHER seed than the training one")
    e.add_argument("--model", required=True)
    e.add_argument("--split", default="test", help="split (a test-only world, world 2: every pair)")
    e.add_argument("--n", type=int, default=None)
    e.add_argument("--runs", type=int, default=1, help="spray runs per pair (same draws for both plans)")
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--max-offset-mm", type=float, default=1.5, help="clamp of the correction (mm; --scan ideal)")
    e.add_argument("--world", default="world1", help="name the result is recorded under (world1, world2)")
    _scan_args(e)
    e.add_argument("--write", action="store_true", help="record the result and beats_baseline in the checkpoint")
    e.add_argument("--constant", action="store_true", help="ablation: the training constant instead of the network")
    e.add_argument("--json", help="also write the summary here")
    e.set_defaults(func=_eval)


def _scan_args(p: Any) -> None:
    p.add_argument("--scan", choices=["perceived", "ideal"], default="perceived",
                   help="perceived: the pair's camera frames through perception, the cell's lines (default); "
                        "ideal: true mesh samples and the true line (the earlier collection)")  # fmt: skip
    p.add_argument("--lines", default="predicted,marked",
                   help="perceived: line kinds, comma-separated (predicted = deformation's line with its sigma, "
                        "marked = the operator's line with MARKED_SIGMA_M)")  # fmt: skip
