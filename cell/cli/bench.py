"""``gluecell bench``: parse, run the bench (:mod:`gluecell.cell.bench`), print its table, write JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gluecell.cell.bench import BENCH_SEED, run_bench

__all__ = ["register"]


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result["machine"]
    table = Table(title=f"gluecell bench  ({m['cores']} cores, {m['mem_gb']} GB, commit {m['commit']})")
    table.add_column("section")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section, metrics in result["sections"].items():
        for k, v in metrics.items():
            table.add_row(section, k, f"{v:.4g}")
    console = Console()
    console.print(table)
    for area, err in result["errors"].items():
        console.print(f"[red]{area} failed:[/red] {err}")


def _cmd_bench(args: argparse.Namespace) -> int:
    from gluecell.core.fileio import atomic_write_json

    only = tuple(s.strip() for s in args.only.split(",")) if args.only else ()
    keep = Path(args.keep) if args.keep else None
    world = {"1": 1, "world": 1, "2": 2, "world2": 2}.get(args.world)
    if world is None:
        from gluecell.core.errors import ConfigError

        raise ConfigError(f"unknown --world {args.world!r}; choose 1 or 2 (world2)", key="world")
    result = run_bench(n=args.n, seed=args.seed, quick=args.quick, only=only, keep=keep, world=world,
                       gun=args.gun, config=args.config)
    _print_table(result)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 1 if result["errors"] else 0


def register(sub: Any) -> None:
    """Add ``gluecell bench``."""
    p = sub.add_parser("bench", help="per-stage latency, accuracy vs ground truth, throughput (JSON + table)")
    p.add_argument("--n", type=int, default=12, help="held-out world pairs to generate (default 12)")
    p.add_argument("--seed", type=int, default=BENCH_SEED, help=f"seed of the held-out world (default {BENCH_SEED})")
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    p.add_argument("--only", help="comma-separated sections, e.g. perception,deformation")
    p.add_argument("--keep", help="generate the bench world into this folder and keep it (reused if present)")
    p.add_argument("--world", default="1",
                   help="bench world: 1 (datasets/world, default) or 2 (world2: the independent test world)")
    p.add_argument("--gun", type=Path, help="gun calibration (`gluecell gun calibrate`) the planner benches use")
    p.add_argument("--config", type=Path, help="cell.toml whose [pathplan] table the planner benches use")
    p.add_argument("--out", default="bench.json", help="JSON output path (default bench.json)")
    p.set_defaults(func=_cmd_bench)


