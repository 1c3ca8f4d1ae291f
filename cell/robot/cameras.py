"""Waiting for the simulated cameras' frames of one pair (see :mod:`gluecell.cell.robot.base`, "Scans")."""

from __future__ import annotations

import time
from pathlib import Path

from .errors import RobotTimeoutError

__all__ = ["CameraTimeoutError", "wait_for_frames", "inspection_root", "wait_for_inspection", "INSPECTION_DIR",
           "INSPECTION_META"]


class CameraTimeoutError(RobotTimeoutError):
    """The frames of a pair did not appear in time (a camera timeout)."""


def wait_for_frames(camera_root: str | Path, item_id: str, timeout_s: float, poll_s: float = 0.02) -> Path:
    """The folder ``<camera_root>/<item_id>`` once it exists (the simulated cell renames it into place whole).

    Returns:
        The folder, to be read as perception's ``sim:<folder>`` source.
    Raises:
        CameraTimeoutError: it did not appear within ``timeout_s``.
    """
    if "/" in item_id or item_id in ("", ".", ".."):
        from gluecell.core.errors import ValidationError

        raise ValidationError(f"item id {item_id!r} cannot name a camera folder")
    folder = Path(camera_root) / item_id
    deadline = time.monotonic() + timeout_s
    while not folder.is_dir():
        if time.monotonic() >= deadline:
            raise CameraTimeoutError(f"no camera frames for {item_id} within {timeout_s:.1f} s ({folder})",
                                     stage="perception", item_id=item_id)  # fmt: skip
        time.sleep(poll_s)
    return folder


#: Folder beside ``camera_root`` where the inspection station's views of each pair appear.
INSPECTION_DIR = "inspection"
#: The file that completes a pair's inspection folder: the goal ids whose spray the views show.
INSPECTION_META = "views.json"


def inspection_root(camera_root: str | Path) -> Path:
    """``<camera_root>/../inspection``: where the inspection cameras' views of each pair appear (``<id>/``)."""
    return Path(camera_root).resolve().parent / INSPECTION_DIR


def wait_for_inspection(camera_root: str | Path, item_id: str, goal_id: str, timeout_s: float,
                        poll_s: float = 0.05) -> Path | None:  # fmt: skip
    """The folder of ``item_id``'s inspection views once they show the spray of goal ``goal_id``.

    The simulated cell renames the folder into place whole, with ``views.json`` naming the goals it shows, so
    views of an earlier attempt or of an interrupted goal are never taken for this spray. None when they did not
    arrive within ``timeout_s``.
    """
    import json

    if "/" in item_id or item_id in ("", ".", ".."):
        from gluecell.core.errors import ValidationError

        raise ValidationError(f"item id {item_id!r} cannot name an inspection folder")
    meta = inspection_root(camera_root) / item_id / INSPECTION_META
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            goals = json.loads(meta.read_text()).get("goals", [])
            if goal_id in goals:
                return meta.parent
        except (OSError, ValueError, AttributeError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)
