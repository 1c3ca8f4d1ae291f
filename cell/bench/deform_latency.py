"""Latency of the deformation step as the cell runs it (issue 14 goal: p95 <= 100 ms on 2 cores).

The configuration is the cell's (:class:`gluecell.cell.control.pipeline.RealPipeline`): the perceived scans, the
style's nominal upper and sole from the style library (registered by ICP onto the scans) and the shipped depth
calibration, through :func:`gluecell.deformation.line.predict_bite_line`. A style the library does not hold
(world 2's) takes its own CAD nominal (:func:`gluecell.cell.sim.references.nominal_world2`, as the error
budget does), else none. The time is the prediction's own (scans in, line and sigma out);
perception is not in it. Each pair is predicted ``repeat`` times in a row, the first prediction of a style
included (it fills the per-style caches, as the first pair of a style does in the cell).

Bench rows (``bench(ctx)``): ``deform_cell_latency_p50_ms`` / ``deform_cell_latency_p95_ms`` over all
predictions, ``deform_cell_latency_first_ms_max`` (the slowest first prediction of a pair) and
``deform_cell_pairs``.

As a tool (``python -m gluecell.cell.bench.deform_latency``):

- ``prepare DATASET OUT [--split test --limit N]``: perceive the pairs' scans once and keep them with their
  references (``OUT/<id>.npz``) so that timing runs do not repeat perception;
- ``run OUT [--repeat 3 --save LINES.npz --compare LINES.npz --profile 25 --serial --threads]``: time the
  predictions, keep each pair's line and sigma, compare them with a saved run (largest point distance, mm) and
  print cProfile's top functions; ``--serial``: without the deformation step's second thread (runs with and
  without it, interleaved, show what the thread gains: only where the machine has a second core free);
  ``--threads``: each thread's CPU share per prediction (:func:`thread_split`) and the critical path it gives on
  two free cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bench", "prepare", "load_pairs", "time_pairs", "compare_lines", "stage_summary", "thread_split"]

#: Predictions per pair (the first fills the style's caches).
REPEAT = 3


def _scan_pair(dataset: Any, sid: str) -> tuple[Any, Any, Any] | None:
    """(work item, upper scan, sole scan) perceived from the pair's frames; None when perception refuses."""
    from gluecell.core.errors import GlueCellError
    from gluecell.perception.scan import scan_part_frames

    inp = dataset.inputs(sid)
    try:
        up = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
        so = scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid)
    except GlueCellError:
        return None
    return inp["workitem"], up, so


def _references(cache: dict, item: Any) -> tuple[Any, Any]:
    """The style library's (upper, sole) references of ``item``; for a style it does not hold, the style's own
    CAD nominal where world 2 makes it (as the error budget does); else (None, None)."""
    from gluecell.cell.bench.worlds import style_references
    from gluecell.cell.sim.references import nominal_world2

    ref, sref, _ = style_references(cache, item, None)
    if ref is None:
        cad = nominal_world2(cache, item)
        if cad is not None:
            ref, sref = cad["upper"], cad["sole"]
    return ref, sref


def prepare(dataset_dir: Path, out: Path, split: str | None = "test", limit: int | None = None) -> list[Path]:
    """Perceive the pairs' scans and write them with their references to ``out/<id>.npz``; returns the files."""
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(dataset_dir)
    ids = ds.ids(split) if split else ds.ids()
    out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    files = []
    for sid in ids[:limit]:
        got = _scan_pair(ds, sid)
        if got is None:
            continue
        item, up, so = got
        ref, sref = _references(cache, item)
        arrays = {"up_p": up.points, "up_n": up.normals, "so_p": so.points, "so_n": so.normals}
        if ref is not None:
            arrays.update(ref_p=ref[0], ref_n=ref[1], sref_p=sref[0], sref_n=sref[1])
        key = f"{item.style}|{float(item.size_eu)}|{item.side}"
        path = out / f"{dataset_dir.name}-{sid}.npz"
        np.savez(path, style=item.style, key=key, **arrays)
        files.append(path)
    return files


