"""Where the tuning loop predicts the film: the region's points near the boundary, a coarse grid elsewhere, and
dense probes of the scan just beyond the bite line.

The region's points are 2 mm voxel means (``RegionParams.voxel_mm``), about as coarse as the distance between
the edge pass's covered and visible film edges (0.4 mm, :func:`gluecell.pathplan.tuning.cross_profile`); a
visible film edge can then cross the line between two of them unseen. On the real boot's scan that left 0.5-0.8
mm of predicted visible glue over its junction on a dense judge while the loop saw none. The probes are the
scan's own points a little beyond the line (thinned to ``probe_voxel``), so the loop sees that edge as the dense
judge does. The scan's points are random and 1.5-2.5 mm apart, so each scan point near the line is also carried
towards the line in its own tangent plane (:func:`_toward_line`): a face that turns towards the edge pass just past
a welt then gets probes up to the line even where the scan has no point on it there.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .cloud import kdtree  # shared trees within plan_part (pipeline): the same trees, built once
from .geom import resample_polyline, row_keys, unit
from .toolpath import BondRegion

__all__ = ["eval_points", "line_probes", "local_normals"]

#: Scan points up to this far (m) beyond the probed band are carried towards the line (:func:`_toward_line`), ...
TOWARD_FROM = 2e-3
#: ... in steps of this (m).
TOWARD_STEP = 0.5e-3
#: A probe's normal far off the mean of the scan's normals within this (m) takes that mean (:func:`local_normals`) ...
NORMAL_RADIUS = 3e-3
#: ... (mean at least this long; a 90 deg crease's is <= 0.71) ...
COHERENT = 0.85
#: ... of at least this many points, after one trimming pass that keeps the neighbours within this (deg) of their
#: first mean; a normal more than this off the mean is the odd one ...
TRIM_DEG = 40.0
MIN_NEIGHBOURS = 4
#: ... which must keep at least this share of them (at a crease, the mean lies between the two faces: few kept).
MIN_SHARE = 0.6


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
    pts = np.asarray(points, dtype=np.float64)
    nrm_in = None if normals is None or np.shape(normals) != pts.shape else unit(np.asarray(normals, np.float64))
    scan_pts, scan_nrm = pts, nrm_in
    pts, nrm_in = _toward_line(pts, nrm_in, region.boundary, band[1] + TOWARD_FROM)
    normals = nrm_in
    per_vertex = region.meta.get("margin_m")  # the region starts this far inside the line (per boundary vertex)
    if per_vertex is None or len(per_vertex) != len(region.boundary):
        per_vertex = np.full(len(region.boundary), float(region.meta.get("bite_margin_mm", 0.0)) * 1e-3)
    fine = resample_polyline(region.boundary, 0.25e-3)
    d, _ = kdtree(fine).query(pts, distance_upper_bound=band[1] + float(np.max(per_vertex)))
    cand = np.flatnonzero(np.isfinite(d))
    j = kdtree(region.boundary).query(pts[cand])[1]
    side = np.where(np.einsum("ij,ij->i", pts[cand] - region.boundary[j], region.inward[j]) < 0, -1.0, 1.0)
    signed = side * d[cand] - per_vertex[j]
    keep = (signed <= -band[0]) & (signed >= -band[1])
    cand, signed = cand[keep], signed[keep]
    if cand.size == 0:
        return replace(region, points=np.empty((0, 3)), normals=np.empty((0, 3)), signed=np.empty(0), s=np.empty(0))
    _, first = np.unique(row_keys(np.floor(pts[cand] / probe_voxel).astype(np.int64)), return_index=True)
    first = np.sort(first)
    cand, signed = cand[first], signed[first]
    k = kdtree(region.points).query(pts[cand])[1]
    nrm = region.normals[k]
    if normals is not None:
        own = normals[cand]
        ok = np.linalg.norm(own, axis=1) > 0.5
        own *= np.where(np.einsum("ij,ij->i", own, nrm) < 0, -1.0, 1.0)[:, None]
        own = local_normals(pts[cand], own, nrm, scan_pts, scan_nrm, NORMAL_RADIUS)
        nrm = np.where(ok[:, None], own, nrm)
    return replace(region, points=pts[cand], normals=nrm, signed=signed, s=region.s[k])


def local_normals(q: np.ndarray, own: np.ndarray, ref: np.ndarray, pts: np.ndarray, normals: np.ndarray,
                  radius: float) -> np.ndarray:  # fmt: skip
    """``own`` (the normals at ``q``), each more than :data:`TRIM_DEG` off the mean of the scan's normals within
    ``radius`` (m) replaced by that mean, where the neighbourhood is one smooth surface: the mean (each neighbour
    turned to agree with ``ref``, the region's cleaned normal there, not with ``own``, which may be the odd one; one
    trimming pass drops the neighbours more than :data:`TRIM_DEG` off the first mean) keeps at least
    :data:`MIN_SHARE` of them and is at least :data:`COHERENT` long. At a crease (a boot's welt: the neighbours
    face two ways) and where the scan is sparse, a point keeps its own; so does any normal within
    :data:`TRIM_DEG` of its neighbours (a real tilt of the surface must still steer the film).

    A probe's predicted film comes and goes with its own normal; a perceived world-2 upper's odd normal (e.g. 110
    deg off its neighbours, the probe carried from it towards the line) sent the tuner after one spot and then
    another until it ran out of rounds. The probes stay where they are, so glue landing beyond the line is still
    seen. Replacing every normal by the local mean (not only the odd ones) planned three more world-2 uppers but
    put 1.5 mm of the true spray above the true line on one of them (pair 00002): not done.
    """
    if len(q) == 0:
        return own
    nbrs = kdtree(pts).query_ball_point(q, radius)
    count = np.fromiter((len(i) for i in nbrs), dtype=np.int64, count=len(q))
    if count.sum() == 0:
        return own
    row = np.repeat(np.arange(len(q)), count)
    n = normals[np.concatenate([np.asarray(i, dtype=np.int64) for i in nbrs])]
    n = n * np.where(np.einsum("ij,ij->i", n, ref[row]) < 0, -1.0, 1.0)[:, None]
    first = _mean_by_row(n, row, len(q))
    # one trimmed pass: the neighbours within TRIM_DEG of the first mean (a flipped or tilted one moves it)
    inlier = np.einsum("ij,ij->i", n, unit(first)[row]) >= np.cos(np.radians(TRIM_DEG))
    kept = np.bincount(row[inlier], minlength=len(q))
    mean = _mean_by_row(n[inlier], row[inlier], len(q))
    length = np.linalg.norm(mean, axis=1)
    off = np.einsum("ij,ij->i", own, mean) < np.cos(np.radians(TRIM_DEG)) * np.maximum(length, 1e-12)
    use = (kept >= MIN_NEIGHBOURS) & (kept >= MIN_SHARE * count) & (length >= COHERENT) & off
    out = own.copy()
    out[use] = mean[use] / length[use, None]
    return out


def _mean_by_row(n: np.ndarray, row: np.ndarray, rows: int) -> np.ndarray:
    """Mean of the vectors ``n`` grouped by ``row`` (zeros for a row without any)."""
    acc = np.zeros((rows, 3))
    np.add.at(acc, row, n)
    return acc / np.maximum(np.bincount(row, minlength=rows), 1)[:, None]


def _toward_line(points: np.ndarray, normals: np.ndarray | None, boundary: np.ndarray,
                 reach: float) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """``points`` (and ``normals``) with each scan point within ``reach`` (m) of the line carried in its own
    tangent plane towards the line, every :data:`TOWARD_STEP` up to the line: the surface the scan did not sample
    there, as the point's own plane continues it.

    A scan is sparser (1.5-2.5 mm between points) than the visible film edge is sharp (0.4 mm), and its points are
    random: on the real boot a spot of visible glue 0.84 mm beyond the junction, on the face that turns towards the
    edge pass just past the welt, lay 2.4 mm from the nearest scan point; the nearest scan points of that face
    were 1.5-2 mm beyond the line and got no visible glue, so the tuner never saw it. Carried towards the line in
    their plane they reach that spot. Without normals the points are returned as they are.
    """
    if normals is None:
        return points, normals
    fine = resample_polyline(boundary, 0.25e-3)
    d, j = kdtree(fine).query(points, distance_upper_bound=reach)
    near = np.flatnonzero(d <= reach)
    if near.size == 0:
        return points, normals
    p, n = points[near], normals[near]
    to = fine[j[near]] - p
    to -= np.einsum("ij,ij->i", to, n)[:, None] * n  # within the tangent plane
    length = np.linalg.norm(to, axis=1)
    ok = length > 1e-6
    p, n, to, length = p[ok], n[ok], to[ok] / length[ok, None], length[ok]
    t = np.arange(1, int(reach / TOWARD_STEP) + 1) * TOWARD_STEP
    keep = t[None, :] <= length[:, None]
    new = (p[:, None, :] + t[None, :, None] * to[:, None, :])[keep]
    nn = np.broadcast_to(n[:, None, :], (len(p), len(t), 3))[keep]
    return np.concatenate([points, new]), np.concatenate([normals, nn])
