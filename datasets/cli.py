"""``gluecell datasets generate|info|show``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["register"]


def _cmd_generate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .generate import GenerateOptions, generate_dataset, load_generate_config

    if args.kind == "inspection":  # UV images + depth + plans + labels (datasets/inspection)
        from .inspection.cli import generate_from_args

        return generate_from_args(args)
    world_id = _world_id(args.world)
    if world_id == 2:
        from .world2 import STYLES, load_world2_config

        world, scanner = load_world2_config(args.config)
    else:
        from .world import STYLES

        world, scanner = load_generate_config(args.config)
    if args.styles:
        from .format import DatasetError

        bad = [s for s in args.styles if s not in STYLES]
        if bad:
            raise DatasetError(f"unknown style(s) {bad}; choose from {', '.join(STYLES)}")
    opts = GenerateOptions(
        n=args.n, seed=args.seed, world=world, scanner=scanner, styles=tuple(args.styles or ()), workers=args.workers,
        world_id=world_id,
    )
    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=args.quiet) as bar:
        task = bar.add_task("generate", total=args.n)
        result = generate_dataset(args.out, opts, progress=lambda done, total: bar.update(task, completed=done))
    secs = result["seconds_per_sample"]
    per = f"{sum(secs) / len(secs):.2f} s per sample in each of {args.workers} worker(s)" if secs else "-"
    print(f"{args.out}: {result['generated']} generated, {result['skipped']} already there; {per}")
    print(json.dumps(result["info"]["counts"]))
    return 0


def _world_id(name: str) -> int:
    """``--world`` value -> 1 or 2 ("1", "world", "2", "world2")."""
    ids = {"1": 1, "world": 1, "world1": 1, "2": 2, "world2": 2}
    if name not in ids:
        from .format import DatasetError

        raise DatasetError(f"unknown --world {name!r}; choose 1 (datasets/world) or 2 (datasets/world2)")
    return ids[name]


def _cmd_info(args: argparse.Namespace) -> int:
    from .format import open_dataset

    ds = open_dataset(args.dir)
    info: dict[str, Any] = ds.info
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"dataset   {ds.root}")
    print(f"format    {info['format']}   generator {info.get('generator')}   seed {info.get('seed')}")
    print("counts    " + "  ".join(f"{k} {v}" for k, v in info["counts"].items()))
    styles: dict[str, int] = {}
    for sid in ds.ids():
        item = ds.workitem(sid)
        styles[item.style] = styles.get(item.style, 0) + 1
    print("styles    " + "  ".join(f"{k} {v}" for k, v in sorted(styles.items())))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .format import DatasetError, open_dataset
    from .show import render_sample

    ds = open_dataset(args.dir)
    ids = ds.ids()
    if not 0 <= args.sample < len(ids):
        raise DatasetError(f"--sample must be between 0 and {len(ids) - 1}, got {args.sample}")
    out = render_sample(ds, ids[args.sample], args.out)
    print(f"wrote {out}")
    return 0


def register(sub: Any) -> None:
    """Add the ``datasets`` command group."""
    p = sub.add_parser("datasets", help="generate and inspect synthetic datasets")
    g = p.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    gen = g.add_parser("generate", help="generate N samples from the synthetic shoe world")
    gen.add_argument("--n", type=int, required=True, help="number of pairs")
    gen.add_argument("--seed", type=int, required=True, help="master seed (same seed -> identical bytes)")
    gen.add_argument("--out", required=True, help="output folder (re-run the same command to resume)")
    gen.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    gen.add_argument("--config", help="TOML with [world] and [scanner] tables overriding the defaults")
    gen.add_argument("--styles", nargs="+", metavar="STYLE", help="cycle through these styles (default: random)")
    gen.add_argument("--world", default="1", help="1: the main world; 2 (or world2): the independent test world")
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    gen.add_argument("--kind", choices=("world", "inspection"), default="world", help="world pairs (default) or "
                     "inspection views (UV image, depth before/after, plan, defect labels)")
    from .inspection.cli import add_arguments

    add_arguments(gen)
    gen.set_defaults(func=_cmd_generate)
    info = g.add_parser("info", help="summary of a dataset folder")
    info.add_argument("dir")
    info.add_argument("--json", action="store_true", help="print meta/info.json")
    info.set_defaults(func=_cmd_info)
    show = g.add_parser("show", help="draw one sample (meshes, scans, true bite line) to a PNG")
    show.add_argument("dir")
    show.add_argument("--sample", type=int, default=0, help="index into the sorted sample ids")
    show.add_argument("--out", required=True, help="PNG path")
    show.set_defaults(func=_cmd_show)
