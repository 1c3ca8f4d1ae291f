"""From per-station solutions to geometry on the scans: bite-line polyline, bond regions, deformed sole."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from gluecell.core.types import PartScan

from .attach_pose import AttachPose, closed_resample
from .profiles import SoleSections, UpperSections
from .sections import fill_invalid

__all__ = ["surface_polyline", "project_to_surface", "bond_regions", "deform_sole", "max_spacing"]
__all__ += ["bonds_and_deformed_sole", "upper_bond_region", "sole_regions", "sole_bonds_and_deformed"]

#: Neighbours used for the local plane when projecting onto a scan (averages sensor noise).
PROJECT_K = 24


def project_to_surface(
    q: np.ndarray, points: np.ndarray, normals: np.ndarray, tree: cKDTree | None = None, max_dist: float = 6e-3
) -> np.ndarray:
    """Project (m, 3) points onto the local plane of their ``PROJECT_K`` nearest scan points.

    Points with no scan point within ``max_dist`` metres (surface the cameras did not see) are left alone:
    projecting them would pull them onto some other, seen surface.
    """
    tree = tree or cKDTree(points)
    dist, idx = tree.query(q, k=min(PROJECT_K, len(points)))
    c = points[idx].mean(axis=1)
    n = normals[idx].mean(axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    moved = q - np.sum((q - c) * n, axis=1, keepdims=True) * n
    return np.where((dist[:, 0] < max_dist)[:, None], moved, q)


def max_spacing(line: np.ndarray) -> float:
    """Largest gap between consecutive points of a closed polyline, metres."""
    return float(np.linalg.norm(np.roll(line, -1, axis=0) - line, axis=1).max())


def surface_polyline(
    bite: np.ndarray,
    sigma: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    spacing: float,
    max_dist: float = 6e-3,
    tree: cKDTree | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed, ordered bite line on the upper scan at <= ``spacing`` metres, with its per-point sigma.

    Args:
        bite: (K, 3) per-station bite points (ordered round the outline).
        sigma: (K,) per-station 1-sigma, metres.
        points, normals: (n, 3) the upper scan.
        spacing: target spacing, metres.
        max_dist: points further than this from every surface point are not projected (see
            :func:`project_to_surface`); a complete surface (a registered reference) allows more.
        tree: a KD-tree of ``points`` already built (None: built here).
    """
    w = np.array([0.25, 0.5, 0.25])
    smooth = sum(wi * np.roll(bite, s, axis=0) for wi, s in zip(w, (1, 0, -1)))
    from .refcache import moved_tree

    tree = tree or moved_tree(points) or cKDTree(points, balanced_tree=False, compact_nodes=False)
    line = closed_resample(np.column_stack([smooth, sigma]), spacing)
    for _ in range(2):
        xyz = project_to_surface(line[:, :3], points, normals, tree, max_dist=max_dist)
        # a point may land on another face's plane than its neighbours (folds at corners): smooth, resample
        xyz = sum(wi * np.roll(xyz, s, axis=0) for wi, s in zip(w, (1, 0, -1)))
        line = closed_resample(np.column_stack([xyz, line[:, 3]]), spacing)
    return line[:, :3], line[:, 3]


def _station_of(frame, points: np.ndarray, n_stations: int) -> np.ndarray:
    theta, _ = frame.polar(points)
    k = np.floor((theta + np.pi) / (2 * np.pi) * n_stations).astype(np.int64) % n_stations
    return k


