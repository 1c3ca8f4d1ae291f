"""An optional reference of the sole (the style's nominal sole, e.g. from its mould CAD) for the wall height.

A perception scan reads the sole's rim height above its footbed with ~0.9 mm station-to-station scatter
(sparse, noisy points on a 3-4 mm wide rim and at the bottom of a 15-20 mm deep cavity; measured against the
world's clean meshes), far more than the pair-to-pair spread of the moulded wall (a fraction of a millimetre).
When the nominal sole of the style is given, it is registered rigidly to the scan (outline frames, then
point-to-plane ICP), sectioned at the scan's stations, and the wall height becomes

    h = h_reference + lowpass(h_scan - h_reference)

keeping only ``REFERENCE_MODES`` perimeter harmonics of the difference: the scan still sets this pair's own
level, the reference sets the shape (the step at the heel counter) without the scan's scatter. With 0 (the
mean only) the bite line was closer than with 3 on the world's *validation* split (per-pair p95, median over
pairs: 1.72 against 2.02 mm, dataset seed 9001), so slow wall-height modes of a pair are not followed: the scan
cannot tell them from its own scatter.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gluecell.core.types import PartScan

from .profiles import SoleSections, sole_sections
from .reference import MAX_REFERENCE_RMS, apply_T, rigid_icp
from .sections import OutlineFrame, fill_invalid, outline_frame, smooth_closed

__all__ = ["REFERENCE_MODES", "register_sole_reference", "blend_with_reference", "reference_sections"]

#: Perimeter harmonics of the scan-minus-reference wall height that are kept (0: the level only; chosen on
#: validation pairs, see the module docstring).
REFERENCE_MODES = 0
#: Fewest stations measured on both the scan and the reference for the blend.
MIN_COMMON = 32


def register_sole_reference(
    scan: PartScan, ref_points: np.ndarray, ref_normals: np.ndarray, scan_frame: OutlineFrame | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """The reference sole moved onto the scan: (points (m, 3), normals (m, 3), rms metres).

    Pre-aligned by the two outline frames (centre and long axis), refined by point-to-plane ICP on the part
    of the reference a camera above would see. ``scan_frame``: ``outline_frame(scan.points)`` already computed.
    """
    from .refcache import reference_entry

    entry = reference_entry(ref_points, ref_normals)  # the same every pair of the style: its frame is kept
    fs = outline_frame(scan.points) if scan_frame is None else scan_frame
    fr = entry.get("frame", lambda: outline_frame(ref_points))
    yaw = fs.yaw - fr.yaw
    c, s = np.cos(yaw), np.sin(yaw)
    T0 = np.eye(4)
    T0[:2, :2] = [[c, -s], [s, c]]
    T0[:2, 3] = fs.centre - T0[:2, :2] @ fr.centre
    z_ref = entry.get("z_top", lambda: np.percentile(ref_points[:, 2], 99.5))
    T0[2, 3] = np.percentile(scan.points[:, 2], 99.5) - z_ref
    # T0 turns about z only: the normals' z components (what a camera above sees) are unchanged by it, so the
    # points seen after it are the points seen before it, moved
    T, rms = rigid_icp(apply_T(T0, entry.seen(8000)), scan.points, scan.normals)
    T = T @ T0
    return apply_T(T, ref_points), ref_normals @ T[:3, :3].T, rms


def reference_sections(
    scan: PartScan, ref_points: np.ndarray, ref_normals: np.ndarray, frame: OutlineFrame, n_stations: int,
    own_frame: bool = False,
) -> tuple[SoleSections | None, float]:
    """The reference registered onto ``scan`` and sectioned in ``frame`` (the scan's), and the registration
    rms; None for the sections when the reference does not fit (rms over :data:`~.reference.MAX_REFERENCE_RMS`).
    The half of :func:`blend_with_reference` that does not need the scan's sections (it runs beside them in
    :mod:`.parallel`). ``own_frame``: ``frame`` is ``outline_frame(scan.points)`` (the registration's pre-alignment
    takes it instead of computing it again)."""
    pts, nrm, rms = register_sole_reference(scan, ref_points, ref_normals, frame if own_frame else None)
    if not np.isfinite(rms) or rms > MAX_REFERENCE_RMS:
        return None, rms
    return sole_sections(pts, nrm, n_stations, frame=frame), rms


def blend_with_reference(
    scan: PartScan, ss: SoleSections, ref_points: np.ndarray, ref_normals: np.ndarray
) -> tuple[SoleSections, float]:
    """Scan sections with the wall height blended with the registered reference's (module docstring).

    Returns the sections and the registration rms (metres). A reference that does not fit (rms over
    :data:`~.reference.MAX_REFERENCE_RMS`) or shares too few measured stations leaves ``ss`` unchanged.
    """
    from .parallel import MISS, lookup_reference_sections

    got = lookup_reference_sections(scan, ss, ref_points, ref_normals)
    if got is MISS:
        got = reference_sections(scan, ref_points, ref_normals, ss.frame, len(ss.theta))
    ref, rms = got  # (computed beside the scan's sections by parallel.sole_prefetch's worker, or just now)
    if ref is None:
        return ss, rms
    both = ss.valid & ref.valid
    if both.sum() < MIN_COMMON:
        return ss, rms
    diff = fill_invalid(ss.theta, np.where(both, ss.height - ref.height, 0.0), both)
    h_ref = fill_invalid(ss.theta, ref.height, ref.valid)
    h = h_ref + smooth_closed(diff, REFERENCE_MODES)
    h = np.where(ss.valid, h, ss.height)  # the scan decides which stations are measured
    rim = ss.rim + (h - ss.height)[:, None] * ss.n_f
    return replace(ss, height=h, wall_len=h, rim=rim), rms
