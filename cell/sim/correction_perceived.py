"""Spray outcomes on what the cell really has: perceived scans and the line the cell plans to.

The training labels of the learned correction (:mod:`gluecell.pathplan.correction`) and its held-out evaluation,
on the pair's own camera frames (perception's clouds, not ideal scans) and the line the cell plans to:

- ``predicted``: the deformation step's line with its per-point sigma
  (:func:`gluecell.deformation.line.predict_bite_line`: the style's CAD references and the shipped calibration
  as the demo and ``gluecell plan`` use them; none for a style the library does not hold, as world 2's);
- ``marked``: the operator's marked line (:func:`gluecell.cell.sim.outcome.marked_bite_line`) with the marking
  tolerance ``MARKED_SIGMA_M`` as its sigma (what the demo plans to when a prediction is refused).

Each is planned by the planning policy the cell uses (:func:`gluecell.pathplan.safety.plan_checked`: per-point
margins of 2 sigma) and sprayed by the world's true spray simulator (the hidden gun, mist, valve delays, path
errors). Labels are as in :mod:`gluecell.cell.sim.outcomes`: per edge-pass waypoint, ``margin - edge`` where
``edge`` is the glue's top edge measured from the TRUE line on the true mesh. So the network learns the gun's
mismatch and the line's typical error together, which is what the cell meets at run time.

Truth side (the simulated cell may import the world); the planner only ever sees the scans and the line.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import save_npz
from gluecell.core.fileio import atomic_write_json
from gluecell.pathplan.correction_train import OUTCOMES_FORMAT

log = logging.getLogger(__name__)

__all__ = ["LINE_KINDS", "PerceivedOptions", "perceived_scans", "cell_line", "plan_cell", "collect_perceived",
           "one_pair", "pair_seed"]  # fmt: skip

#: The lines the cell plans to (see the module docstring).
LINE_KINDS = ("predicted", "marked")
#: The predictor's confidence limit (p95 sigma, m; ``PredictConfig.max_sigma``): a line over it is planned
#: anyway here (as the end-to-end bench does), so the correction also sees the lines the cell would hand on.
LOW_CONFIDENCE_M = 1.0e-3


@dataclass(frozen=True)
class PerceivedOptions:
    """Collection settings: splits (comma-separated), pair limit, line kinds, spray runs, seed, label margin (mm),
    worker processes."""

    split: str = "train,val"
    n: int | None = None
    lines: tuple[str, ...] = LINE_KINDS
    runs: int = 2
    seed: int = 0
    margin_mm: float = 1.0
    workers: int = 1

    def __post_init__(self) -> None:
        bad = [k for k in self.lines if k not in LINE_KINDS]
        if bad or not self.lines:
            raise ValueError(f"line kinds must be among {LINE_KINDS}, got {list(self.lines)}")
        if self.runs < 1 or self.workers < 1:
            raise ValueError("runs and workers must be >= 1")


def perceived_scans(ds: Any, sid: str) -> tuple[dict[str, Any], Any]:
    """The pair's depth frames through perception: ``({"upper": PartScan, "sole": PartScan}, work item)``."""
    from gluecell.perception.scan import scan_part_frames

    inp = ds.inputs(sid)
    return {p: scan_part_frames(inp["frames"][p], p, item_id=sid) for p in ("upper", "sole")}, inp["workitem"]


