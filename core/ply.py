"""Point clouds on disk: binary little-endian PLY, float32 x y z in metres (+ nx ny nz, red green blue).

The reader also accepts ASCII and big-endian PLY with any numeric vertex property types
(scanners write all of these) and skips elements other than ``vertex``/``face``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FormatError
from .fileio import atomic_open

__all__ = ["Cloud", "read_ply", "write_ply"]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Cloud:
    """What a PLY file held: (n, 3) float64 points, optional normals, colours, faces."""

    points: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    faces: np.ndarray | None = None


def write_ply(
    path: str | os.PathLike[str],
    points: np.ndarray,
    normals: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    faces: np.ndarray | None = None,
    comment: str = "gluecell",
) -> None:
    """Write binary little-endian PLY atomically.

    Args:
        points: (n, 3) metres. normals: (n, 3). colors: (n, 3) uint8. faces: (f, 3) int.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise FormatError(f"write_ply: points must be (n, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise FormatError("write_ply: points contain NaN or inf")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(len(pts), dtype=fields)
    rec["x"], rec["y"], rec["z"] = pts.T
    if normals is not None:
        nrm = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
        rec["nx"], rec["ny"], rec["nz"] = nrm.T
    if colors is not None:
        col = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        rec["red"], rec["green"], rec["blue"] = col.T
    names = {"<f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"comment {comment}", f"element vertex {len(pts)}"]
    header += [f"property {names[t]} {n}" for n, t in fields]
    fa = None
    if faces is not None:
        fa = np.asarray(faces, dtype=np.int64)
        if fa.ndim != 2 or fa.shape[1] != 3 or (fa.size and (fa.min() < 0 or fa.max() >= len(pts))):
            raise FormatError("write_ply: faces must be (f, 3) indices into points")
        header += [f"element face {len(fa)}", "property list uchar int vertex_indices"]
    header.append("end_header")
    with atomic_open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(rec.tobytes())
        if fa is not None:
            frec = np.empty(len(fa), dtype=[("n", "u1"), ("i", "<i4", (3,))])
            frec["n"] = 3
            frec["i"] = fa
            fh.write(frec.tobytes())


def _parse_header(raw: bytes, path: Path) -> tuple[str, list, int]:
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise FormatError(f"{path}: not a PLY file (no 'ply' magic or no end_header)")
    nl = raw.find(b"\n", end)
    if nl < 0:
        raise FormatError(f"{path}: truncated header")
    try:
        lines = raw[:end].decode("ascii").splitlines()
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: header is not ASCII") from exc
    fmt = ""
    elements: list = []  # [name, count, [(prop, dtype) | (prop, ("list", count_t, item_t))]]
    for line in lines[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        try:
            if tok[0] == "format":
                fmt = tok[1]
            elif tok[0] == "element":
                count = int(tok[2])
                if count < 0:
                    raise ValueError("negative count")
                elements.append([tok[1], count, []])
            elif tok[0] == "property":
                if tok[1] == "list":
                    elements[-1][2].append((tok[4], ("list", _PLY_TYPES[tok[2]], _PLY_TYPES[tok[3]])))
                else:
                    elements[-1][2].append((tok[2], _PLY_TYPES[tok[1]]))
        except (IndexError, KeyError, ValueError) as exc:
            raise FormatError(f"{path}: bad PLY header line {line!r}") from exc
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise FormatError(f"{path}: unsupported PLY format {fmt!r}")
    return fmt, elements, nl + 1


def read_ply(path: str | os.PathLike[str], *, max_points: int = 50_000_000) -> Cloud:
    """Read a PLY point cloud or triangle mesh; raise :class:`FormatError` on anything malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise FormatError(f"{path}: file not found") from exc
    fmt, elements, offset = _parse_header(raw[: MAX_HEADER_BYTES] if len(raw) > MAX_HEADER_BYTES else raw, path)
    data: dict[str, np.ndarray] = {}
    faces = None
    if fmt == "ascii":
        lines = raw[offset:].decode("ascii", errors="replace").split("\n")
        pos = 0
    for name, count, props in elements:
        if name == "vertex" and count > max_points:
            raise FormatError(f"{path}: {count} vertices is over the limit of {max_points}")
        has_list = any(isinstance(t, tuple) for _, t in props)
        if fmt == "ascii":
            rows = lines[pos : pos + count]
            pos += count
            if len(rows) < count:
                raise FormatError(f"{path}: truncated ({name}: {len(rows)} of {count} rows)")
            if name == "vertex" and not has_list:
                try:
                    arr = np.array([r.split() for r in rows], dtype=np.float64).reshape(count, len(props))
                except ValueError as exc:
                    raise FormatError(f"{path}: bad ASCII vertex data") from exc
                data = {p: arr[:, i] for i, (p, _) in enumerate(props)}
            elif name == "face":
                try:
                    faces = np.array([r.split()[1:4] for r in rows], dtype=np.int64)
                except ValueError as exc:
                    raise FormatError(f"{path}: bad ASCII face data") from exc
            continue
        end = "<" if fmt == "binary_little_endian" else ">"
        if not has_list:
            dt = np.dtype([(p, end + t) for p, t in props])
            nbytes = dt.itemsize * count
            if offset + nbytes > len(raw):
                raise FormatError(f"{path}: truncated ({name}: need {nbytes} bytes, {len(raw) - offset} left)")
            rec = np.frombuffer(raw, dtype=dt, count=count, offset=offset)
            offset += nbytes
            if name == "vertex":
                data = {p: rec[p].astype(np.float64) for p, _ in props}
        elif name == "face" and len(props) == 1 and props[0][1][0] == "list":
            _, ct, it = props[0][1]
            dt = np.dtype([("n", end + ct), ("i", end + it, (3,))])
            nbytes = dt.itemsize * count
            if offset + nbytes > len(raw):
                raise FormatError(f"{path}: truncated face data")
            rec = np.frombuffer(raw, dtype=dt, count=count, offset=offset)
            if count and np.any(rec["n"] != 3):
                raise FormatError(f"{path}: only triangle faces are supported")
            faces = rec["i"].astype(np.int64)
            offset += nbytes
        else:
            raise FormatError(f"{path}: element {name!r} with list properties is not supported")
    if not all(k in data for k in "xyz"):
        raise FormatError(f"{path}: no vertex x/y/z properties")
    pts = np.column_stack([data["x"], data["y"], data["z"]])
    if not np.all(np.isfinite(pts)):
        raise FormatError(f"{path}: {int(np.count_nonzero(~np.isfinite(pts)))} coordinates are NaN or inf")
    nrm = np.column_stack([data[k] for k in ("nx", "ny", "nz")]) if all(k in data for k in ("nx", "ny", "nz")) else None
    col = (
        np.column_stack([data[k] for k in ("red", "green", "blue")]).astype(np.uint8)
        if all(k in data for k in ("red", "green", "blue"))
        else None
    )
    if faces is not None and faces.size and (faces.min() < 0 or faces.max() >= len(pts)):
        raise FormatError(f"{path}: face index out of range")
    return Cloud(points=pts, normals=nrm, colors=col, faces=faces)
