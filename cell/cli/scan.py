"""``gluecell scan``: scan one part from a camera source and write the cleaned cloud as PLY.

Sources:

- ``sim:PATH`` — frame files (``gluecell.frame/1``) of the simulated cell: a folder (a dataset
  sample's ``inputs/<id>/`` picks ``<part>_cam*.npz``), a glob, or one file. Every file is one
  view. (Generating a fresh world pair on the fly needs the simulated cell, ``gluecell.cell.sim``,
  which does not exist yet; write its frames to a folder and pass that.)
- ``bag:PATH[,PATH...]`` — RealSense recordings, one per camera.
- ``realsense[:SERIAL[,SERIAL...]]`` — live cameras (the only connected one when no serial).

For recordings and live cameras ``--frames N`` frames are grabbed per camera and the last one is
used (the temporal filter has integrated the others). Camera poses come from ``--calibration``.
The output is written atomically: on any error nothing is left at ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from gluecell.core.errors import ConfigError, GlueCellError

__all__ = ["register", "run_scan", "load_scan_settings", "collect_frames"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``scan`` subcommand."""
    p = subparsers.add_parser(
        "scan",
        help="scan one part (sole or lasted upper) and write a cleaned point cloud",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", required=True, help="sim:PATH | bag:PATH[,PATH] | realsense[:SERIAL[,SERIAL]]")
    p.add_argument("--part", required=True, choices=["upper", "sole"], help="which station to scan")
    p.add_argument("--out", required=True, type=Path, help="output binary PLY (points + outward normals)")
    p.add_argument("--frames", type=int, default=1, help="frames per recording/live camera; the last is used")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each frame")
    p.add_argument("--config", type=Path, help="TOML with optional [cell], [scan] and [filters] tables")
    p.add_argument("--calibration", type=Path, help="JSON with camera poses (bag/realsense sources)")
    p.add_argument("--item-id", default="", help="work item id recorded in the scan")
    p.add_argument("--json", action="store_true", help="print the scan's diagnostics as JSON")
    p.add_argument(
        "--mesh",
        action="store_true",
        help="also fuse the views (TSDF) into a surface mesh of the part and write it (PLY with faces); "
        "--out then holds the fused mesh vertices, normals and faces",
    )
    p.set_defaults(func=run_scan)


def load_scan_settings(path: Path | None) -> tuple[Any, Any]:
    """``(ScanConfig, FilterConfig)`` from a TOML file (defaults when ``path`` is None).

    ``[scan]`` maps onto :class:`~gluecell.perception.scan.ScanConfig` (with ``[scan.clean]``),
    ``[cell]`` onto :class:`~gluecell.core.config.CellConfig`, ``[filters]`` onto
    :class:`~gluecell.perception.camera.filters.FilterConfig`. Unknown keys are an error.
    """
    from dataclasses import replace

    from gluecell.core.config import CellConfig, from_dict, read_toml
    from gluecell.perception.camera.filters import FilterConfig
    from gluecell.perception.scan import ScanConfig

    if path is None:
        return ScanConfig(), FilterConfig()
    raw = read_toml(path)
    scan = from_dict(ScanConfig, raw.get("scan", {}), path="scan")
    if "cell" in raw:
        scan = replace(scan, cell=from_dict(CellConfig, raw["cell"], path="cell"))
    return scan, from_dict(FilterConfig, raw.get("filters", {}), path="filters")


def collect_frames(sources: list[Any], frames_per_camera: int, timeout_s: float) -> list[Any]:
    """Connect every source and take its frames (all files of a sim source; the last of N otherwise)."""
    from gluecell.perception.camera import SimSource
    from gluecell.perception.errors import EndOfStreamError

    if frames_per_camera < 1:
        raise ConfigError(f"--frames must be >= 1, got {frames_per_camera}")
    out = []
    with contextlib.ExitStack() as stack:
        for src in sources:
            stack.enter_context(src)
            if isinstance(src, SimSource):
                out.extend(src.grab(timeout_s) for _ in range(len(src)))
                continue
            last = None
            for _ in range(frames_per_camera):
                try:
                    last = src.grab(timeout_s)
                except EndOfStreamError:
                    if last is None:
                        raise
                    break
            out.append(last)
    return out


def run_scan(args: argparse.Namespace) -> int:
    """Body of ``gluecell scan``; returns the exit code (errors propagate as GlueCellError)."""
    from gluecell.core.ply import write_ply
    from gluecell.perception.camera import open_sources
    from gluecell.perception.scan import fuse_part, scan_part_frames

    cfg, filters = load_scan_settings(args.config)
    sources = open_sources(args.source, part=args.part, filters=filters, calibration=args.calibration)
    frames = collect_frames(sources, args.frames, args.timeout)
    scan = scan_part_frames(frames, args.part, cfg, item_id=args.item_id)
    if scan.normals is None:  # pragma: no cover - scan_part_frames always sets normals
        raise GlueCellError("scan produced no normals", stage="perception")
    comment = f"gluecell scan part={args.part} frame=base_link"
    if args.mesh:
        scan, surface = fuse_part(scan, frames)
        write_ply(args.out, surface.vertices, surface.normals, faces=surface.faces, comment=comment + " mesh=tsdf")
    else:
        write_ply(args.out, scan.points, scan.normals, comment=comment)
    d = scan.diagnostics
    print(
        f"{args.part}: {len(scan)} points from {len(frames)} view(s) in {d['ms_total']:.1f} ms -> {args.out}",
    )
    if args.json:
        print(json.dumps({"part": args.part, "points": len(scan), "out": str(args.out), "diagnostics": d}))
    return 0
