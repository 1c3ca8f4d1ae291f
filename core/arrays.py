"""Deterministic ``.npz`` files: the same arrays give the same bytes (fixed zip timestamps).

``np.savez`` stamps each member with the current time, so two runs with one seed would
differ; datasets must be byte-identical for a seed, hence this writer.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import numpy as np

from .errors import FormatError
from .fileio import atomic_write_bytes

__all__ = ["save_npz", "load_npz", "npz_bytes"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, Any], *, compress: bool = True) -> bytes:
    """Serialise ``arrays`` to npz bytes with fixed metadata."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])
            if arr.dtype == object:
                raise FormatError(f"npz: array {name!r} has dtype object, which is not allowed")
            member = io.BytesIO()
            np.lib.format.write_array(member, np.require(arr, requirements="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=1 if compress else None)  # fast; depth compresses well
    return buf.getvalue()


def save_npz(path: str | os.PathLike[str], arrays: dict[str, Any], *, compress: bool = True) -> None:
    """Write ``arrays`` atomically and deterministically."""
    atomic_write_bytes(path, npz_bytes(arrays, compress=compress))


def load_npz(path: str | os.PathLike[str], *, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array (no pickles); raise :class:`FormatError` on a corrupt file or missing keys."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except FileNotFoundError as exc:
        raise FormatError(f"{path}: file not found") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{path}: corrupt or truncated npz ({exc})") from exc
    missing = [k for k in required if k not in out]
    if missing:
        raise FormatError(f"{path}: missing arrays {missing}")
    return out
