"""The simulated inspection station: after the upper is sprayed, the world photographs what was really executed.

When an upper goal of a pair finishes, :func:`capture_item` (on a worker thread) turns the gun-on samples of
the pair's upper goals into the nozzle paths that were executed, sprays them in the world with this run's
faults (a clogged nozzle's flow, a part off its station) on the true upper refined near its bite line
(:mod:`.finemesh`: the world's 2.6 mm faces would put glue up to half a face above the line) and renders the
UV-A views, depth before/after and calibration with :func:`gluecell.datasets.world.uv_capture.capture_inspection`.

Cameras are not on ROS: the views go where the controller reads them, ``<camera_root>/../inspection/<id>/``
(``view<k>.npz`` in the inspection dataset's view format, and ``views.json`` naming the goals they show),
renamed into place whole. The truth labels (verdict, defect types, overspray, gap area per view) go to
``<camera_root>/../inspection_truth/<id>.json``, which only the demo's and the bench's evaluation read: the
controller never looks there (tests/test_truth_isolation.py keeps the world out of the pipeline packages).
"""

from __future__ import annotations

import json
import logging
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TRUTH_DIR", "truth_path", "capture_item", "executed_upper_paths", "read_truth"]

LOG = logging.getLogger(__name__)
#: Folder beside the cameras' with the inspection truth labels (evaluation only).
TRUTH_DIR = "inspection_truth"


def truth_path(camera_root: str | Path, item_id: str) -> Path:
    """Where the truth labels of ``item_id``'s inspection views are written (evaluation only)."""
    return Path(camera_root).resolve().parent / TRUTH_DIR / f"{item_id}.json"


def executed_upper_paths(goals: list[Any], tick_s: float) -> list[Any]:
    """The executed gun-on stretches over the upper as :class:`~gluecell.core.types.SprayPath`."""
    from gluecell.core.types import SprayPath

    from .executed import gun_on_paths

    out = []
    for g in goals:
        for p in gun_on_paths(g.gun_on_tau, g.gun_on_q, tick_s, getattr(g, "gun_after_tau", None),
                              getattr(g, "gun_after_q", None)):  # fmt: skip
            if p["part"] == "upper":
                out.append(SprayPath(part="upper", t=p["t"], xyz=p["xyz"], quat_xyzw=p["quat_xyzw"], spray=p["spray"]))
    return out


def capture_item(world: Path, camera_root: Path, item_id: str, goal_ids: list[str], goals: list[Any],
                 tick_s: float, flow_factor: float, offset_m: tuple[float, float, float]) -> Path | None:  # fmt: skip
    """Render and write the inspection views of ``item_id``'s executed upper spray; returns the views' folder.

    Args:
        goal_ids / goals: the pair's upper goals (ids and their executed samples).
        flow_factor: the gun's flow fraction during the run (a clogged nozzle < 1).
        offset_m: where the pair really stood against its scan (a part off its station).
    """
    from gluecell.cell.robot.cameras import INSPECTION_META, inspection_root
    from gluecell.core.fileio import atomic_write_json
    from gluecell.datasets.format import open_dataset
    from gluecell.datasets.inspection.format import save_view
    from gluecell.datasets.world.uv_capture import capture_inspection
    from gluecell.datasets.world.uv_spray import SprayFaults

    paths = executed_upper_paths(goals, tick_s)
    if not paths:
        return None
    faults = SprayFaults(pressure_factor=float(min(max(flow_factor, 0.0), 2.0)),
                         part_offset=(float(offset_m[0]), float(offset_m[1]), 0.0))  # fmt: skip
    seed = int(item_id) if item_id.isdigit() else zlib.crc32(item_id.encode())
    from .finemesh import refine_near_line

    truth_pair = refine_near_line(open_dataset(world).truth(item_id))  # the film resolved at the tolerance's scale
    cap = capture_inspection(truth_pair, paths, faults, np.random.default_rng(seed + 911))
    root = inspection_root(camera_root)
    tmp, dst = root / f".{item_id}.tmp", root / item_id
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for k, v in enumerate(cap.views):
        save_view(tmp / f"view{k}.npz", v)
    atomic_write_json(tmp / INSPECTION_META, {"item_id": item_id, "goals": list(goal_ids), "n_views": len(cap.views)})
    truth = {"item_id": item_id, "goals": list(goal_ids), "faults": faults.to_dict(), "fault_kinds": list(faults.kinds),
             "verdict": "fail" if any(lb["verdict"] == "fail" for lb in cap.labels) else "pass",
             "defects": sorted({d for lb in cap.labels for d in lb["defects"]}),
             "views": [{k: lb[k] for k in ("verdict", "defects", "overspray_mm", "gap_area_mm2", "band_coverage")}
                       for lb in cap.labels]}  # fmt: skip
    tp = truth_path(camera_root, item_id)
    tp.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(tp, truth)
    if dst.exists():  # an earlier attempt's views: replaced whole
        old = root / f".{item_id}.old"
        shutil.rmtree(old, ignore_errors=True)
        dst.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(dst)
    LOG.info("inspection views of %s: %d views (truth %s)", item_id, len(cap.views), truth["verdict"])
    return dst


def read_truth(camera_root: str | Path, item_id: str) -> dict[str, Any] | None:
    """The truth labels of ``item_id``'s latest inspection views (evaluation only), or None."""
    p = truth_path(camera_root, item_id)
    return json.loads(p.read_text()) if p.is_file() else None
