"""The simulated conveyor: pairs from the world, on fixtured pallets, past the scan station to the spray station.

Positions: scan station (barcode reader + cameras) -> spray station (upper and sole fixtures) -> out. One
``index`` moves every pallet one position and takes ``index_time_s``. The pallets hold the parts' pose from
scan to spray (the scans are taken in the spray stations' frame, ``base_link``), unless a
``part_off_station`` fault knocks the pair off its fixtures, which the seat sensor reports.

When a pair reaches the scan station its camera frames (the world's ``inputs/<id>/*.npz`` and its
``workitem.json``) are put under ``<camera_root>/<id>/``: copied into a temporary folder and renamed into
place, so the controller never sees half a pair. A camera timeout is a folder that never appears.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Line"]


@dataclass
class Line:
    """The conveyor and the scan station's cameras.

    Args:
        ids: the pairs in arrival order.
        world: dataset folder (``inputs/<id>/``), or None for a line without cameras (ids only).
        camera_root: where frames are put (None: no cameras).
    """

    ids: list[str]
    world: Path | None = None
    camera_root: Path | None = None
    at_scan: str | None = None
    at_spray: str | None = None
    seated: bool = False
    next_index: int = 0
    arrivals: dict[str, int] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The conveyor state message (JSON of ``std_msgs/String``)."""
        return {"at_scan": self.at_scan, "at_spray": self.at_spray, "seated": self.seated}

    def index(self) -> tuple[str | None, str | None]:
        """Move one position; returns (the pair now at the scan station, the pair now at the spray station)."""
        self.at_spray = self.at_scan
        self.seated = self.at_spray is not None
        if self.next_index < len(self.ids):
            self.at_scan = self.ids[self.next_index]
            self.arrivals[self.at_scan] = self.next_index
            self.next_index += 1
        else:
            self.at_scan = None
        return self.at_scan, self.at_spray

    def put_frames(self, item_id: str) -> Path | None:
        """Copy the pair's frames under ``camera_root/<id>/`` (atomically); None without cameras or world."""
        if self.camera_root is None or self.world is None:
            return None
        src = self.world / "inputs" / item_id
        dst = self.camera_root / item_id
        if dst.is_dir():
            return dst
        tmp = self.camera_root / f".{item_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in sorted(src.iterdir()):
            if f.suffix in (".npz", ".json"):
                shutil.copy2(f, tmp / f.name)
        tmp.rename(dst)
        return dst

    def clear_frames(self) -> None:
        """Remove this line's pairs' frame folders left by an earlier run (a stale folder would hide a camera
        timeout), their inspection views and truth labels; nothing else is touched."""
        if self.camera_root is None:
            return
        from gluecell.cell.robot.cameras import inspection_root

        from .inspection import truth_path

        for item_id in self.ids:
            if "/" in item_id or item_id in ("", ".", ".."):
                continue
            for name in (item_id, f".{item_id}.tmp"):  # the scan frames and the inspection views
                shutil.rmtree(self.camera_root / name, ignore_errors=True)
                shutil.rmtree(inspection_root(self.camera_root) / name, ignore_errors=True)
            truth_path(self.camera_root, item_id).unlink(missing_ok=True)

    def manifest(self) -> list[dict[str, Any]]:
        """The work items the line will bring (what the MES ordered), in order."""
        import json

        out = []
        for i in self.ids:
            wi = self.world / "inputs" / i / "workitem.json" if self.world is not None else None
            out.append(json.loads(wi.read_text()) if wi is not None and wi.is_file() else {"item_id": i})
        return out
