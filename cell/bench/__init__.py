"""The bench, the evaluator behind ``gluecell bench`` (DESIGN.md, "Where the numbers are kept").

The bench generates a held-out dataset from the synthetic world (its own seed, never used for
training), times the world itself, then runs each stage's bench module
(``gluecell.cell.bench.<area>``, function ``bench(ctx) -> dict[str, float]``) and prints a
table and writes JSON. The bench is the evaluator: it may read truth through the dataset
loader; the pipeline it measures never does.
"""

from __future__ import annotations

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

__all__ = ["BenchContext", "BENCH_MODULES", "BENCH_SEED", "run_bench"]

#: Stage bench modules, in table order.
BENCH_MODULES: tuple[str, ...] = (
    "gluecell.cell.bench.perception",
    "gluecell.cell.bench.registration",
    "gluecell.cell.bench.deformation",
    "gluecell.cell.bench.pathplan",
    "gluecell.cell.bench.pipeline",
    "gluecell.cell.bench.measure",
    "gluecell.cell.bench.factory",
    "gluecell.cell.bench.variation",
    "gluecell.cell.bench.cell",
    "gluecell.cell.bench.robot",
    "gluecell.cell.bench.api",
    "gluecell.cell.bench.quality",
    "gluecell.cell.bench.budget",
    "gluecell.cell.bench.motion",
    "gluecell.cell.bench.deform_latency",
    "gluecell.cell.bench.correction",
)
#: Seed of the held-out bench world; training commands must not use it.
BENCH_SEED = 9001


@dataclass(frozen=True)
class BenchContext:
    """What a stage bench gets: a generated dataset with a ``test`` split, and the run options."""

    dataset: Path
    quick: bool
    seed: int
    #: Gun calibration file (``gluecell gun calibrate``) and cell.toml whose ``[pathplan]`` table the planner
    #: benches plan with (None: the shipped defaults).
    gun: Path | None = None
    config: Path | None = None


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def bench_world(root: Path, n: int, seed: int, workers: int, world_id: int = 1) -> dict[str, float]:
    """Generate ``n`` samples into ``root`` and time it (per sample on one worker, and wall with ``workers``).

    ``world_id`` 2 generates the independent test world (``gluecell.datasets.world2``) instead.
    """
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    styles: tuple[str, ...] = ()
    if world_id == 2:  # its styles in turn, so a small test split still holds each of them
        from gluecell.cell.sim.world import world2_styles_and_config

        styles, world, scanner = world2_styles_and_config()
    else:
        world, scanner = load_generate_config(None)
    opts = GenerateOptions(n=n, seed=seed, world=world, scanner=scanner, styles=styles, workers=workers,
                           world_id=world_id)  # fmt: skip
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
    n: int = 12, seed: int = BENCH_SEED, quick: bool = False, only: tuple[str, ...] = (), keep: Path | None = None,
    world: int = 1, gun: Path | None = None, config: Path | None = None,
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
            sections["world"] = bench_world(root, n, seed, workers=min(2, os.cpu_count() or 1), world_id=world)
        ctx = BenchContext(dataset=root, quick=quick, seed=seed, gun=gun, config=config)
        for name in BENCH_MODULES:
            area = name.rsplit(".", 1)[-1]
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
    out = {"format": "gluecell.bench/1", "machine": _machine(), "seed": seed, "sections": sections, "errors": errors}
    if world != 1:
        out["world"] = f"world{world}"
    if gun is not None or config is not None:
        out["planner"] = {"gun": None if gun is None else str(gun), "config": None if config is None else str(config)}
    return out