def cell_line(kind: str, scans: dict[str, Any], truth: dict[str, Any], item: Any, cache: dict,
              seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """The line of ``kind`` the cell plans to: (line (m, 3) base_link, per-point sigma (m,) metres, reasons).

    Raises:
        GlueCellError: the prediction failed (bad scans, or too uncertain: the cell hands it to the operator).
    """
    from gluecell.cell.control.pipeline import MARKED_SIGMA_M
    from gluecell.cell.sim.outcome import marked_bite_line
    from gluecell.deformation.line import predict_bite_line

    if kind == "marked":
        line = marked_bite_line(truth, seed=seed)
        return line, np.full(len(line), MARKED_SIGMA_M), []
    ref, sref, cal = _style_library(cache, item)
    pl = predict_bite_line(scans["upper"], scans["sole"], reference=ref, sole_reference=sref, style=item.style,
                           calibration=cal, check_confidence=False)  # fmt: skip
    why = list(pl.reasons) + (["line uncertain: low confidence"] if pl.sigma_p95_m > LOW_CONFIDENCE_M else [])
    return np.asarray(pl.line), np.asarray(pl.sigma), why


def _style_library(cache: dict, item: Any) -> tuple[Any, Any, Any]:
    """(upper reference, sole reference, calibration) as the cell has them: the style library's CAD nominals and
    the shipped calibration learnt with them; for a style the library does not hold (world 2's), none of the
    three (the calibration was learnt with references), as the benches do (``cell.bench.worlds``)."""
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.core.errors import GlueCellError
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration

    if "calibration" not in cache:
        cache["calibration"] = load_calibration(DEFAULT_CALIBRATION)
    try:
        return nominal_upper(cache, item)[:2], nominal_sole(cache, item), cache["calibration"]
    except (GlueCellError, KeyError, ValueError) as exc:
        log.info("style %r not in the style library (%s): no reference, no calibration", item.style, exc)
        return None, None, None


def plan_cell(scans: dict[str, Any], line: np.ndarray, sigma: np.ndarray, reasons: list[str],
              correction: Any = None) -> Any:  # fmt: skip
    """Both parts planned by the cell's policy (per-point 2-sigma margins): a CheckedPlan."""
    from gluecell.pathplan.safety import plan_checked

    up, so = scans["upper"], scans["sole"]
    return plan_checked((up.points, up.normals), (so.points, so.normals), line, sigma_m=sigma,
                        line_reasons=reasons, correction=correction)  # fmt: skip


def pair_seed(sid: str, seed: int) -> int:
    """A per-pair seed (line marking, spray draws) from the pair id and a run seed."""
    return (zlib.crc32(str(sid).encode()) + 7919 * seed) % (2**31)


def one_pair(dataset: str, sid: str, kinds: tuple[str, ...], runs: int, seed: int,
             margin_mm: float) -> dict[str, Any]:  # fmt: skip
    """Labels of one pair per line kind: ``{kind: npz dict}`` or ``{kind: "refused: ..."}`` (worker entry)."""
    from gluecell.cell.sim.outcomes import pair_labels
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(dataset)
    truth = ds.truth(sid)
    s = pair_seed(sid, seed)
    out: dict[str, Any] = {}
    try:
        scans, item = perceived_scans(ds, sid)
    except GlueCellError as exc:
        return {k: f"refused: perception: {exc}" for k in kinds}
    for kind in kinds:
        try:
            line, sig, why = cell_line(kind, scans, truth, item, {}, s)
            pp = plan_cell(scans, line, sig, why).pair.parts["upper"]
        except GlueCellError as exc:
            out[kind] = f"refused: {exc}"
            continue
        lab = pair_labels(truth, pp, runs, s, margin_mm)
        lab["line_kind"] = np.array([LINE_KINDS.index(kind)])
        out[kind] = lab
    return out


def _tasks(ds: Any, opts: PerceivedOptions) -> list[str]:
    ids = [i for sp in opts.split.split(",") for i in ds.ids(sp.strip())]
    return ids[: opts.n] if opts.n else ids


def _results(dataset: str, todo: list[str], opts: PerceivedOptions) -> Iterator[tuple[str, dict[str, Any]]]:
    args = (opts.lines, opts.runs, opts.seed, opts.margin_mm)
    if opts.workers <= 1:
        for sid in todo:
            yield sid, one_pair(dataset, sid, *args)
        return
    with ProcessPoolExecutor(max_workers=opts.workers) as pool:
        futs = {sid: pool.submit(one_pair, dataset, sid, *args) for sid in todo}
        for sid, fut in futs.items():
            yield sid, fut.result()


def collect_perceived(dataset: str | Path, out: str | Path, opts: PerceivedOptions) -> dict[str, Any]:
    """Label every pair of ``opts.split`` per line kind into ``out/<id>_<kind>.npz`` and ``out/meta.json``.

    Resumable: a pair whose files (or recorded refusal) exist is skipped; meta.json is rewritten after every pair,
    so an interrupted run loses at most the pairs in flight.
    """
    from rich.progress import Progress

    from gluecell.core.fileio import read_json
    from gluecell.datasets.format import open_dataset
    from gluecell.pathplan.correction import planner_fingerprint

    ds = open_dataset(dataset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = read_json(out / "meta.json") if (out / "meta.json").exists() else {}
    refused: dict[str, str] = dict(old.get("refused", {}))
    ids = _tasks(ds, opts)
    names = [f"{sid}_{k}" for sid in ids for k in opts.lines]
    todo = [sid for sid in ids if any(not (out / f"{sid}_{k}.npz").exists() and f"{sid}_{k}" not in refused
                                      for k in opts.lines)]  # fmt: skip
    meta = {"format": OUTCOMES_FORMAT, "dataset": str(Path(dataset).resolve()), "split": opts.split,
            "runs": opts.runs, "seed": opts.seed, "margin_mm": opts.margin_mm, "scan": "perceived (camera frames)",
            "bite_line": "+".join(opts.lines), "line_kinds": list(opts.lines),
            "marked_sigma": "MARKED_SIGMA_M", "planner_fingerprint": planner_fingerprint()}  # fmt: skip

    def write_meta() -> None:
        done = [n for n in names if (out / f"{n}.npz").exists()]
        atomic_write_json(out / "meta.json", {**meta, "ids": done, "refused": refused})

    with Progress() as bar:
        task = bar.add_task(f"collect {opts.split} ({'+'.join(opts.lines)})", total=len(ids),
                            completed=len(ids) - len(todo))  # fmt: skip
        for sid, res in _results(str(dataset), todo, opts):
            for kind, lab in res.items():
                if isinstance(lab, str):
                    log.warning("correction collect: %s %s line: %s", sid, kind, lab)
                    refused[f"{sid}_{kind}"] = lab
                else:
                    save_npz(out / f"{sid}_{kind}.npz", lab)
            write_meta()
            bar.advance(task)
    write_meta()
    return read_json(out / "meta.json")
