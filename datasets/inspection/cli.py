"""The ``--kind inspection`` options of ``gluecell datasets generate``."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_arguments", "generate_from_args"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options that only ``--kind inspection`` reads."""
    p.add_argument("--views", type=int, default=4, help="inspection: views per pair, of the station's 8 (default 4)")
    p.add_argument("--shifted", action="store_true", help="inspection: shifted appearance (new materials, lights)")
    p.add_argument("--p-fault", type=float, default=0.55, help="inspection: share of runs with a fault (default 0.55)")


def generate_from_args(args: argparse.Namespace) -> int:
    """Run the inspection generator from parsed ``datasets generate`` arguments."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..format import DatasetError
    from .generate import InspectionOptions, generate_inspection

    if args.config or args.styles:
        raise DatasetError("--config and --styles apply to --kind world only")
    if not 0.0 <= args.p_fault <= 1.0:
        raise DatasetError(f"--p-fault must be within 0..1, got {args.p_fault}")
    opts = InspectionOptions(n=args.n, seed=args.seed, views_per_pair=args.views, shifted=args.shifted,
                             p_fault=args.p_fault, workers=args.workers)  # fmt: skip
    cols = (TextColumn("inspection pairs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*cols, disable=args.quiet) as bar:
        task = bar.add_task("generate", total=args.n)
        res: dict[str, Any] = generate_inspection(args.out, opts, progress=lambda d, n: bar.update(task, completed=d))
    print(f"{args.out}: {res['generated']} pairs generated, {res['skipped']} already there")
    print(json.dumps(res["info"]["counts"]))
    return 0