def load_pairs(folder: Path) -> list[dict[str, Any]]:
    """The pairs written by :func:`prepare`, the references of one style shared (same arrays, as in the cell)."""
    from gluecell.core.types import PartScan

    refs: dict[str, tuple] = {}
    pairs = []
    for path in sorted(folder.glob("*.npz")):
        z = np.load(path)
        key = str(z["key"])
        if "ref_p" in z and key not in refs:
            refs[key] = ((z["ref_p"], z["ref_n"]), (z["sref_p"], z["sref_n"]))
        ref, sref = refs.get(key, (None, None))
        pairs.append({
            "id": path.stem,
            "style": str(z["style"]),
            "upper": PartScan(part="upper", points=z["up_p"], normals=z["up_n"], item_id=path.stem),
            "sole": PartScan(part="sole", points=z["so_p"], normals=z["so_n"], item_id=path.stem),
            "reference": ref,
            "sole_reference": sref,
        })  # fmt: skip
    return pairs


def predict_cell(pair: dict[str, Any], calibration: Any) -> Any:
    """The cell's prediction of one pair (:func:`gluecell.deformation.line.predict_bite_line`)."""
    from gluecell.deformation.line import predict_bite_line

    return predict_bite_line(pair["upper"], pair["sole"], reference=pair["reference"],
                             sole_reference=pair["sole_reference"], style=pair["style"], calibration=calibration,
                             check_confidence=False)  # fmt: skip


def time_pairs(pairs: list[dict[str, Any]], repeat: int = REPEAT, serial: bool = False) -> dict[str, Any]:
    """Predict every pair ``repeat`` times: {"ms": {id: [wall ms...]}, "cpu_ms": {id: [CPU ms of the process, all
    threads...]}, "lines": {id: (line, sigma)}}. On a loaded machine the CPU time is the steadier figure.
    ``serial``: without the deformation step's second thread (``deformation.parallel.ENABLED`` off meanwhile),
    to see what the thread gains where two cores are free."""
    from gluecell.deformation import parallel

    was, parallel.ENABLED = parallel.ENABLED, parallel.ENABLED and not serial
    try:
        return _time_pairs(pairs, repeat)
    finally:
        parallel.ENABLED = was


def _time_pairs(pairs: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration

    cal = load_calibration(DEFAULT_CALIBRATION)
    ms: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    lines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for r in range(repeat):
        for p in pairs:
            t0, c0 = time.perf_counter(), time.process_time()
            pl = predict_cell(p, cal)
            ms.setdefault(p["id"], []).append((time.perf_counter() - t0) * 1e3)
            cpu.setdefault(p["id"], []).append((time.process_time() - c0) * 1e3)
            if r == 0:
                lines[p["id"]] = (pl.line, pl.sigma)
    return {"ms": ms, "cpu_ms": cpu, "lines": lines}


def compare_lines(lines: dict[str, tuple[np.ndarray, np.ndarray]], saved: Path) -> dict[str, tuple[float, float]]:
    """{id: (largest distance of a line point to the saved line, mm; largest sigma change, mm)}."""
    from gluecell.core.geometry import polyline_distance

    z = np.load(saved)
    out = {}
    for sid, (line, sigma) in lines.items():
        if f"{sid}/line" not in z:
            continue
        old, old_s = z[f"{sid}/line"], z[f"{sid}/sigma"]
        d = max(polyline_distance(line, old).max(), polyline_distance(old, line).max())
        ds = float(np.abs(sigma - old_s).max()) if sigma.shape == old_s.shape else float("nan")
        out[sid] = (float(d) * 1e3, ds * 1e3)
    return out


def _summary(ms: dict[str, list[float]]) -> dict[str, float]:
    allv = [v for vals in ms.values() for v in vals]
    return {
        "deform_cell_pairs": float(len(ms)),
        "deform_cell_latency_p50_ms": float(np.percentile(allv, 50)),
        "deform_cell_latency_p95_ms": float(np.percentile(allv, 95)),
        "deform_cell_latency_first_ms_max": float(max(vals[0] for vals in ms.values())),
    }


def bench(ctx: Any) -> dict[str, float]:
    """Latency of the cell's deformation step on the dataset's test pairs (module docstring)."""
    import tempfile

    from gluecell.cell.bench.worlds import is_test_world
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(ctx.dataset)
    split = None if is_test_world(ds) else "test"
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(ctx.dataset), Path(tmp), split, 4 if ctx.quick else None)
        pairs = load_pairs(Path(tmp))
    if not pairs:
        return {"deform_cell_pairs": 0.0}
    return _summary(time_pairs(pairs, REPEAT)["ms"])


