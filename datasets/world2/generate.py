"""Write world-2 samples in the ``gluecell.dataset/1`` layout (called by :mod:`gluecell.datasets.generate`).

Sample ``i`` is seeded by ``SeedSequence(seed, spawn_key=(i,))`` like world 1, so the bytes do not
depend on the worker count; the cell's camera errors come from the seed alone (one cell). Besides
the depth frames, ``inputs/<id>/`` holds ``<part>_laser.ply``: the laser profiler's cloud (no
normals, outliers, uneven density), when ``Scanner2Config.laser_clouds`` is on.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import save_npz
from gluecell.core.config import from_dict
from gluecell.core.fileio import atomic_write_json
from gluecell.core.frames import save_frame
from gluecell.core.ply import write_ply

from ..format import commit_sample, sample_ids, workitem_to_dict
from .config import Scanner2Config, World2Config

__all__ = ["GENERATOR2_VERSION", "load_world2_config", "generate_sample2", "write_pair"]

GENERATOR2_VERSION = "gluecell-world2/1.0"


def load_world2_config(path: str | os.PathLike[str] | None) -> tuple[World2Config, Scanner2Config]:
    """World-2 configs from a TOML file with optional ``[world]`` and ``[scanner]`` tables."""
    from gluecell.core.config import read_toml

    raw = read_toml(path, tables=("world", "scanner")) if path is not None else {}
    return from_dict(World2Config, raw.get("world", {}), path="world"), from_dict(
        Scanner2Config, raw.get("scanner", {}), path="scanner"
    )


def write_pair(work: Path, pair: Any, shots: dict[str, Any], clouds: dict[str, np.ndarray]) -> None:
    """Write one pair's inputs and truth under ``work`` (``inputs/`` and ``truth/``)."""
    inputs, truth = work / "inputs", work / "truth"
    inputs.mkdir(parents=True)
    truth.mkdir(parents=True)
    atomic_write_json(inputs / "workitem.json", workitem_to_dict(pair.item))
    for part, (frames, _) in shots.items():
        for k, frame in enumerate(frames):
            save_frame(inputs / f"{part}_cam{k}.npz", frame)
    for part, pts in clouds.items():
        write_ply(inputs / f"{part}_laser.ply", pts, comment="gluecell world2 laser profiler")
    write_ply(truth / "upper.ply", pair.upper_vertices, faces=pair.upper_faces)
    write_ply(truth / "sole.ply", pair.sole_vertices, faces=pair.sole_faces)
    save_npz(truth / "truth.npz", {
        "bite_line": pair.bite_line,
        "feather_edge": pair.feather_edge,
        "upper_bond_faces": pair.upper_bond_faces,
        "sole_bond_faces": pair.sole_bond_faces,
        "deformed_sole_vertices": pair.deformed_sole_vertices,
        "T_base_upper": pair.T_base_upper,
        "T_base_sole": pair.T_base_sole,
        "T_base_cam_true_upper": shots["upper"][1],
        "T_base_cam_true_sole": shots["sole"][1],
    })  # fmt: skip
    atomic_write_json(truth / "params.json", pair.params)


def generate_sample2(root: Path, index: int, opts: Any) -> float:
    """Make, scan and write world-2 sample ``index``; returns seconds spent (0 for a complete sample)."""
    from .pair import make_pair2
    from .scanner import cell_errors, laser_cloud, scan_station

    sid = sample_ids(index + 1)[index]
    if (root / "truth" / sid).is_dir():
        return 0.0
    t0 = time.perf_counter()
    wcfg = opts.world or World2Config()
    scfg = opts.scanner or Scanner2Config()
    world_ss, scan_ss = np.random.SeedSequence(opts.seed, spawn_key=(index,)).spawn(2)
    style = opts.styles[index % len(opts.styles)] if opts.styles else None
    pair = make_pair2(world_ss, wcfg, style=style, item_id=sid)
    rng = np.random.default_rng(scan_ss)
    errs = cell_errors(opts.seed, 2 * len(scfg.azimuths_deg), scfg)
    shots = {part: scan_station(pair, part, rng, scfg, wcfg, errs) for part in ("upper", "sole")}
    clouds = {part: laser_cloud(pair, part, rng, scfg, wcfg) for part in ("upper", "sole")} if scfg.laser_clouds else {}
    work = root / ".work" / sid
    shutil.rmtree(work, ignore_errors=True)
    write_pair(work, pair, shots, clouds)
    commit_sample(root, sid, work)  # truth last: its presence marks the sample complete
    return time.perf_counter() - t0
