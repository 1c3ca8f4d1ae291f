"""``gluecell correction``: collect spray outcomes, train the learned path correction, evaluate it held out.

``collect`` and ``eval`` run the simulated cell (``cell/sim/outcomes.py``: the world's spray simulator plays
the real gun); ``train`` needs only the collected outcomes. Retraining::

    gluecell correction collect --dataset TRAIN_DIR --split train,val --out OUTCOMES
    gluecell correction train --outcomes OUTCOMES --out model.pt
    gluecell correction eval --dataset HELDOUT_DIR --model model.pt --write   # other seed, test split

Only a checkpoint whose held-out evaluation recorded ``beats_baseline: true`` can be switched on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _collect(args: argparse.Namespace) -> int:
    from gluecell.cell.sim.outcomes import CollectOptions, collect

    opts = CollectOptions(split=args.split, n=args.n, runs=args.runs, seed=args.seed, margin_mm=args.margin_mm)
    meta = collect(args.dataset, args.out, opts)
    print(f"collected {len(meta['ids'])} pairs into {args.out} ({len(meta['refused'])} refused by the planner)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from gluecell.pathplan.correction_train import TrainConfig, train_from_outcomes

    kw: dict[str, Any] = {} if args.quantile is None else {"quantile": args.quantile}
    if args.margin_mm is not None:
        kw["margin_mm"] = args.margin_mm
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, **kw)
    rec = train_from_outcomes(args.outcomes, args.out, cfg)
    m = rec["train_metrics"]
    print(f"trained on {m['n_train']} waypoints ({m['n_pairs']} pairs); validation MAE {m['val'].get('mae_mm', 0):.3f}"
          f" mm (constant offset {m['val_constant_offset'].get('mae_mm', 0):.3f} mm); wrote {args.out}"
          " (not enabled until `gluecell correction eval --write` shows it beats the baseline)")  # fmt: skip
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gluecell.cell.sim.outcomes import evaluate

    s = evaluate(args.dataset, args.model, split=args.split, n=args.n, seed=args.seed, runs=args.runs,
                 write=args.write, max_offset_mm=args.max_offset_mm, constant=args.constant)  # fmt: skip
    _table(s)
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=2) + "\n")
    return 0


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
    c.add_argument("--dataset", required=True, help="dataset folder (gluecell datasets generate)")
    c.add_argument("--out", required=True, help="outcomes folder (resumable)")
    c.add_argument("--split", default="train,val", help="split(s), comma-separated (default train,val)")
    c.add_argument("--n", type=int, default=None, help="at most this many pairs")
    c.add_argument("--runs", type=int, default=2, help="spray runs per pair (labels are their mean)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--margin-mm", type=float, default=1.0, help="target glue edge below the true bite line (mm)")
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
    t.set_defaults(func=_train)
    e = cs.add_parser("eval", help="held-out comparison with the uncorrected planner (world spray)")
    e.add_argument("--dataset", required=True, help="dataset of ANOTHER seed than the training one")
    e.add_argument("--model", required=True)
    e.add_argument("--split", default="test")
    e.add_argument("--n", type=int, default=None)
    e.add_argument("--runs", type=int, default=1, help="spray runs per pair (same draws for both plans)")
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--max-offset-mm", type=float, default=1.5, help="clamp of the correction (mm)")
    e.add_argument("--write", action="store_true", help="record the result and beats_baseline in the checkpoint")
    e.add_argument("--constant", action="store_true", help="ablation: the training constant instead of the network")
    e.add_argument("--json", help="also write the summary here")
    e.set_defaults(func=_eval)