@contextmanager
def _timed_parts(acc: dict[str, float], mark: dict[str, float]) -> Iterator[None]:
    """Within the block, the thread CPU (``time.thread_time``) of the sole thread's two jobs and of the calling
    thread up to the blend with the sole reference is added to ``acc`` (``mark["t0"]``: the calling thread's CPU
    clock at the prediction's start)."""
    from gluecell.deformation import inputs, parallel, predict

    chain, blend = parallel._sole_chain, inputs.blend_with_reference
    jobs = {"sole_bonds_and_deformed": predict.sole_bonds_and_deformed, "upper_bond_region": predict.upper_bond_region}

    def timed_chain(pre: Any) -> None:
        c = time.thread_time()
        chain(pre)
        acc["sole_before"] += time.thread_time() - c

    def timed(fn: Any) -> Any:
        def job(*args: Any) -> Any:
            c = time.thread_time()
            try:
                return fn(*args)
            finally:
                acc["sole_after"] += time.thread_time() - c

        return job

    def timed_blend(*args: Any) -> Any:
        acc["calling_before"] += time.thread_time() - mark["t0"]
        return blend(*args)

    parallel._sole_chain, inputs.blend_with_reference = timed_chain, timed_blend
    for name, fn in jobs.items():
        setattr(predict, name, timed(fn))
    try:
        yield
    finally:
        parallel._sole_chain, inputs.blend_with_reference = chain, blend
        for name, fn in jobs.items():
            setattr(predict, name, fn)


def thread_split(pairs: list[dict[str, Any]], repeat: int = 2) -> dict[str, float]:
    """CPU ms per prediction of each thread's share, the second thread on (steady state: one warm-up round first):
    ``calling_before`` (the calling thread up to the blend with the sole reference, which waits on the other),
    ``calling_after`` (the rest of the calling thread), ``sole_before`` (the sole thread's scan sections, checks,
    reference registration and sections), ``sole_after`` (its bond regions and deformed sole, which start after
    the attach pose and after the station solve), and
    ``critical_ms`` = max(befores) + max(afters), an estimate of the wall time on two free cores (hand-overs
    not counted). Pairs without a sole reference have no blend: use pairs with references."""
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration

    cal = load_calibration(DEFAULT_CALIBRATION)
    acc = dict.fromkeys(("calling_before", "sole_before", "sole_after"), 0.0)
    mark = {"t0": 0.0}
    total = 0.0
    with _timed_parts(acc, mark):
        for r in range(repeat + 1):
            if r == 1:
                acc.update(dict.fromkeys(acc, 0.0))
                total = 0.0
            for p in pairs:
                mark["t0"] = time.thread_time()
                predict_cell(p, cal)
                total += time.thread_time() - mark["t0"]
    n = max(repeat * len(pairs), 1)
    out = {k: v * 1e3 / n for k, v in acc.items()}
    out["calling_after"] = total * 1e3 / n - out["calling_before"]
    out["critical_ms"] = max(out["calling_before"], out["sole_before"]) + max(out["calling_after"], out["sole_after"])
    return {k: round(v, 1) for k, v in out.items()}


