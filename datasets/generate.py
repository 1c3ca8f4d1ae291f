"""Generate a dataset from the synthetic world: ``gluecell datasets generate``.

Samples are independent (sample ``i`` is seeded by ``SeedSequence(seed, spawn_key=(i,))``),
so the result does not depend on the number of workers or on the order they finish in, and
the same seed gives identical bytes. Each sample is written to ``.work/<id>/`` and renamed
into place (inputs first, truth last), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import save_npz
from gluecell.core.config import from_dict, to_dict
from gluecell.core.fileio import atomic_write_json, read_json
from gluecell.core.frames import save_frame
from gluecell.core.ply import write_ply

from .format import (
    DATASET_FORMAT,
    WORLD_GENERATOR,
    DatasetError,
    assign_splits,
    commit_sample,
    sample_ids,
    workitem_to_dict,
)

__all__ = ["GENERATOR_VERSION", "GenerateOptions", "generate_dataset", "generate_sample", "load_generate_config"]

GENERATOR_VERSION = WORLD_GENERATOR
MAX_SAMPLES = 100_000
#: Spawn key of the dataset's cell (its cameras' fixed errors): past every sample index, so never a sample's.
CELL_SPAWN_KEY = MAX_SAMPLES + 1


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate. ``world`` and ``scanner`` are the resolved world/scanner configs (dataclasses)."""

    n: int
    seed: int
    world: Any = None
    scanner: Any = None
    styles: tuple[str, ...] = ()
    workers: int = 2
    extra: dict[str, Any] = field(default_factory=dict)
    #: 1: the world of ``datasets/world/``; 2: the independent test world of ``datasets/world2/``.
    world_id: int = 1


def load_generate_config(path: str | os.PathLike[str] | None) -> tuple[Any, Any]:
    """World and scanner configs from a TOML file with optional ``[world]`` and ``[scanner]`` tables."""
    from gluecell.core.config import read_toml

    from .world import WorldConfig
    from .world.scanner import ScannerConfig

    raw = read_toml(path, tables=("world", "scanner")) if path is not None else {}
    return from_dict(WorldConfig, raw.get("world", {}), path="world"), from_dict(
        ScannerConfig, raw.get("scanner", {}), path="scanner"
    )


def _write_sample(work: Path, pair: Any, shots: dict[str, Any], cameras: Any) -> None:
    inputs, truth = work / "inputs", work / "truth"
    inputs.mkdir(parents=True)
    truth.mkdir(parents=True)
    atomic_write_json(inputs / "workitem.json", workitem_to_dict(pair.item))
    for part, shot in shots.items():
        for k, frame in enumerate(shot.frames):
            save_frame(inputs / f"{part}_cam{k}.npz", frame)
    write_ply(truth / "upper.ply", pair.upper_mesh.vertices, faces=pair.upper_mesh.faces)
    write_ply(truth / "sole.ply", pair.sole_mesh.vertices, faces=pair.sole_mesh.faces)
    save_npz(
        truth / "truth.npz",
        {
            "bite_line": pair.bite_line,
            "feather_edge": pair.feather_edge,
            "upper_bond_faces": pair.upper_bond_faces,
            "sole_bond_faces": pair.sole_bond_faces,
            "deformed_sole_vertices": pair.deformed_sole_vertices,
            "T_base_upper": pair.T_base_upper,
            "T_base_sole": pair.T_base_sole,
            "T_base_cam_true_upper": np.asarray(shots["upper"].T_base_cam_true),
            "T_base_cam_true_sole": np.asarray(shots["sole"].T_base_cam_true),
            **cameras.arrays(),
        },
    )
    atomic_write_json(truth / "params.json", pair.params.to_dict())


def generate_sample(root: Path, index: int, opts: GenerateOptions) -> float:
    """Make, scan and write sample ``index``; returns seconds spent. Idempotent for a complete sample."""
    from .world import make_pair
    from .world.scanner import scan_part

    sid = sample_ids(index + 1)[index]
    if (root / "truth" / sid).is_dir():
        return 0.0
    t0 = time.perf_counter()
    ss = np.random.SeedSequence(opts.seed, spawn_key=(index,))
    world_ss, scan_ss = ss.spawn(2)
    style = opts.styles[index % len(opts.styles)] if opts.styles else None
    pair = make_pair(world_ss, opts.world, style=style, item_id=sid)
    rng = np.random.default_rng(scan_ss)
    cameras = dataset_cameras(opts)
    shots = {part: scan_part(pair, part, rng, opts.scanner, cameras=cameras) for part in ("upper", "sole")}
    work = root / ".work" / sid
    shutil.rmtree(work, ignore_errors=True)
    _write_sample(work, pair, shots, cameras)
    commit_sample(root, sid, work)  # truth last: its presence marks the sample complete
    return time.perf_counter() - t0


