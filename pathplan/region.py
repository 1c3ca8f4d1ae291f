"""Bond regions from a part's cloud: the band beside the bite line (upper) or inside the rim (sole).

The region carries, per surface point, the graph-geodesic surface distance from the boundary line
(signed: > 0 on the bond side). Planners draw iso-lines of that distance (contour offsets) or fill
what lies beyond them (raster).

Conventions (DESIGN.md): the upper lies bottom-up, so its bond side is *towards +z* from the bite
line (up the side, over the feather edge, onto the lasted bottom); "above the bite line" in shoe
terms is *below* it in ``base_link``. The sole lies footbed-up; its bond side is inside the rim.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gluecell.core.validate import as_points

from .cloud import drop_outliers, has_neighbour, kdtree, knn, outer_wall_outwards, shared_trees
from .errors import OrientationError, RegionError
from .geom import (
    estimate_normals,
    points_in_polygon,
    polyline_gaps,
    polyline_tangents,
    resample_polyline,
    row_keys,
    unit,
    voxel_downsample,
)
from .solewall import OUTER_WALL_OUT_M, crest_outer_slope, despike, outer_wall_faces_out
from .stages import Stage, register
from .toolpath import BondRegion

#: Fraction of inward-facing normals above which a cloud's normals are taken as mixed and flipped outwards.
MIXED_NORMALS = 0.15
#: A rim candidate needs a neighbour this close (m): a flying point above the wall does not lift the rim.
RIM_NEIGHBOUR_M = 1.5e-3
#: Highest outer points per sector tried for the rim (the first with a neighbour is taken).
RIM_TRIES = 4
#: A wall point's normal decides its side only when it faces across the rim at least this much (cosine).
WALL_FACING = 0.3
#: A neighbourhood whose mean normal is at least this long is coherent (one smooth surface) ...
COHERENT = 0.85
#: ... and a normal more than this (deg) off its mean takes the mean (scan noise, not a feature).
TILTED_DEG = 40.0

__all__ = ["RegionParams", "upper_region", "sole_region", "detect_rim", "BandWidth", "Subsample"]


@dataclass(frozen=True)
class RegionParams:
    """How a cloud becomes a :class:`BondRegion`.

    Attributes:
        voxel_mm: cloud resolution for planning (2 mm: below the ~3 mm spray footprint sigma).
        knn: neighbours per point in the surface graph.
        max_gap_mm: largest allowed spacing of the given bite line (a larger gap is a hole in it).
        on_surface_mm: bite-line points farther than this from the scan are rejected (not on the part),
            unless they lie in a hole of the scan (below).
        hole_radius_mm / hole_max_gap_deg / max_hole_fraction: a bite-line point with no scan point within
            ``on_surface_mm`` is accepted as lying in a *scan hole* (dark or grazing leather returns no depth;
            every real scan has some) when the scan points within ``hole_radius_mm`` surround it (no empty
            angular sector wider than ``hole_max_gap_deg`` round it in their tangent plane: interpolation, not
            extrapolation past the scan's edge) and it lies within ``on_surface_mm`` of the quadric surface
            fitted to them; at most ``max_hole_fraction`` of the line may lie in holes.
        edge_mm: a point that is not surrounded (the line runs along the edge of what the cameras saw, e.g.
            under a toe that faces down) is still accepted within this distance of the scan, when it lies within
            ``on_surface_mm`` of the quadric fitted to the scan points near it (a short extrapolation).
        keep_beyond_mm: cloud kept this far beyond the boundary (for overspray prediction).
        min_points: fewer cloud points than this is a bad scan.
        spacing_mm: boundary resampling step.
        rim_sectors: angular sectors used to find the sole's rim.
        min_wall_mm: the sole's rim must stand this far above its footbed (else it is tread-up).
        top_layer_mm / min_top_ratio: the upper's top layer (this deep) must occupy this fraction of its
            plan-view footprint (a bottom-up last shows its broad closed bottom; a wrong-way-up upper shows
            its collar or an open rim).
        max_bite_depth_mm: the bite line must lie within this distance below the upper's highest point.
        exact_within_mm: within this distance of the boundary, the straight distance replaces the graph one.
        bite_margin_mm: the upper's bond region starts this far inside the given bite line (its signed
            distances are reduced by it): room for the line's own uncertainty, e.g. 2 sigma of a predicted
            line (``gluecell plan --margin-sigmas``), so that glue stays below the actual line.
        rim_width_mm: upward-facing sole points this close (plan view) to the rim line count as inside.
        wall_zone_mm / wall_normal_xy: within this plan distance of the sole's rim a point whose normal is
            mostly horizontal (plan component > ``wall_normal_xy``) is a wall point and its side follows its
            normal (the wall is 3-6 mm thick; the rim line wanders across its crest); elsewhere the rim polygon
            decides. Outside that zone a point whose side disagrees with at least ``side_vote`` of its ``knn``
            neighbours takes theirs (a footbed point with a tilted normal was put outside and refused the
            whole sole); inside it, where both sides meet within millimetres, only one that all contradict.
        bridge_max_mm: where the scan misses the surface beside the line (world-2 uppers: the lowest 9-17 mm of
            the side wall at the toe and heel), the gap between a line point and the scan's edge on the bond side is
            bridged up to this long (:mod:`gluecell.pathplan.bridge`; 0: never); bridged and hole points together
            may make up at most ``max_hole_fraction`` of the line.
        wall_deep_mm / wall_deep_normal_xy: in that zone, a point more than ``wall_deep_mm`` below the rim
            whose normal tilts at least ``wall_deep_normal_xy`` sideways is wall too (its normal says its
            side): a cup sole's inner wall that bulges out below an in-curled rim lies outside the rim in plan
            view, and its lower part, tilted 45 deg towards the footbed, was put outside the rim, where the
            edge pass's glue on it refused the sole (demo seed 7, pair 00000: "glue would land 13.89 mm beyond
            the boundary"). The crest (within ``wall_deep_mm`` of the rim's height) keeps the stricter rule.
    """

    voxel_mm: float = 2.0
    knn: int = 12
    max_gap_mm: float = 8.0
    on_surface_mm: float = 4.0
    hole_radius_mm: float = 20.0
    hole_max_gap_deg: float = 150.0
    max_hole_fraction: float = 0.2
    edge_mm: float = 8.0
    keep_beyond_mm: float = 20.0
    min_points: int = 300
    spacing_mm: float = 2.0
    rim_sectors: int = 180
    min_wall_mm: float = 3.0
    top_layer_mm: float = 40.0
    min_top_ratio: float = 0.4
    max_bite_depth_mm: float = 70.0
    exact_within_mm: float = 8.0
    bite_margin_mm: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.bite_margin_mm <= 5.0:
            raise ValueError("bite_margin_mm must be within 0-5 (mm)")
        if not (self.on_surface_mm > 0 and self.hole_radius_mm > 0 and self.edge_mm >= 0):
            raise ValueError("on_surface_mm and hole_radius_mm must be > 0 and edge_mm >= 0")
        if not (0.5 < self.side_vote <= 1 and self.wall_zone_mm > 0):
            raise ValueError("side_vote must be within 0.5-1 and wall_zone_mm > 0")
        if not (0 < self.hole_max_gap_deg <= 360 and 0 <= self.max_hole_fraction <= 1):
            raise ValueError("hole_max_gap_deg must be within 0-360 and max_hole_fraction within 0-1")
    rim_width_mm: float = 2.0
    wall_zone_mm: float = 8.0
    wall_normal_xy: float = 0.8
    wall_deep_mm: float = 3.0
    wall_deep_normal_xy: float = 0.3
    side_vote: float = 0.75
    bridge_max_mm: float = 30.0


def _check_cloud(points: np.ndarray, part: str, p: RegionParams) -> np.ndarray:
    try:
        pts = as_points(f"{part} cloud", points)
    except ValueError as exc:
        raise RegionError(f"bad {part} scan: {exc}") from exc
    if len(pts) < p.min_points:
        raise RegionError(f"bad {part} scan: {len(pts)} points, need at least {p.min_points}", part=part)
    ext = np.ptp(pts, axis=0)
    if max(ext[0], ext[1]) < 0.12 or max(ext) > 0.5:
        raise RegionError(
            f"bad {part} scan: extent {np.round(ext * 1e3, 1).tolist()} mm is not a shoe part (longest 120-500 mm)"
        )
    return pts


def _occupied(xy_top: np.ndarray, xy_all: np.ndarray, cell: float = 5e-3) -> float:
    """Fraction of the part's plan-view footprint (filled) that the top layer's points occupy (5 mm cells)."""
    from scipy.ndimage import binary_fill_holes

    lo = xy_all.min(axis=0)
    shape = tuple(np.floor((xy_all.max(axis=0) - lo) / cell).astype(int) + 1)

    def grid(xy: np.ndarray) -> np.ndarray:
        g = np.zeros(shape, bool)
        ij = np.floor((xy - lo) / cell).astype(int)
        g[ij[:, 0], ij[:, 1]] = True
        return g

    foot = binary_fill_holes(grid(xy_all))
    return float(grid(xy_top).sum() / max(foot.sum(), 1))


def _check_upper_up(pts: np.ndarray, bite: np.ndarray, p: RegionParams) -> None:
    zmax = pts[:, 2].max()
    top = pts[pts[:, 2] > zmax - p.top_layer_mm * 1e-3]
    ratio = _occupied(top[:, :2], pts[:, :2])
    depth = zmax - bite[:, 2].mean()
    if ratio < p.min_top_ratio:
        raise OrientationError(
            f"upper looks wrong way up: its top {p.top_layer_mm:.0f} mm occupy {ratio:.0%} of its footprint "
            f"(a bottom-up lasted upper shows >= {p.min_top_ratio:.0%}); place it bottom-up"
        )
    if not 0 < depth < p.max_bite_depth_mm * 1e-3:
        raise OrientationError(
            f"bite line lies {depth * 1e3:.1f} mm below the upper's highest point (expected 0-{p.max_bite_depth_mm:.0f}"
            " mm for an upper placed bottom-up); wrong way up, or bite line of another part"
        )


def _hole_distance(q: np.ndarray, nbr: np.ndarray, max_gap_deg: float) -> tuple[float, bool]:
    """Distance of ``q`` from the quadric fitted to the scan points ``nbr`` near it, and whether they surround it.

    Args:
        q: (3,) bite-line point, metres.
        nbr: (k, 3) scan points within the hole radius, metres.
        max_gap_deg: widest empty angular sector round ``q`` (tangent plane) that still counts as surrounded.
    """
    if len(nbr) < 12:
        return float("inf"), False
    c = nbr.mean(axis=0)
    _, _, vt = np.linalg.svd(nbr - c, full_matrices=False)
    loc = (nbr - c) @ vt.T  # tangent axes 0, 1; normal axis 2
    ql = (q - c) @ vt.T
    ang = np.sort(np.arctan2(loc[:, 1] - ql[1], loc[:, 0] - ql[0]))
    gaps = np.diff(np.concatenate([ang, ang[:1] + 2 * np.pi]))
    surrounded = bool(np.degrees(gaps.max()) <= max_gap_deg)
    x, y = loc[:, 0], loc[:, 1]
    a = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    coef = np.linalg.lstsq(a, loc[:, 2], rcond=None)[0]
    qx, qy = ql[0], ql[1]
    return float(abs(ql[2] - coef @ np.array([1.0, qx, qy, qx * qx, qx * qy, qy * qy]))), surrounded


def _bridged(pts: np.ndarray, normals: np.ndarray | None, line: np.ndarray, bond_dir: np.ndarray,
             p: RegionParams) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:  # fmt: skip
    """The cloud with the surface between ``line`` and the scan's edge bridged where the scan missed it and the
    line does not lie in a scan hole (:func:`gluecell.pathplan.bridge.bridge_line`), its normals (when they fit)
    and how much was bridged."""

    from .bridge import BridgeParams, bridge_line

    none = {"bridged_fraction": 0.0, "bridged_length_mm": 0.0}
    if p.bridge_max_mm <= p.on_surface_mm:
        return pts, normals, none
    _, bad = _not_holes(line, pts, kdtree(pts), p)
    if not bad:
        return pts, normals, none
    fits = normals is not None and np.shape(normals) == pts.shape
    br = bridge_line(pts, normals if fits else None, line, bond_dir,
                     BridgeParams(from_mm=p.on_surface_mm, max_len_mm=p.bridge_max_mm),
                     near=line[[j for j, _ in bad]])  # fmt: skip
    info = {"bridged_fraction": br.fraction, "bridged_length_mm": br.length_mm}
    if not len(br.points):
        return pts, normals, info
    pts = np.concatenate([pts, br.points])
    return pts, (np.concatenate([normals, br.normals]) if fits and br.normals is not None else None), info


def _not_holes(line: np.ndarray, pts: np.ndarray, pts_tree, p: RegionParams) -> tuple[np.ndarray, list]:
    """Distances (m,) of the line's points from the scan, and ``(index, why)`` of each point farther than
    ``on_surface_mm`` that is not in a scan hole (surrounded by the scan and on the quadric fitted round it, or
    within ``edge_mm`` of the scan's edge and on that quadric)."""
    d, _ = pts_tree.query(line)
    lim = p.on_surface_mm * 1e-3
    bad = []
    for j in np.flatnonzero(d > lim):
        nbr = pts[pts_tree.query_ball_point(line[j], p.hole_radius_mm * 1e-3)]
        off, surrounded = _hole_distance(line[j], nbr, p.hole_max_gap_deg)
        if not surrounded and d[j] > p.edge_mm * 1e-3:
            off, why = float("inf"), f"beyond the scan's edge by more than {p.edge_mm:.0f} mm"
        else:
            why = f"{off * 1e3:.1f} mm off the surface fitted round it"
        if off > lim:
            bad.append((int(j), why))
    return d, bad


def _check_line(line: np.ndarray, pts: np.ndarray, pts_tree, p: RegionParams, what: str,
                bridged: dict[str, float] | None = None) -> dict[str, float]:  # fmt: skip
    """Refuse a line with gaps or off the scanned surface; returns how much of it lies in scan holes (and, from
    ``bridged``, how much was bridged: both count against ``max_hole_fraction``)."""
    gaps = polyline_gaps(line)
    i = int(np.argmax(gaps))
    if gaps[i] > p.max_gap_mm * 1e-3:
        raise RegionError(
            f"{what} has a gap of {gaps[i] * 1e3:.1f} mm after point {i} (limit {p.max_gap_mm:.1f} mm); "
            "it must be a closed line all round the part",
            gap_index=i,
        )
    d, bad = _not_holes(line, pts, pts_tree, p)
    far = np.flatnonzero(d > p.on_surface_mm * 1e-3)
    if bad:
        j, why = bad[0]
        raise RegionError(
            f"{what} point {j} ({', '.join(f'{v * 1e3:.0f}' for v in line[j])} mm in base_link) is {d[j] * 1e3:.1f} "
            f"mm off the scanned surface (limit {p.on_surface_mm:.1f} mm; not a scan hole: {why}; {len(far)} of "
            f"{len(line)} points are off it, {len(bad)} of them neither in a hole nor across a gap the planner can "
            "bridge): rescan the part so that the surface along the line there is seen, or check that the line "
            "belongs to this scan",
            point_index=int(j),
        )
    bridged = bridged or {"bridged_fraction": 0.0, "bridged_length_mm": 0.0}
    frac = len(far) / len(line)
    if frac + bridged["bridged_fraction"] > p.max_hole_fraction:
        raise RegionError(
            f"{frac + bridged['bridged_fraction']:.0%} of the {what} lies in holes of the scan or in gaps beside it "
            f"(holes {frac:.0%}, bridged gaps {bridged['bridged_fraction']:.0%}; limit {p.max_hole_fraction:.0%}); "
            "rescan the part so that the surface along the line is seen",
            point_index=int(far[0]) if len(far) else -1,
        )
    seg = 0.5 * (gaps + np.roll(gaps, 1))
    return {"hole_fraction": float(frac), "hole_length_mm": float(seg[far].sum() * 1e3), **bridged}


def _geodesic(pts: np.ndarray, line: np.ndarray, p: RegionParams) -> tuple[np.ndarray, np.ndarray]:
    """Graph-geodesic distance of every point from ``line`` and the index of its nearest line vertex."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    tree = kdtree(pts)
    k = min(p.knn, len(pts) - 1)
    d, idx = knn(pts, k + 1)
    d, idx = d[:, 1:], idx[:, 1:]
    ok = d < 4.0 * p.voxel_mm * 1e-3
    rows = np.repeat(np.arange(len(pts)), k)[ok.ravel()]
    g = coo_matrix((d[ok], (rows, idx[ok])), shape=(len(pts), len(pts))).tocsr()
    d0, src = tree.query(line)
    srcu, first = np.unique(src, return_index=True)
    dist, _, sources = dijkstra(g, directed=False, indices=srcu, min_only=True, return_predecessors=True)
    vert_of = np.full(len(pts), -1)
    vert_of[srcu] = first
    off = np.zeros(len(pts))
    off[srcu] = d0[first]
    ok_src = sources >= 0
    vert = np.where(ok_src, vert_of[np.maximum(sources, 0)], -1)
    return dist + np.where(ok_src, off[np.maximum(sources, 0)], 0.0), vert


def _angular_s(pts: np.ndarray, line: np.ndarray, s_line: np.ndarray) -> np.ndarray | None:
    """Arc length of the boundary at each point's bearing about the boundary's xy centre.

    Unlike the nearest boundary vertex, this spreads points evenly round convex corners. None if the
    boundary is not star-shaped about its centre (its bearing is not monotonic).
    """
    c = line[:, :2].mean(axis=0)
    a = np.unwrap(np.arctan2(line[:, 1] - c[1], line[:, 0] - c[0]))
    da = np.diff(a)
    if not (np.all(da > 0) or np.all(da < 0)):
        return None
    sign = 1.0 if da[0] > 0 else -1.0
    a = sign * a
    ap = sign * np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    per = s_line[-1] + float(np.linalg.norm(line[0] - line[-1]))
    a_ext = np.r_[a, a[0] + 2 * np.pi]
    s_ext = np.r_[s_line, per]
    return np.interp((ap - a[0]) % (2 * np.pi) + a[0], a_ext, s_ext) % per


def _line_frame(pts: np.ndarray, nrm: np.ndarray, line: np.ndarray, towards: np.ndarray) -> tuple[np.ndarray, ...]:
    """Surface normals (m, 3) at the line's vertices (mean within 4 mm) and the unit surface tangents across the
    line, (m, 3), signed to point along ``towards`` (m, 3) (the bond side)."""

    tree = kdtree(pts)
    near = tree.query_ball_point(line, r=4e-3)
    bn = unit(np.array([nrm[i].mean(axis=0) if len(i) else nrm[tree.query(b)[1]] for i, b in zip(near, line)]))
    inward = unit(np.cross(bn, polyline_tangents(line)))
    inward *= np.where(np.einsum("ij,ij->i", inward, towards) >= 0, 1.0, -1.0)[:, None]
    return bn, inward


def _build(
    part: str, pts: np.ndarray, nrm: np.ndarray, line: np.ndarray, frame: tuple[np.ndarray, np.ndarray],
    side: np.ndarray,
    p: RegionParams,
) -> BondRegion:  # fmt: skip
    from scipy.spatial import cKDTree

    dist, vert = _geodesic(pts, line, p)
    keep = np.isfinite(dist) & (vert >= 0)
    bn, inward = frame
    s_line = np.concatenate([[0.0], np.cumsum(polyline_gaps(line)[:-1])])
    # near the line the graph distance zig-zags (~1 mm); use the straight distance to a finely resampled line
    fine = resample_polyline(line, 0.25e-3)
    eu = cKDTree(fine).query(pts)[0]
    dist = np.where(eu < p.exact_within_mm * 1e-3, eu, np.maximum(dist, eu))
    signed = np.where(side, dist, -dist)
    s_pts = _angular_s(pts, line, s_line)
    if s_pts is None:  # boundary not star-shaped about its centre: use the nearest vertex's arc length
        s_pts = s_line[np.maximum(vert, 0)]
    return BondRegion(
        part=part, points=pts[keep], normals=nrm[keep], signed=signed[keep], s=s_pts[keep],
        boundary=line, boundary_normals=bn, inward=inward,
    )  # fmt: skip


def _consistent_normals(pts: np.ndarray, nrm: np.ndarray, radius: float) -> np.ndarray:
    """``nrm`` (n, 3) with each normal that points against its neighbours' (within ``radius``) replaced by their
    mean, where those neighbours agree among themselves (mean length > 0.5: not across a thin wall's two faces).
    A single flipped or tilted normal (dropouts on dark leather) otherwise lets the film model put glue on a
    surface that faces away from the gun."""

    tree = kdtree(pts)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    if len(pairs) == 0:
        return nrm
    acc = np.zeros_like(nrm)
    cnt = np.zeros(len(pts))
    np.add.at(acc, pairs[:, 0], nrm[pairs[:, 1]])
    np.add.at(acc, pairs[:, 1], nrm[pairs[:, 0]])
    np.add.at(cnt, pairs.ravel(), 1.0)
    mean = acc / np.maximum(cnt, 1.0)[:, None]
    length = np.linalg.norm(mean, axis=1)
    dot = np.einsum("ij,ij->i", nrm, mean) / np.maximum(length, 1e-12)
    # against them, or tilted > TILTED_DEG off a coherent neighbourhood (a 90 deg edge's mean is <= 0.71 long): a
    # perceived world-2 upper's side-wall point tilted up 50 deg, 12 mm below the line, took glue in the film model
    bad = (cnt >= 3) & (((length > 0.5) & (dot < 0)) | ((length > COHERENT) & (dot < np.cos(np.radians(TILTED_DEG)))))
    out = nrm.copy()
    out[bad] = mean[bad] / length[bad, None]
    return out


def _vote(pts: np.ndarray, side: np.ndarray, p: RegionParams, share: float) -> np.ndarray:
    """``side`` (n,) bool with each point that disagrees with at least ``share`` of its ``p.knn`` neighbours
    flipped to theirs (isolated mislabels from noisy normals; a true boundary is ~50/50)."""

    k = min(p.knn, len(pts) - 1)
    if k < 2:
        return side
    _, idx = knn(pts, k + 1)
    frac = side[idx[:, 1:]].mean(axis=1)
    return np.where(side & (frac <= 1 - share), False, np.where(~side & (frac >= share), True, side))


def _outward(pts: np.ndarray, normals: np.ndarray | None, centroid: np.ndarray) -> np.ndarray | None:
    """The upper's given normals, each flipped to point away from the part's centroid (scanners orient normals
    towards whichever camera saw a point, so a cloud fused from several views can mix both ways); None when
    there are none or they do not fit the points (they are then estimated). Only a cloud with more than
    ``MIXED_NORMALS`` of its normals facing the centroid is treated as mixed."""
    if normals is None:
        return None
    n = np.asarray(normals, dtype=np.float64)
    if n.shape != pts.shape or not np.all(np.isfinite(n)):
        return None
    n = unit(n)
    inward = np.einsum("ij,ij->i", n, pts - centroid) < 0
    if inward.mean() > MIXED_NORMALS:  # a few face inwards legitimately (a welt's underside, the waist)
        n[inward] *= -1
    return n


def _sharing_trees(fn: Callable[..., BondRegion]) -> Callable[..., BondRegion]:
    """``fn`` with one k-d tree per cloud for all of its steps (:func:`~gluecell.pathplan.cloud.shared_trees`)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> BondRegion:
        with shared_trees():
            return fn(*args, **kwargs)

    return run


@_sharing_trees
def upper_region(
    points: np.ndarray, bite_line: np.ndarray, normals: np.ndarray | None = None, params: RegionParams | None = None,
    *, margin_m: np.ndarray | None = None,
) -> BondRegion:  # fmt: skip
    """Bond region of a bottom-up lasted upper beside ``bite_line``.

    Args:
        points: (n, 3) float64 upper cloud, metres, base_link.
        bite_line: (m, 3) float64 closed bite line on the upper, base_link.
        normals: (n, 3) outward unit normals, or None to estimate them.
        margin_m: (m,) metres per bite-line vertex: the region starts this far inside the line there (e.g. 2 x
            that point's sigma), never less than ``params.bite_margin_mm``; None: ``bite_margin_mm`` all round.
    Raises:
        RegionError: bad scan, bite line with gaps or off the surface; OrientationError: wrong way up.
    """
    from scipy.spatial import cKDTree

    p = params or RegionParams()
    pts, normals = drop_outliers(_check_cloud(points, "upper", p), normals)
    try:
        bite = as_points("bite_line", bite_line, min_rows=8)
    except ValueError as exc:
        raise RegionError(f"bad bite line: {exc}") from exc
    _check_upper_up(pts, bite, p)
    pts, normals, bridged = _bridged(pts, normals, bite, np.array([0.0, 0.0, 1.0]), p)  # bond side: +z
    holes = _check_line(bite, pts, kdtree(pts), p, "bite line", bridged)
    keep = pts[:, 2] >= bite[:, 2].min() - p.keep_beyond_mm * 1e-3
    centroid = pts.mean(axis=0)
    nrm = _outward(pts, normals, centroid)
    v, vn = voxel_downsample(pts[keep], p.voxel_mm * 1e-3, None if nrm is None else nrm[keep])
    if vn is None:
        vn = estimate_normals(v, orient_to=centroid)
    vn = _consistent_normals(v, vn, 1.5 * p.voxel_mm * 1e-3)
    line = resample_polyline(bite, p.spacing_mm * 1e-3)
    frame = _line_frame(v, vn, line, np.tile([0.0, 0.0, 1.0], (len(line), 1)))  # bond side: +z (bottom-up)
    dist_idx = cKDTree(line).query(v)[1]
    side = np.einsum("ij,ij->i", v - line[dist_idx], frame[1][dist_idx]) >= 0
    reg = _build("upper", v, vn, line, frame, side, p)
    per_vertex = boundary_margins(bite, reg.boundary, margin_m, p.bite_margin_mm * 1e-3)
    at = boundary_index(reg, reg.s)
    meta = {"zmax": float(pts[:, 2].max()), "bite_margin_mm": float(per_vertex.max()) * 1e3,
            "margin_m": per_vertex, **holes}  # fmt: skip
    return replace(reg, signed=reg.signed - per_vertex[at], meta=meta)


def boundary_margins(line: np.ndarray, boundary: np.ndarray, margin_m: np.ndarray | None, floor: float) -> np.ndarray:
    """Per-vertex margins (k,) metres on the resampled ``boundary``: each takes the margin of the nearest vertex
    of the given ``line`` (m, 3) (``margin_m`` (m,)), never less than ``floor``.

    Raises:
        RegionError: ``margin_m`` of the wrong length, NaN, negative or over 5 mm.
    """
    from scipy.spatial import cKDTree

    if margin_m is None:
        return np.full(len(boundary), float(floor))
    mm = np.asarray(margin_m, dtype=np.float64).ravel()
    if mm.shape != (len(line),) or not np.all(np.isfinite(mm)) or mm.min() < 0 or mm.max() > 5e-3 + 1e-12:
        raise RegionError(f"per-point margins must be {len(line)} finite values within 0-5 mm, one per bite-line "
                          "point")  # fmt: skip
    return np.maximum(mm[cKDTree(line).query(boundary)[1]], float(floor))


def boundary_index(region: BondRegion, s: np.ndarray) -> np.ndarray:
    """Index (n,) of the boundary vertex at arc length ``s`` (the boundary is uniformly spaced)."""
    k = len(region.boundary)
    return np.minimum((np.asarray(s) / max(region.perimeter, 1e-12) * k).round().astype(np.int64) % k, k - 1)


def detect_rim(points: np.ndarray, params: RegionParams | None = None) -> np.ndarray:
    """The sole's rim (top edge of its sidewall) as a closed polyline (k, 3), one point per sector.

    Raises:
        RegionError: a sector holds no points (hole in the scan); OrientationError: no sidewall stands
            above the footbed (the sole is tread-up or flat).
    """
    p = params or RegionParams()
    pts = np.asarray(points, dtype=np.float64)
    c = pts[:, :2].mean(axis=0)
    rel = pts[:, :2] - c
    ang = np.arctan2(rel[:, 1], rel[:, 0])
    rad = np.linalg.norm(rel, axis=1)
    sec = np.floor((ang + np.pi) / (2 * np.pi) * p.rim_sectors).astype(int) % p.rim_sectors
    rim = np.full((p.rim_sectors, 3), np.nan)
    order = np.argsort(sec, kind="stable")
    bounds = np.searchsorted(sec[order], np.arange(p.rim_sectors + 1))
    tops: list[np.ndarray] = []  # per sector, its RIM_TRIES highest outer points, highest first
    for k in range(p.rim_sectors):
        idx = order[bounds[k] : bounds[k + 1]]
        outer = idx[rad[idx] >= 0.85 * rad[idx].max()] if len(idx) else idx
        tops.append(outer[np.argsort(-pts[outer, 2], kind="stable")[:RIM_TRIES]])
    flat = np.concatenate(tops)
    solid = dict(zip(flat.tolist(), has_neighbour(pts, RIM_NEIGHBOUR_M, flat).tolist()))
    for k, top in enumerate(tops):  # the highest with a neighbour: a flying point above the wall is passed over
        if len(top):
            rim[k] = pts[next((i for i in top if solid[int(i)]), top[0])]
    missing = np.flatnonzero(np.isnan(rim[:, 0]))
    if len(missing):
        raise RegionError(f"bad sole scan: no points in {len(missing)} of {p.rim_sectors} rim sectors (a hole)")
    despike(rim, pts, c, rad, order, bounds)
    centre = pts[rad < 0.4 * np.median(np.linalg.norm(rim[:, :2] - c, axis=1))]
    wall = np.median(rim[:, 2]) - (np.median(centre[:, 2]) if len(centre) else np.inf)
    if not wall >= p.min_wall_mm * 1e-3:
        raise OrientationError(
            f"sole rim stands {wall * 1e3:.1f} mm above its footbed centre (need >= {p.min_wall_mm:.0f} mm): "
            "the sole looks tread-up or has no sidewall; place it footbed-up"
        )
    # the max-z pick is noisy: smooth height and radius over +-2 sectors in polar form (a Cartesian average
    # would cut the toe's corners inwards, across the inner face of a thin wall)
    k = np.array([1, 2, 3, 2, 1], dtype=float) / 9.0
    rel = rim[:, :2] - c
    ang_r = np.arctan2(rel[:, 1], rel[:, 0])
    rad_r = np.linalg.norm(rel, axis=1)
    rad_s = np.median(np.stack([np.roll(rad_r, 1), rad_r, np.roll(rad_r, -1)]), axis=0)
    z_s = np.convolve(np.r_[rim[-2:, 2], rim[:, 2], rim[:2, 2]], k, "valid")
    return np.column_stack([c[0] + rad_s * np.cos(ang_r), c[1] + rad_s * np.sin(ang_r), z_s])


def _sole_normals(v: np.ndarray, line: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Estimated normals of a footbed-up sole: facing a viewpoint above its centre (the scanner's side),
    except the outer wall (outside the rim in plan view), which faces outwards."""
    top = np.r_[v[:, :2].mean(axis=0), v[:, 2].max() + 0.5]
    n = -estimate_normals(v, orient_to=top)
    out = (~inside) & (np.linalg.norm(n[:, :2], axis=1) > 0.5)
    c2 = v[:, :2].mean(axis=0)
    flip = out & (np.einsum("ij,ij->i", n[:, :2], v[:, :2] - c2) < 0)
    n[flip] *= -1
    return outer_wall_outwards(v, _face_away_from_material(v, n), inside, line)


def _face_away_from_material(v: np.ndarray, n: np.ndarray, probes_mm: tuple[float, ...] = (2, 3, 4, 5, 6, 7),
                             radius_mm: float = 1.5) -> np.ndarray:  # fmt: skip
    """Flip normals of thin walls that point into the material: the wall's other face is scanned a few mm
    away on the material side, while the open side is empty (the sole's cavity or the air outside).

    Points where neither side (or both) finds a surface keep their normal.
    """

    tree = kdtree(v)
    hits = []
    for sign in (1.0, -1.0):
        q = v[:, None, :] + sign * np.asarray(probes_mm)[None, :, None] * 1e-3 * n[:, None, :]
        d, _ = tree.query(q.reshape(-1, 3), distance_upper_bound=radius_mm * 1e-3)
        hits.append(np.isfinite(d).reshape(len(v), -1).sum(axis=1))
    flip = hits[0] > hits[1]
    out = n.copy()
    out[flip] *= -1
    return out


@_sharing_trees
def sole_region(
    points: np.ndarray, normals: np.ndarray | None = None, params: RegionParams | None = None
) -> BondRegion:
    """Bond region of a footbed-up sole: inside its rim (the inner sidewall and the footbed).

    Args:
        points: (n, 3) float64 sole cloud, metres, base_link.
        normals: (n, 3) outward unit normals, or None to estimate them (oriented upwards/inwards).
    """
    p = params or RegionParams()
    pts = _check_cloud(points, "sole", p)
    rim_raw = detect_rim(pts, p)  # on every point: a thin wall's top edge can look like a flying point
    pts, normals = drop_outliers(pts, normals)
    v, vn = voxel_downsample(pts, p.voxel_mm * 1e-3, None if normals is None else np.asarray(normals))
    line = resample_polyline(rim_raw, p.spacing_mm * 1e-3)
    side = points_in_polygon(v[:, :2], line[:, :2])
    in_poly = side
    if vn is None:
        vn = _sole_normals(v, line, side)
    vn = _consistent_normals(v, vn, 1.5 * p.voxel_mm * 1e-3)
    c2 = v[:, :2].mean(axis=0)
    from scipy.spatial import cKDTree

    frame = _line_frame(v, vn, line, np.column_stack([c2 - line[:, :2], np.zeros(len(line))]))
    # the wall is a few mm thick: beside the rim, a wall point's side is where its normal faces
    d_xy, j = cKDTree(line[:, :2]).query(v[:, :2])
    # inward is the rim's own plan normal (its left normal on a counter-clockwise rim), not the direction to the
    # centroid: at a narrow heel or toe the centroid lies far along the sole and that direction runs nearly
    # along the wall, so a slightly noisy wall normal put inner-wall points outside
    t = polyline_tangents(line)[:, :2]
    nin = np.column_stack([-t[:, 1], t[:, 0]])
    x, y = line[:, 0], line[:, 1]
    ccw = float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) > 0  # shoelace: the left normal is inward
    nin = nin if ccw else -nin
    in_xy = unit(nin[j])
    zone = d_xy < p.wall_zone_mm * 1e-3
    nxy = np.linalg.norm(vn[:, :2], axis=1)
    deep = line[j, 2] - v[:, 2] > p.wall_deep_mm * 1e-3
    # the tilted rule is for a wall that bulges out past the rim in plan (an in-curled rim); inside the rim the
    # polygon decides (noisy footbed normals tilt 0.3-0.6 beside the wall on perceived world-2 soles)
    tilted = zone & deep & ~side & (nxy > p.wall_deep_normal_xy) & (nxy <= p.wall_normal_xy)
    facing = np.einsum("ij,ij->i", vn[:, :2], in_xy)
    # a normal that runs along the rim (|cos| < WALL_FACING) says nothing about the side (a noisy inner-wall point
    # of a perceived world-2 boot sole faced along it and was put outside): there the polygon decides
    wall = zone & ((nxy > p.wall_normal_xy) | tilted) & (np.abs(facing) >= WALL_FACING)
    side = np.where(wall, facing > 0, side)
    # the rim line runs along the wall's crest, whose width the max-z pick wanders across: an upward-facing
    # point within that width of it and below it is footbed/crest (inside), not the outer wall
    crest = ~wall & (d_xy < p.rim_width_mm * 1e-3) & (v[:, 2] <= line[j, 2] + 1e-3)
    side = side | crest
    # the crest's outer slope (normal leaning outwards past its apex) is not bond face, whatever the pick put inside
    side = side & ~crest_outer_slope(vn, side, d_xy, line[j, 2] - v[:, 2], facing)
    # at the wall both sides meet within a few mm: there only a point that all its neighbours contradict flips
    # a tilted wall point is only as sure as its noisy normal: a footbed point tilted 0.3-0.5 by scan noise put
    # its little cluster outside (world 2, perceived soles: "glue would land 14 mm beyond the boundary"), so
    # those follow the wider vote like points away from the wall
    side = np.where(zone & ~tilted, _vote(v, side, p, 1.0), _vote(v, side, p, p.side_vote))
    # outer wall: outside, in the zone, under the rim and not more than OUTER_WALL_OUT_M outside it in plan (farther
    # out, a point that faces in is an in-curled rim's inner face, above)
    outer = zone & ~side & (in_poly | (d_xy < OUTER_WALL_OUT_M)) & (line[j, 2] - v[:, 2] > 1e-3)
    return _build("sole", v, outer_wall_faces_out(vn, outer, in_xy), line, frame, side, p)


@dataclass(frozen=True)
class BandWidthParams:
    """Band width and the margin of cloud kept beyond both band edges (mm)."""

    width_mm: float = 40.0
    margin_mm: float = 15.0

    def __post_init__(self) -> None:
        if not (self.width_mm > 0 and self.margin_mm >= 0):
            raise ValueError("width_mm must be > 0 and margin_mm >= 0")


@register
class BandWidth(Stage):
    """Sets the band width and crops the region to the band plus a margin on both sides."""

    name = "band_width"
    kind = "region"
    idempotent = True
    Params = BandWidthParams

    def modify_region(self, region: BondRegion) -> BondRegion:
        w, m = self.params.width_mm * 1e-3, self.params.margin_mm * 1e-3
        keep = (region.signed >= -m) & (region.signed <= w + m)
        return replace(
            region, points=region.points[keep], normals=region.normals[keep], signed=region.signed[keep],
            s=region.s[keep], width=w,
        )  # fmt: skip


@dataclass(frozen=True)
class SubsampleParams:
    """Keep one point per cubic voxel of this edge (mm)."""

    voxel_mm: float = 3.0

    def __post_init__(self) -> None:
        if not self.voxel_mm > 0:
            raise ValueError("voxel_mm must be > 0")


@register
class Subsample(Stage):
    """Thins the region's points to one per voxel (the first in index order; deterministic)."""

    name = "subsample"
    kind = "region"
    idempotent = True
    Params = SubsampleParams

    def modify_region(self, region: BondRegion) -> BondRegion:
        keys = np.floor(region.points / (self.params.voxel_mm * 1e-3)).astype(np.int64)
        _, first = np.unique(row_keys(keys), return_index=True)
        idx = np.sort(first)
        return replace(
            region, points=region.points[idx], normals=region.normals[idx], signed=region.signed[idx], s=region.s[idx]
        )
