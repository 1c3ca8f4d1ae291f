"""The inspect step with the QA station: ``gluecell.quality.inspect`` on the views of the sprayed pair.

After the pair is sprayed, the inspection cameras' views of its upper (UV-A image, depth before/after,
calibration) appear in ``<camera_root>/../inspection/<id>/`` (cameras are not on ROS; the simulated cell writes
them there, a plant's station driver would too). The controller waits for the views of THIS spray
(``views.json`` names the goals they show: the goal that sprayed the upper must be among them), and calls
:func:`gluecell.quality.inspect` with them and the stored plan (its ``bite_line`` and per-point
``bite_line_sigma``). The verdict routes the pair:

* ``pass`` -> next station; ``fail`` -> the rework queue with the defect types, a picture of the views with the
  defects outlined and one crop per defect for the rework bin; ``uncertain`` -> the rework queue for the human,
  with the reason (the doubtful defect types and their scores).
* No views within ``inspect_timeout_s``, no inspection cameras on the line, or a plan without a bite line (a
  replayed plan): :func:`qa_inspection` returns None with the reason, and the caller judges with the named
  stand-in (:func:`gluecell.cell.control.pipeline.standin_inspect`); ``inspections.source`` says which judged.
* Views that arrive but cannot be inspected (corrupt file, wrong size, model missing): ``uncertain`` -> the
  human, with the error: a pair is never passed on a failed inspection.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import GlueCellError

__all__ = ["QA_PREFIX", "qa_inspection", "draw_inspection", "model_name"]

LOG = logging.getLogger(__name__)
#: ``inspections.source`` of a verdict by the QA station: ``qa:<model file stem>@<sha256[:8]>``.
QA_PREFIX = "qa:"
_COLOURS = {"gap": (255, 60, 60), "above": (255, 200, 0), "thin": (0, 160, 255), "blob": (255, 0, 255)}


def model_name(diagnostics: dict[str, Any]) -> str:
    """``<model file stem>@<sha256[:8]>`` of the model that judged (``classical`` without one)."""
    path, sha = diagnostics.get("model"), diagnostics.get("model_sha256")
    return f"{Path(path).stem}@{(sha or '')[:8]}" if path else "classical"


def qa_inspection(item: dict[str, Any], plan_data: dict[str, Any] | None, camera_root: str | None,
                  out: Path | None, *, upper_goal: str | None, timeout_s: float, model: str = "champion",
                  registry: str | None = None) -> tuple[dict[str, Any] | None, str]:  # fmt: skip
    """Inspect the sprayed pair with the QA station; (inspection dict for :func:`~.flow.route_item`, "") or
    (None, why the stand-in must judge). ``upper_goal``: the goal id that sprayed the upper in this attempt."""
    from gluecell.cell.robot.cameras import wait_for_inspection

    if not camera_root:
        return None, "no inspection cameras on this line"
    if not plan_data or not plan_data.get("bite_line"):
        return None, "the plan has no bite line (a replayed plan): the QA station cannot place the bond band"
    if upper_goal is None:
        return None, "no succeeded upper spray in this attempt to inspect"
    folder = wait_for_inspection(camera_root, item["id"], upper_goal, timeout_s)
    if folder is None:
        return None, f"no inspection views of this spray within {timeout_s:.0f} s"
    try:
        return _judge(item, plan_data, folder, out, model, registry), ""
    except GlueCellError as exc:
        LOG.warning("inspection of %s failed: %s", item["id"], exc.message)
        return {"verdict": "uncertain", "cause": "inspection_error", "source": QA_PREFIX + "error",
                "reason": f"the QA station could not inspect the views: {exc.message} -> to the human",
                "data": {"error": exc.message, "views": str(folder)}}, ""  # fmt: skip


def _judge(item: dict[str, Any], plan_data: dict[str, Any], folder: Path, out: Path | None, model: str,
           registry: str | None) -> dict[str, Any]:  # fmt: skip
    from gluecell.core.plan import plan_from_dict
    from gluecell.datasets.inspection.format import load_view
    from gluecell.quality import inspect
    from gluecell.quality.inspect import inspection_summary

    files = sorted(folder.glob("view*.npz"), key=lambda f: int(f.stem[4:]) if f.stem[4:].isdigit() else 0)
    views = [load_view(f) for f in files]
    ins = inspect(views, plan_from_dict(plan_data), item_id=item["id"], part="upper", model=model, registry=registry)
    name = model_name(ins.diagnostics)
    summary = inspection_summary(ins)
    picture, crops = (None, []) if out is None else _pictures(item, ins, views, out)
    kinds = [d.kind for d in ins.defects]
    scores = ", ".join(f"{d.kind} {d.score:.2f}" for d in ins.defects)
    if ins.verdict == "pass":
        cause, reason = None, ""
    elif ins.verdict == "fail":
        cause = ",".join(dict.fromkeys(kinds)) or "defect"
        reason = f"QA {name}: fail: {scores}"
    else:
        cause = "uncertain:" + (",".join(dict.fromkeys(kinds)) or "cross-check")
        reason = f"QA {name}: uncertain ({scores or 'the classical cross-check disagrees'}) -> to the human"
    data = {**summary, "model_name": name, "views": str(folder), "crops": crops}
    return {"verdict": ins.verdict, "cause": cause, "source": QA_PREFIX + name, "reason": reason, "data": data,
            "picture": picture}  # fmt: skip


def _pictures(item: dict[str, Any], ins: Any, views: list[Any], out: Path) -> tuple[str, list[str]]:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    stem = f"{item['id']}_inspection_a{item['attempts']}"
    png = out / f"{stem}.png"
    cv2.imwrite(str(png), cv2.cvtColor(draw_inspection(ins, views), cv2.COLOR_RGB2BGR))
    crops = []
    for k, d in enumerate(ins.defects):
        if d.crop is not None and d.crop.size:
            f = out / f"{stem}_defect{k}_{d.kind}.png"
            cv2.imwrite(str(f), cv2.cvtColor(np.ascontiguousarray(d.crop), cv2.COLOR_RGB2BGR))
            crops.append(str(f))
    return str(png), crops


def draw_inspection(ins: Any, views: list[Any], cols: int = 4) -> np.ndarray:
    """(H, W, 3) uint8 RGB: every view in a grid, each defect's box outlined in its type's colour and named,
    the verdict and model on top."""
    import cv2

    tiles = []
    for k, v in enumerate(views):
        img = np.ascontiguousarray(v.image).copy()
        for j, d in enumerate(d for d in ins.defects if d.view == k):  # labels stacked: boxes may coincide
            x0, y0, x1, y1 = d.bbox_px
            c = _COLOURS.get(d.kind, (255, 255, 255))
            cv2.rectangle(img, (x0 - 2, y0 - 2), (x1 + 2, y1 + 2), c, 2)
            cv2.putText(img, f"{d.kind} {d.score:.2f}", (max(x0, 2), max(y0 - 5 - 12 * j, 12 + 12 * j)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, 1, cv2.LINE_AA)  # fmt: skip
        cv2.putText(img, f"view {k}", (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1)
        tiles.append(img)
    h, w = tiles[0].shape[:2]
    while len(tiles) % cols:
        tiles.append(np.zeros((h, w, 3), np.uint8))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    head = np.zeros((28, grid.shape[1], 3), np.uint8)
    colour = {"pass": (80, 220, 80), "fail": (255, 80, 80)}.get(ins.verdict, (255, 200, 0))
    cv2.putText(head, f"{ins.item_id} {ins.part}: {ins.verdict.upper()}  (QA {model_name(ins.diagnostics)})", (6, 20),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 1, cv2.LINE_AA)  # fmt: skip
    return np.vstack([head, grid])
