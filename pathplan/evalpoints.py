"""Where the tuning loop predicts the film: the region's points near the boundary, a coarse grid elsewhere, and
dense probes of the scan just beyond the bite line.

The region's points are 2 mm voxel means (``RegionParams.voxel_mm``), about as coarse as the distance between
the edge pass's covered and visible film edges (0.4 mm, :func:`gluecell.pathplan.tuning.cross_profile`); a
visible film edge can then cross the line between two of them unseen. On the real boot's scan that left 0.5-0.8
mm of predicted visible glue over its junction on a dense judge while the loop saw none. The probes are the
scan's own points a little beyond the line (thinned to ``probe_voxel``), so the loop sees that edge as the dense
judge does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .geom import resample_polyline, row_keys, unit
from .toolpath import BondRegion

__all__ = ["eval_points", "line_probes"]


def eval_points(region: BondRegion, fine_within: float, coarse_voxel: float,
                voxel: float) -> tuple[BondRegion, np.ndarray]:  # fmt: skip
    """Points the tuning loop predicts film on: all of the region's within ``fine_within`` (m) of the boundary,
    one per ``coarse_voxel`` (m) cube elsewhere.

    Returns the reduced region and the surface area (m^2) each of its points stands for (``voxel``: the
    region's own point spacing, m).
    """
    near = np.abs(region.signed) < fine_within
    keys = np.floor(region.points / coarse_voxel).astype(np.int64)
    _, first, counts = np.unique(row_keys(keys[~near]), return_index=True, return_counts=True)
    idx_far = np.flatnonzero(~near)[first]
    idx = np.r_[np.flatnonzero(near), idx_far]
    area = np.r_[np.full(int(near.sum()), voxel**2), counts * voxel**2]
    sub = replace(region, points=region.points[idx], normals=region.normals[idx], signed=region.signed[idx],
                  s=region.s[idx])  # fmt: skip
    return sub, area


def line_probes(region: BondRegion, points: np.ndarray, normals: np.ndarray | None, band: tuple[float, float],
                probe_voxel: float) -> BondRegion:  # fmt: skip
    """Scan points between ``band`` = (near, far) metres beyond the boundary, one per ``probe_voxel`` (m) cube,
    as region points: signed distance their straight distance to the (0.25 mm resampled) boundary, the side
    from the boundary's inward direction at the nearest vertex, less the region's ``bite_margin_mm`` (its
    ``meta``: the band then starts that far inside the line), the arc length of the nearest region
    point, and their own normal turned to agree with that point's (or that point's normal, if none is given:
    at a crease, such as a boot's welt, the voxel's averaged normal faces neither surface). Points within
    ``near`` of the line are left out: there scan noise decides the side.

    Args:
        points: (n, 3) float64, the part's scan (base_link, metres); normals: (n, 3) or None.
    Returns:
        A region with only the probes (possibly none); they carry no area and belong to no band.
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    per_vertex = region.meta.get("margin_m")  # the region starts this far inside the line (per boundary vertex)
    if per_vertex is None or len(per_vertex) != len(region.boundary):
        per_vertex = np.full(len(region.boundary), float(region.meta.get("bite_margin_mm", 0.0)) * 1e-3)
    fine = resample_polyline(region.boundary, 0.25e-3)
    d, _ = cKDTree(fine).query(pts, distance_upper_bound=band[1] + float(np.max(per_vertex)))
    cand = np.flatnonzero(np.isfinite(d))
    j = cKDTree(region.boundary).query(pts[cand])[1]
    side = np.where(np.einsum("ij,ij->i", pts[cand] - region.boundary[j], region.inward[j]) < 0, -1.0, 1.0)
    signed = side * d[cand] - per_vertex[j]
    keep = (signed <= -band[0]) & (signed >= -band[1])
    cand, signed = cand[keep], signed[keep]
    if cand.size == 0:
        return replace(region, points=np.empty((0, 3)), normals=np.empty((0, 3)), signed=np.empty(0), s=np.empty(0))
    _, first = np.unique(row_keys(np.floor(pts[cand] / probe_voxel).astype(np.int64)), return_index=True)
    first = np.sort(first)
    cand, signed = cand[first], signed[first]
    k = cKDTree(region.points).query(pts[cand])[1]
    nrm = region.normals[k]
    if normals is not None and np.shape(normals) == pts.shape:
        own = unit(np.asarray(normals, dtype=np.float64)[cand])
        ok = np.linalg.norm(own, axis=1) > 0.5
        own *= np.where(np.einsum("ij,ij->i", own, nrm) < 0, -1.0, 1.0)[:, None]
        nrm = np.where(ok[:, None], own, nrm)
    return replace(region, points=pts[cand], normals=nrm, signed=signed, s=region.s[k])