def _print_profile(pairs: list[dict[str, Any]], top: int) -> None:
    import cProfile
    import pstats

    from gluecell.deformation import parallel
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration

    cal = load_calibration(DEFAULT_CALIBRATION)
    for p in pairs:  # warm the caches first: the profile is of the steady state
        predict_cell(p, cal)
    prof = cProfile.Profile(time.process_time)  # CPU time: the shared machine's load inflates wall time
    was, parallel.ENABLED = parallel.ENABLED, False  # cProfile sees one thread: everything in this one
    try:
        prof.enable()
        for p in pairs:
            predict_cell(p, cal)
        prof.disable()
    finally:
        parallel.ENABLED = was
    st = pstats.Stats(prof)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    print("stages, CPU ms per pair under cProfile:", stage_summary(st, len(pairs)))


#: The deformation step's stages in :func:`stage_summary` (function names; nested ones are not double counted).
STAGES = ("predict_attach", "rigid_icp", "upper_sections", "sole_sections", "solve_stations", "check_upper_scan",
          "check_sole_shape", "surface_polyline", "deform_sole", "find_attach_pose")


def stage_summary(stats: Any, n_pairs: int) -> dict[str, float]:
    """{stage: cumulative CPU ms per pair} from a ``pstats.Stats`` of ``n_pairs`` predictions (:data:`STAGES`;
    ``rest``: ``predict_attach`` less the others)."""
    out = {name: 0.0 for name in STAGES}
    for (path, _, name), (_, _, _, cum, _) in stats.stats.items():
        if name in out and "deformation" in path:
            out[name] += cum * 1e3 / max(n_pairs, 1)
    total = out.pop("predict_attach")
    rest = total - sum(out.values())
    return {"total": round(total, 1), **{k: round(v, 1) for k, v in out.items()}, "rest": round(rest, 1)}


def main(argv: list[str] | None = None) -> None:
    """The tool's command line (module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m gluecell.cell.bench.deform_latency")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--split", default="test", help="split of the dataset ('all': every pair)")
    p.add_argument("--limit", type=int, default=None)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--repeat", type=int, default=REPEAT)
    r.add_argument("--save", type=Path, default=None)
    r.add_argument("--compare", type=Path, default=None)
    r.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions")
    r.add_argument("--serial", action="store_true", help="without the deformation step's second thread")
    r.add_argument("--threads", action="store_true", help="print each thread's CPU share (thread_split)")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        files = prepare(a.dataset, a.out, None if a.split == "all" else a.split, a.limit)
        print(f"{len(files)} pairs written to {a.out}")
        return
    pairs = load_pairs(a.folder)
    res = time_pairs(pairs, a.repeat, serial=a.serial)
    for sid, vals in res["ms"].items():
        cpu = " ".join(f"{v:.0f}" for v in res["cpu_ms"][sid])
        print(f"{sid}: " + " ".join(f"{v:.0f}" for v in vals) + f" ms (CPU {cpu} ms)")
    print("wall", {k: round(v, 1) for k, v in _summary(res["ms"]).items()})
    print("cpu ", {k: round(v, 1) for k, v in _summary(res["cpu_ms"]).items()})
    if a.save is not None:
        arrays = {f"{sid}/{k}": v for sid, (ln, sg) in res["lines"].items() for k, v in (("line", ln), ("sigma", sg))}
        np.savez(a.save, **arrays)
    if a.compare is not None:
        diff = compare_lines(res["lines"], a.compare)
        for sid, (d, ds) in diff.items():
            print(f"{sid}: line moved {d:.4f} mm, sigma changed {ds:.4f} mm")
        worst, worst_s = max(d for d, _ in diff.values()), max(ds for _, ds in diff.values())
        print(f"worst line change {worst:.4f} mm ({worst:.1e} mm), sigma {worst_s:.1e} mm, over {len(diff)} pairs")
    if a.threads:
        print("CPU ms per prediction by thread:", thread_split([p for p in pairs if p["sole_reference"] is not None]))
    if a.profile:
        _print_profile(pairs, a.profile)


if __name__ == "__main__":
    main()
