"""``gluecell bench``: the numbers every change is compared by (DESIGN.md, "Where the numbers are kept").

The bench generates a held-out dataset from the synthetic world (its own seed, never used for
training), times the world itself, then runs each stage's bench module
(``gluecell.cell.bench_<area>``, function ``bench(ctx) -> dict[str, float]``) and prints a
table and writes JSON. The bench is the evaluator: it may read truth through the dataset
loader; the pipeline it measures never does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BenchContext", "BENCH_MODULES", "run_bench", "register"]

#: Stage bench modules, in table order.
BENCH_MODULES: tuple[str, ...] = (
    "gluecell.cell.bench_perception",
    "gluecell.cell.bench_registration",
    "gluecell.cell.bench_deformation",
    "gluecell.cell.bench_pathplan",
    "gluecell.cell.bench_pipeline",
    "gluecell.cell.bench_measure",
)
#: Seed of the held-out bench world; training commands must not use it.
BENCH_SEED = 9001


@dataclass(frozen=True)
class BenchContext:
    """What a stage bench gets: a generated dataset with a ``test`` split, and the run options."""

    dataset: Path
    quick: bool
    seed: int


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def bench_world(root: Path, n: int, seed: int, workers: int) -> dict[str, float]:
    """Generate ``n`` samples into ``root`` and time it (per sample on one worker, and wall with ``workers``)."""
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    world, scanner = load_generate_config(None)
    opts = GenerateOptions(n=n, seed=seed, world=world, scanner=scanner, workers=workers)
    t0 = time.perf_counter()
    result = generate_dataset(root, opts)
    wall = time.perf_counter() - t0
    secs = result["seconds_per_sample"]
    return {
        "world_samples": float(n),
        "world_gen_per_sample_p50_s": _percentile(secs, 50),
        "world_gen_per_sample_p95_s": _percentile(secs, 95),
        "world_gen_wall_per_sample_s": wall / n,
    }


def _machine() -> dict[str, Any]:
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            mem_gb = round(int(fh.readline().split()[1]) / 1024**2, 1)
    except OSError:
        pass
    commit = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cores": os.cpu_count(), "mem_gb": mem_gb, "python": platform.python_version(), "commit": commit}


def run_bench(
    n: int = 12, seed: int = BENCH_SEED, quick: bool = False, only: tuple[str, ...] = (), keep: Path | None = None
) -> dict[str, Any]:
    """Run the bench; returns ``{"machine": ..., "sections": {name: {metric: value}}, "errors": {...}}``."""
    sections: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="gluecell-bench-"))
    root = keep if keep is not None else tmp / "world"
    try:
        if keep is not None and (keep / "meta" / "info.json").is_file():
            sections["world"] = {"world_samples": float(n)}
        else:
            sections["world"] = bench_world(root, n, seed, workers=min(2, os.cpu_count() or 1))
        ctx = BenchContext(dataset=root, quick=quick, seed=seed)
        for name in BENCH_MODULES:
            area = name.rsplit("_", 1)[-1]
            if only and area not in only:
                continue
            module = importlib.import_module(name)
            t0 = time.perf_counter()
            try:
                sections[area] = {k: float(v) for k, v in module.bench(ctx).items()}
            except Exception as exc:
                errors[area] = f"{type(exc).__name__}: {exc}"
            sections.setdefault(area, {})["bench_wall_s"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"format": "gluecell.bench/1", "machine": _machine(), "seed": seed, "sections": sections, "errors": errors}


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
    result = run_bench(n=args.n, seed=args.seed, quick=args.quick, only=only, keep=keep)
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
    p.add_argument("--out", default="bench.json", help="JSON output path (default bench.json)")
    p.set_defaults(func=_cmd_bench)


