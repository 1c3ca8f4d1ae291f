"""Atomic writes and format-version checks for everything that leaves a process."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import FormatError, VersionError

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_json", "check_version", "read_json"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a data file should follow the umask like open() does
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN/inf are refused."""
    text = json.dumps(obj, indent=2, allow_nan=False, sort_keys=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: str | os.PathLike[str], *, max_bytes: int = 256 * 1024 * 1024) -> Any:
    """Read JSON, turning every failure into a :class:`FormatError` that names the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise FormatError(f"{path}: file not found") from exc
    if size > max_bytes:
        raise FormatError(f"{path}: {size} bytes is over the {max_bytes} byte limit")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from exc


def check_version(found: str | None, expected: str, *, what: str) -> None:
    """Compare ``name/MAJOR[.MINOR]`` format strings.

    Raises :class:`VersionError` on another name or major; warns on a minor mismatch.
    """
    if not isinstance(found, str) or "/" not in found:
        raise VersionError(f"{what}: missing or malformed format string {found!r}, expected {expected!r}")
    name, _, ver = found.partition("/")
    ename, _, ever = expected.partition("/")
    fmaj, _, fmin = ver.partition(".")
    emaj, _, emin = ever.partition(".")
    if name != ename or fmaj != emaj:
        raise VersionError(f"{what}: format {found!r} is not readable by this version (expects {expected!r})")
    if fmin != emin:
        warnings.warn(f"{what}: format {found!r} differs in minor version from {expected!r}", stacklevel=2)