def dataset_cameras(opts: GenerateOptions) -> Any:
    """The dataset's cell: every camera's fixed hand-eye error and depth scale/bias, drawn once from the seed
    (a real cell's errors stay put between scans, so calibration can remove them)."""
    from .world.scanner import draw_cell_cameras

    rng = np.random.default_rng(np.random.SeedSequence(opts.seed, spawn_key=(CELL_SPAWN_KEY,)))
    world = opts.world
    if world is None:  # the hidden hand-eye error is a world parameter; the scanner applies it
        return draw_cell_cameras(rng, opts.scanner)
    std = {"trans_std_m": world.calib_trans_std_m, "rot_std_deg": world.calib_rot_std_deg}
    return draw_cell_cameras(rng, opts.scanner, **std)


def _settings(opts: GenerateOptions) -> dict[str, Any]:
    out = {
        "generator": _sample_fn(opts)[1],
        "n": opts.n,
        "seed": opts.seed,
        "styles": list(opts.styles),
        "config": {"world": to_dict(opts.world), "scanner": to_dict(opts.scanner)},
    }
    if opts.world_id != 1:  # world 1's settings keep their old form, so its datasets still resume
        out["world_id"] = opts.world_id
    return out


def _sample_fn(opts: GenerateOptions) -> tuple[Callable[[Path, int, GenerateOptions], float], str]:
    """The sample writer and generator version of ``opts.world_id``."""
    if opts.world_id == 1:
        return generate_sample, GENERATOR_VERSION
    if opts.world_id == 2:
        from .world2.generate import GENERATOR2_VERSION, generate_sample2

        return generate_sample2, GENERATOR2_VERSION
    raise DatasetError(f"--world must be 1 or 2, got {opts.world_id}")


def generate_dataset(
    root: str | os.PathLike[str],
    opts: GenerateOptions,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate (or resume) a dataset in ``root``.

    Args:
        root: output folder; created if missing. An existing folder must hold the same settings.
        opts: what to generate.
        progress: called as ``progress(done, total)`` after each sample.

    Returns:
        ``{"generated": k, "skipped": m, "seconds_per_sample": [...], "info": info}``.
    """
    if not 1 <= opts.n <= MAX_SAMPLES:
        raise DatasetError(f"--n must be between 1 and {MAX_SAMPLES}, got {opts.n}")
    if opts.workers < 1:
        raise DatasetError(f"--workers must be >= 1, got {opts.workers}")
    sample_fn, version = _sample_fn(opts)
    root = Path(root)
    settings = _settings(opts)
    settings_path = root / "meta" / "generate.json"
    if settings_path.is_file():
        if read_json(settings_path) != settings:
            raise DatasetError(f"{root} holds a dataset generated with other settings; use another --out "
                               "or repeat the original command to resume")
    elif root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root} exists and is not an empty folder or a gluecell dataset")
    atomic_write_json(settings_path, settings)
    todo = [i for i, sid in enumerate(sample_ids(opts.n)) if not (root / "truth" / sid).is_dir()]
    seconds: list[float] = []
    done = opts.n - len(todo)
    if progress:
        progress(done, opts.n)
    if opts.workers == 1 or len(todo) <= 1:
        for i in todo:
            seconds.append(sample_fn(root, i, opts))
            done += 1
            if progress:
                progress(done, opts.n)
    else:
        # spawn: open3d and torch hold threads that do not survive fork.
        with ProcessPoolExecutor(max_workers=opts.workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(sample_fn, root, i, opts) for i in todo]
            for fut in as_completed(futures):
                seconds.append(fut.result())
                done += 1
                if progress:
                    progress(done, opts.n)
    shutil.rmtree(root / ".work", ignore_errors=True)
    info = {
        "format": DATASET_FORMAT,
        "generator": version,
        "seed": opts.seed,
        "counts": {"total": opts.n},
        "splits": assign_splits(opts.n, opts.seed),
        "config": settings["config"],
        "styles": settings["styles"],
    }
    info["counts"].update({k: len(v) for k, v in info["splits"].items()})
    if opts.world_id != 1:
        info["world"] = f"world{opts.world_id}"
    atomic_write_json(root / "meta" / "info.json", info)
    return {"generated": len(todo), "skipped": opts.n - len(todo), "seconds_per_sample": seconds, "info": info}
