"""Waiting for the simulated cameras' frames of one pair (see :mod:`gluecell.cell.robot.base`, "Scans")."""

from __future__ import annotations

import time
from pathlib import Path

from .errors import RobotTimeoutError

__all__ = ["CameraTimeoutError", "wait_for_frames"]


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
