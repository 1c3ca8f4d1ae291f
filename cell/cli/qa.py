"""``gluecell qa train|eval|head|rejudge|export|list|promote|rollback``: the QA network's ML workflow."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


def _bar_callback(bar: Any) -> Any:
    """A ``progress(what, done, total)`` callback drawing one rich task per ``what`` on ``bar``."""
    tasks: dict[str, Any] = {}

    def progress(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    return progress


def _cmd_train(args: argparse.Namespace) -> int:
    from gluecell.quality.train import config_from_args, train

    cfg = config_from_args(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, crop=args.crop,
                           width=args.width, real_ratio=args.real_ratio, threads=args.threads,
                           limit=args.limit, blind=args.blind or None, geom_dropout=args.geom_dropout,
                           loss=args.loss, defect_crop=args.defect_crop)  # fmt: skip
    with _progress() as bar:
        progress = _bar_callback(bar)
        record = train(args.data, args.out, cfg, real_dir=args.real, resume=args.resume,
                       progress=None if args.quiet else progress)  # fmt: skip
    last = record["history"][-1]
    print(f"{args.out}/model.pt: {len(record['history'])} epochs, val loss {last['val_loss']:.4f}; "
          f"policy {json.dumps(record['policy'])}")
    return 0


def _load(args: argparse.Namespace) -> Any:
    from gluecell.quality.inspect import resolve_model

    return resolve_model(args.model, args.registry)


def _cmd_eval(args: argparse.Namespace) -> int:
    from gluecell.quality.evaluate import dumps, evaluate
    from gluecell.quality.policy import load_policy

    model = _load(args)
    policy = load_policy(args.policy) if args.policy else None
    res = evaluate(model, args.data, split=args.split, policy=policy, json_out=args.json, plots=args.plots,
                   limit=args.limit)  # fmt: skip
    if args.json is None:
        print(dumps(res))
        return 0
    print(f"{res['n_views']} views ({res['n_clean']} clean) of {args.data} [{args.split}]  model {res['model']}")
    print(f"{'defect':8} {'n+':>4} {'recall':>7} {'AUROC':>6} | classical {'recall':>7} {'AUROC':>6}")
    for t, r in res["recall"].items():
        c = res["classical"]
        print(f"{t:8} {res['support'][t]:4d} {r:7.3f} {res['auroc'][t]:6.3f} |           "
              f"{c['recall'][t]:7.3f} {c['auroc'][t]:6.3f}")
    print(f"false-reject rate {res['false_reject_rate']:.3f} (classical {res['classical']['false_reject_rate']:.3f}),"
          f" to human {res['to_human_rate']:.3f}, overspray error {res['overspray_mae_mm']:.2f} mm; wrote {args.json}")
    pt = res["parts"]
    rec = ", ".join(f"{t} {r:.2f} ({pt['support'][t]})" for t, r in pt["recall"].items())
    print(f"per part ({pt['n_parts']} parts, {pt['n_clean']} clean): recall {rec}; false-reject rate "
          f"{pt['false_reject_rate']:.3f}, to human {pt['to_human_rate']:.3f}")
    return 0


def _cmd_head(args: argparse.Namespace) -> int:
    import torch

    from gluecell.quality.headfit import fit_head_model

    torch.set_num_threads(args.threads)
    with _progress() as bar:
        progress = _bar_callback(bar)
        model = _load(args)
        extra = []
        if args.val_run:
            from gluecell.cell.bench.quality import run_features

            extra = [run_features(r, model) for r in args.val_run]
        rec = fit_head_model(model, args.fit, args.val, args.out, fr_goal=args.fr_goal, human_goal=args.human_goal,
                             extra_val=extra, progress=progress)  # fmt: skip
    m = rec["head_fit"]["metrics"]["val_parts"]
    n_fit = rec["head_fit"]["metrics"]["fit_views"]
    print(f"wrote {args.out}: head fitted on {n_fit} views; policy {json.dumps(rec['policy'])}")
    print(f"validation parts: recall {json.dumps(m['recall'])}, false-reject rate {m['false_reject_rate']:.3f}, "
          f"to human {m['to_human_rate']:.3f}")
    return 0


def _cmd_rejudge(args: argparse.Namespace) -> int:
    from gluecell.cell.bench.quality import rejudge_run
    from gluecell.quality.evaluate import dumps

    res = rejudge_run(args.run, _load(args))
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(dumps(res))
    for r in res["rows"]:
        print(f"{r['id']}  {r['verdict']:9} {','.join(r['defects']) or '-':18} truth {r['truth']:4} "
              f"{','.join(r['truth_defects']) or '-':14} {r['versus']}")
    print(f"{res['pairs']} pairs: QA pass {res['first_pass_yield']:.2f}; caught {res['caught']}, missed "
          f"{res['missed']}, false reject {res['false reject']}, correct pass {res['correct pass']}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from gluecell.quality.export import export_torchscript

    rec = export_torchscript(_load(args), args.out)
    print(f"wrote {args.out} (TorchScript, max error {rec['max_abs_error']:.1e}) and {args.out}.json")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from gluecell.quality.registry import Registry

    reg = Registry(args.registry)
    d = reg.list()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"registry {reg.root}")
    for name, m in sorted(d["models"].items()):
        alias = ", ".join(a for a, n in d["aliases"].items() if n == name)
        print(f"  {name:24} {m['registered']}  sha256 {m['sha256'][:12]}  {('<- ' + alias) if alias else ''}")
    if not d["models"]:
        print("  (no models)")
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from gluecell.quality.registry import Registry

    reg = Registry(args.registry)
    name = args.name
    if args.file:
        name = reg.register(args.file, args.name)
    reg.promote(name, args.alias)
    print(f"{args.alias} -> {name}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from gluecell.quality.registry import Registry

    name = Registry(args.registry).rollback(args.alias)
    print(f"{args.alias} -> {name} (rolled back)")
    return 0


def _common(p: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        p.add_argument("--model", default="champion", help="model file, registered name or alias (default champion)")
    p.add_argument("--registry", help="registry folder (default $GLUECELL_QA_REGISTRY or the shipped quality/models)")


def register(sub: Any) -> None:
    """Add the ``qa`` command group."""
    p = sub.add_parser("qa", help="train, evaluate, export and promote the QA network")
    g = p.add_subparsers(dest="qa_command", metavar="ACTION", required=True)
    t = g.add_parser("train", help="train a QA model on an inspection dataset (checkpoints, resume)")
    t.add_argument("--data", required=True, help="inspection dataset (gluecell datasets generate --kind inspection)")
    t.add_argument("--real", help="real labelled views in the same format, mixed in at --real-ratio")
    t.add_argument("--real-ratio", type=float, help="share of real views per batch (0..1)")
    t.add_argument("--out", required=True, help="run folder (runs/NAME); must be new unless --resume")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    for name, typ in (("epochs", int), ("batch", int), ("lr", float), ("seed", int), ("crop", int), ("width", int),
                      ("threads", int), ("limit", int)):  # fmt: skip
        t.add_argument(f"--{name}", type=typ, help=f"training {name} (see quality/train.py TrainConfig)")
    t.add_argument("--blind", action="store_true", help="the network never sees the plan's geometry channels "
                   "(signed distance to the predicted line): it must find the glue in the image")
    t.add_argument("--geom-dropout", type=float, help="share of training crops with the geometry channels zeroed")
    t.add_argument("--loss", choices=("bce", "focal_dice"), help="bce (default) or focal + dice on the defects")
    t.add_argument("--defect-crop", type=float, help="share of crops centred on a defect pixel (default 0.6)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)
    e = g.add_parser("eval", help="recall per defect, false-reject rate, AUROC, calibration, plots")
    _common(e)
    e.add_argument("--data", required=True, help="inspection dataset")
    e.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    e.add_argument("--json", help="write the metrics JSON here")
    e.add_argument("--plots", help="write roc.png and reliability.png into this folder")
    e.add_argument("--policy", help="TOML with a [policy] table overriding the model's thresholds")
    e.add_argument("--limit", type=int, help="evaluate at most this many views")
    e.set_defaults(func=_cmd_eval)
    h = g.add_parser("head", help="fit the image-level head on a trained model and choose its per-part policy")
    _common(h)
    h.add_argument("--fit", nargs="+", required=True, help="inspection datasets the head is fitted on")
    h.add_argument("--val", nargs="+", required=True, help="other inspection datasets the thresholds are chosen on")
    h.add_argument("--val-run", nargs="*", default=[], help="finished demo runs (--out folders) whose views join "
                   "the validation set (demo-rendered; never the run you report)")
    h.add_argument("--out", required=True, help="new model file (.pt): the same weights, the head and the policy")
    h.add_argument("--fr-goal", type=float, default=0.01, help="share of clean validation parts allowed to fail")
    h.add_argument("--human-goal", type=float, default=0.04, help="further share allowed to go to the human")
    h.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    h.set_defaults(func=_cmd_head)
    rj = g.add_parser("rejudge", help="inspect a finished demo run's views again and compare with its truth labels")
    _common(rj)
    rj.add_argument("run", help="the demo's --out folder (inspection/, pairs/, inspection_truth/)")
    rj.add_argument("--json", help="write the per-pair results here")
    rj.set_defaults(func=_cmd_rejudge)
    x = g.add_parser("export", help="export a model to TorchScript")
    _common(x)
    x.add_argument("--out", required=True, help="output .pt (TorchScript) path")
    x.set_defaults(func=_cmd_export)
    ls = g.add_parser("list", help="registered models and aliases")
    _common(ls, model=False)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)
    pr = g.add_parser("promote", help="point an alias (champion/challenger) at a model, registering a file first")
    _common(pr, model=False)
    pr.add_argument("name", help="registered name (or the name to register --file under)")
    pr.add_argument("--file", help="model file to register under NAME first")
    pr.add_argument("--alias", default="champion", help="alias to move (default champion)")
    pr.set_defaults(func=_cmd_promote)
    rb = g.add_parser("rollback", help="point an alias back at its previous model")
    _common(rb, model=False)
    rb.add_argument("--alias", default="champion")
    rb.set_defaults(func=_cmd_rollback)
