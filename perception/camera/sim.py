"""Simulated cameras: frames of the simulated cell, read from ``gluecell.frame/1`` files.

The simulated cell (or a dataset generator) writes what its virtual cameras saw with
:func:`gluecell.core.frames.save_frame`; :class:`SimSource` plays those files back. It never
imports the world, so the pipeline sees exactly what a real cell would: depth, intrinsics and
the calibrated (believed) camera pose stored in each frame.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from gluecell.core.frames import load_frame
from gluecell.core.types import DepthFrame

from ..errors import CameraError, EndOfStreamError
from .base import DEFAULT_TIMEOUT_S, CameraBase

__all__ = ["SimSource", "find_frame_files"]


def find_frame_files(spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], part: str = "") -> list[Path]:
    """Frame files named by ``spec``: a folder, a glob pattern, one file, or a list of files.

    In a folder, ``<part>_cam*.npz`` files are taken when ``part`` is given and such files exist
    (a dataset sample's ``inputs/<id>/`` holds ``upper_cam<k>.npz`` and ``sole_cam<k>.npz``),
    otherwise every ``*.npz``. The result is sorted by name, so the camera order is stable.

    Raises:
        CameraError: nothing matches.
    """
    if isinstance(spec, str | os.PathLike):
        p = Path(spec)
        if p.is_dir():
            files = sorted(p.glob(f"{part}_cam*.npz")) if part else []
            files = files or sorted(p.glob("*.npz"))
        elif p.is_file():
            files = [p]
        else:
            files = sorted(Path(f) for f in glob.glob(str(spec)))
    else:
        files = [Path(f) for f in spec]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CameraError(f"sim: frame file(s) not found: {missing}", stage="perception")
    if not files:
        raise CameraError(f"sim: no frame files at {spec!s} (expected gluecell.frame/1 .npz files)", stage="perception")
    return files


class SimSource(CameraBase):
    """Plays ``gluecell.frame/1`` files in order, one per :meth:`grab`.

    Args:
        spec: folder, glob pattern, file, or list of files (see :func:`find_frame_files`).
        part: prefer ``<part>_cam*.npz`` inside a folder.
        loop: start again after the last file instead of raising ``EndOfStreamError``.
    """

    def __init__(
        self, spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], part: str = "", *, loop: bool = False
    ) -> None:
        self._spec = spec
        self._part = part
        self.loop = loop
        self.files: list[Path] = []
        self._next = 0
        self._serial = "sim"

    @property
    def serial(self) -> str:
        """Serial of the last frame read ("sim" before the first)."""
        return self._serial

    def connect(self) -> None:
        """Resolve the file list; raises :class:`CameraError` when there is none."""
        self.files = find_frame_files(self._spec, self._part)
        self._next = 0
        self._connected = True

    def disconnect(self) -> None:
        """Forget the position; safe to call twice."""
        self._connected = False

    def __len__(self) -> int:
        return len(self.files)

    def grab(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> DepthFrame:
        """Load the next frame file (``timeout_s`` is unused: files are read at once).

        Raises:
            EndOfStreamError: every file was read (and ``loop`` is off).
            FormatError: a file is not a valid frame.
        """
        self._require_connected()
        if self._next >= len(self.files):
            if not self.loop:
                raise EndOfStreamError(f"sim: all {len(self.files)} frame files were read", stage="perception")
            self._next = 0
        path = self.files[self._next]
        self._next += 1
        frame = load_frame(path)
        self._serial = frame.serial or path.stem
        return frame