def bond_regions(
    upper: PartScan, sole: PartScan, us: UpperSections, ss: SoleSections, bite: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bond-region masks of the upper (bottom + side above the bite line) and of the sole (footbed + inner wall).

    Args:
        bite: (K, 3) per-station bite points on the upper.

    Returns:
        upper_bond: (n_upper,) bool over the upper scan points.
        sole_bond: (n_sole,) bool over the sole scan points (its cavity: footbed and inner wall).
        footbed: (n_sole,) bool, the up-facing floor of the cavity (a subset of ``sole_bond``).
    """
    upper_bond = upper_bond_region(upper, us, bite)
    return (upper_bond, *sole_regions(sole, ss, len(us.theta)))


def upper_bond_region(upper: PartScan, us: UpperSections, bite: np.ndarray) -> np.ndarray:
    """The upper's part of :func:`bond_regions`: (n_upper,) bool, bottom and side above the bite line."""
    K = len(us.theta)
    corner = fill_invalid(us.theta, us.corner, us.valid)
    n_b = fill_invalid(us.theta, us.n_b, us.valid)
    limit = np.sum((corner - bite) * n_b, axis=1)
    ku = _station_of(us.frame, upper.points, K)
    depth_u = np.sum((corner[ku] - upper.points) * n_b[ku], axis=1)
    return depth_u <= limit[ku]


def sole_regions(sole: PartScan, ss: SoleSections, n_stations: int) -> tuple[np.ndarray, np.ndarray]:
    """The sole's part of :func:`bond_regions` (``n_stations``: the upper's station count): (cavity, footbed)
    masks; needs no bite line."""
    good = ss.valid
    n_f = fill_invalid(ss.theta, np.where(good[:, None], ss.n_f, 0.0), good)
    base = fill_invalid(ss.theta, ss.corner, good)
    h = fill_invalid(ss.theta, ss.height, good)
    ks = _station_of(ss.frame, sole.points, n_stations)
    height = np.sum((sole.points - base[ks]) * n_f[ks], axis=1)
    _, r = ss.frame.polar(sole.points)
    r_wall = np.linalg.norm(base[:, :2] - ss.frame.centre, axis=1)
    inside = r <= r_wall[ks] + 1e-3
    cavity = inside & (height < h[ks] - 0.5e-3)
    footbed = cavity & (height < 0.3 * h[ks]) & (np.sum(sole.normals * n_f[ks], axis=1) > 0.8)
    return cavity, footbed


def deform_sole(
    sole_points: np.ndarray, footbed: np.ndarray, pose: AttachPose, upper_points: np.ndarray, upper_normals: np.ndarray
) -> np.ndarray:
    """Sole points after pressing: the attach similarity (stretch) plus footbed conformation along z.

    The footbed is bent so that it lies on the upper's bottom: every point takes the vertical offset of the
    nearest footbed point (plate kinematics: straight normals move with the mid-surface).

    Args:
        sole_points: (n, 3) sole scan, sole station.
        footbed: (n,) bool, the cavity floor.
        pose: attach pose.
        upper_points, upper_normals: (m, 3) upper scan, upper station.

    Returns:
        (n, 3) deformed sole points in the upper station, ``base_link``.
    """
    moved = pose.apply(sole_points)
    z_top = np.percentile(upper_points[:, 2], 99.5)
    bottom = upper_points[(upper_normals[:, 2] > 0.8) & (upper_points[:, 2] > z_top - 0.06)]
    if footbed.sum() < 10 or len(bottom) < 10:
        return moved
    fast = {"balanced_tree": False, "compact_nodes": False}  # quicker to build, the same neighbours
    _, j = cKDTree(bottom[:, :2], **fast).query(moved[footbed, :2], k=4)
    dz = bottom[j, 2].mean(axis=1) - moved[footbed, 2]
    _, nn = cKDTree(moved[footbed, :2], **fast).query(moved[:, :2])
    out = moved.copy()
    out[:, 2] += dz[nn]
    return out


def bonds_and_deformed_sole(
    scan: PartScan, sole: PartScan, us: UpperSections, ss: SoleSections, bite: np.ndarray, pose: AttachPose,
    upper: PartScan,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`bond_regions` of ``scan`` and ``sole`` and :func:`deform_sole` (onto ``upper``, the surface the
    line lies on) in one call: (upper bond mask, sole bond mask, deformed sole points). Needs only the bite
    points, so ``predict_attach`` runs it in the sole's thread while it lays the line (:mod:`.parallel`)."""
    return (upper_bond_region(scan, us, bite), *sole_bonds_and_deformed(sole, ss, pose, upper, len(us.theta)))


def sole_bonds_and_deformed(sole: PartScan, ss: SoleSections, pose: AttachPose, upper: PartScan,
                            n_stations: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The sole's half of :func:`bonds_and_deformed_sole`: (sole bond mask, deformed sole points). Needs no bite
    line, so ``predict_attach`` runs it in the sole's thread beside the station solve (:mod:`.parallel`)."""
    cavity, footbed = sole_regions(sole, ss, n_stations)
    return cavity, deform_sole(sole.points, footbed, pose, upper.points, upper.normals)
