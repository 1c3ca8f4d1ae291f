"""Generate an inspection dataset: ``gluecell datasets generate --kind inspection``.

Per pair ``i`` (seeded by ``SeedSequence(seed, spawn_key=(i,))``, so results do not depend on workers):
a world pair; a *predicted* bite line (the true line plus smooth error of a drawn sigma, as a calibrated
predictor would give, the sigma written into the plan); the upper planned on that line by ``pathplan`` with
the plan verb's safety margin (2 x sigma p95); a random fault set; the executed path sprayed, photographed
and labelled by the world (:func:`gluecell.datasets.world.uv_capture.capture_inspection`). Splits are by
pair, so views of one upper never sit in two splits. Each pair is written to ``.work/`` and renamed into
place (inputs first, labels last): an interrupted run resumes.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import save_npz
from gluecell.core.fileio import atomic_write_json, read_json
from gluecell.core.plan import Plan, write_plan

from ..format import DatasetError, assign_splits, sample_ids
from .format import INSPECTION_FORMAT, MASK_NAMES, save_view

__all__ = ["InspectionOptions", "generate_inspection", "generate_pair", "GENERATOR_VERSION"]

GENERATOR_VERSION = "gluecell-inspection/1.0"
#: Range of the predicted line's 1-sigma error (m) (chosen: deformation's calibrated predictor, ~0.3-1 mm).
SIGMA_RANGE_M = (0.2e-3, 0.6e-3)


@dataclass(frozen=True)
class InspectionOptions:
    """What to generate: pairs, seed, views per pair (of the station's ring), appearance shift, workers."""

    n: int
    seed: int
    views_per_pair: int = 4
    shifted: bool = False
    p_fault: float = 0.55
    workers: int = 2


def _predicted_line(line: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The true line plus smooth error of RMS ``sigma`` across it (vertical mostly), metres."""
    n = len(line)
    k = np.fft.rfftfreq(n, d=1.0 / n)
    spec = (rng.normal(size=(2, len(k))) + 1j * rng.normal(size=(2, len(k)))) * np.exp(-(k / 8.0) ** 2)
    spec[:, 0] = rng.normal(size=2) * 0.5 * n  # a bias too: predictors are often off as a whole
    wob = np.fft.irfft(spec, n=n, axis=1)
    wob *= sigma / np.maximum(wob.std(axis=1, keepdims=True) + np.abs(wob.mean(axis=1, keepdims=True)), 1e-12)
    tan = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    side = np.cross(tan, [0.0, 0.0, 1.0])
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-12)
    return line + wob[0, :, None] * np.cross(side, tan) + wob[1, :, None] * 0.2 * side


def _plan(pair: Any, rng: np.random.Generator) -> Plan:
    import trimesh

    from gluecell.pathplan.pipeline import PathplanConfig, plan_part

    sigma = float(rng.uniform(*SIGMA_RANGE_M))
    pred = _predicted_line(np.asarray(pair.bite_line), sigma, rng)
    pts, fi = trimesh.sample.sample_surface(pair.upper_mesh, 60_000, seed=int(rng.integers(2**31)))
    pts = pts + rng.normal(0.0, 0.2e-3, pts.shape)
    cfg = PathplanConfig()
    margin = min(max(cfg.region.bite_margin_mm, 2.0 * sigma * 1e3), 5.0)
    cfg = replace(cfg, region=replace(cfg.region, bite_margin_mm=margin))
    pp = plan_part("upper", pts, cfg, bite_line=pred, normals=np.asarray(pair.upper_mesh.face_normals[fi]))
    sig = np.full(len(pred), sigma) * rng.uniform(0.8, 1.2, len(pred))
    return Plan(bite_line=pred, paths=(pp.path,), extra={"bite_line_sigma": np.round(sig, 7).tolist()})


def generate_pair(root: Path, index: int, opts: InspectionOptions) -> float:
    """Make, spray, photograph and write pair ``index``; seconds spent (0 when already complete)."""
    from gluecell.datasets.world import make_pair
    from gluecell.datasets.world.uv_capture import capture_inspection
    from gluecell.datasets.world.uv_spray import draw_faults

    pid = sample_ids(index + 1)[index]
    if (root / "labels" / pid).is_dir():
        return 0.0
    t0 = time.perf_counter()
    world_ss, plan_ss, cap_ss = np.random.SeedSequence(opts.seed, spawn_key=(index,)).spawn(3)
    pair = make_pair(world_ss, None, item_id=pid)
    rng = np.random.default_rng(plan_ss)
    plan = _plan(pair, rng)
    faults = draw_faults(rng, float(plan.paths[0].t[-1]), opts.p_fault)
    views = sorted(rng.choice(8, size=min(opts.views_per_pair, 8), replace=False).tolist())
    cap = capture_inspection(pair, plan, faults, np.random.default_rng(cap_ss), shifted=opts.shifted, views=views)
    work = root / ".work" / pid
    shutil.rmtree(work, ignore_errors=True)
    (work / "inputs").mkdir(parents=True)
    (work / "labels").mkdir(parents=True)
    write_plan(work / "inputs" / "plan.json", plan)
    entries = {}
    for k, view, lab in zip(views, cap.views, cap.labels):
        save_view(work / "inputs" / f"view{k}.npz", view)
        save_npz(work / "labels" / f"view{k}.npz", {"masks": lab["masks"]})
        entries[str(k)] = {key: lab[key] for key in ("verdict", "defects", "overspray_mm", "gap_area_mm2",
                                                     "band_coverage")}  # fmt: skip
    atomic_write_json(work / "labels" / "labels.json", {"views": entries, "faults": faults.to_dict(),
                                                        "fault_kinds": list(faults.kinds),
                                                        "appearance": cap.appearance.to_dict()})  # fmt: skip
    for kind in ("inputs", "labels"):
        dest = root / kind / pid
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / kind, dest)
    shutil.rmtree(work, ignore_errors=True)
    return time.perf_counter() - t0


def _settings(opts: InspectionOptions) -> dict[str, Any]:
    return {"kind": "inspection", "n": opts.n, "seed": opts.seed, "views_per_pair": opts.views_per_pair,
            "shifted": opts.shifted, "p_fault": opts.p_fault}  # fmt: skip


def generate_inspection(root: str | os.PathLike[str], opts: InspectionOptions,
                        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Generate (or resume) an inspection dataset in ``root``; returns counts and the info written."""
    if not 1 <= opts.n <= 100_000 or not 1 <= opts.views_per_pair <= 8 or opts.workers < 1:
        raise DatasetError("--n must be 1..100000, --views 1..8 and --workers >= 1")
    root = Path(root)
    settings = _settings(opts)
    spath = root / "meta" / "generate.json"
    if spath.is_file():
        if read_json(spath) != settings:
            raise DatasetError(f"{root} holds a dataset generated with other settings; use another --out "
                               "or repeat the original command to resume")  # fmt: skip
    elif root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root} exists and is not an empty folder or a gluecell dataset")
    atomic_write_json(spath, settings)
    todo = [i for i, pid in enumerate(sample_ids(opts.n)) if not (root / "labels" / pid).is_dir()]
    done = opts.n - len(todo)
    secs: list[float] = []
    if progress:
        progress(done, opts.n)
    if opts.workers == 1 or len(todo) <= 1:
        for i in todo:
            secs.append(generate_pair(root, i, opts))
            done += 1
            if progress:
                progress(done, opts.n)
    else:
        with ProcessPoolExecutor(max_workers=opts.workers, mp_context=get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(generate_pair, root, i, opts) for i in todo]):
                secs.append(fut.result())
                done += 1
                if progress:
                    progress(done, opts.n)
    shutil.rmtree(root / ".work", ignore_errors=True)
    pair_splits = assign_splits(opts.n, opts.seed)
    splits = {s: [f"{p}/{f.stem}" for p in ids for f in sorted((root / "inputs" / p).glob("view*.npz"))]
              for s, ids in pair_splits.items()}  # fmt: skip
    info = {"format": INSPECTION_FORMAT, "generator": GENERATOR_VERSION, "seed": opts.seed, "settings": settings,
            "masks": list(MASK_NAMES), "splits": splits,
            "counts": {"pairs": opts.n, **{s: len(v) for s, v in splits.items()}}}  # fmt: skip
    atomic_write_json(root / "meta" / "info.json", info)
    return {"generated": len(todo), "skipped": opts.n - len(todo), "seconds_per_pair": secs, "info": info}
