"""Scoring a true film against the true bite line and bond regions: surface distances and metrics.

Distances are measured along the surface, on the graph of mesh edges (Dijkstra), and a face's
distance is that of its centroid: ``min over its corners (d(corner) + |centroid - corner|)``. On the
world's ring-grid meshes the path up a column is an edge path, so "upward from the bite line" is
exact; diagonal paths are overestimated by at most ~8 % (triangle-graph metric). A bite point is
joined to the three corners of the face it lies on. That centroid rule overestimates by up to a face's
corner-to-centroid leg (~1 mm on these meshes), too coarse for "glue above the bite line" at the 0.5 mm
goal: within ``NEAR_LINE_M`` of the bite line a face's distance is the straight distance from its centroid
to the (finely resampled) line instead, where the surface is flat enough for the two to agree.
"""

from __future__ import annotations

import numpy as np

__all__ = ["face_areas", "level_film", "face_distance", "distance_from_points", "distance_from_faces", "upper_metrics",
           "sole_metrics", "line_distance", "face_line_distance", "NEAR_LINE_M"]  # fmt: skip

#: Within this of the bite line, face distances are straight centroid-to-line distances (metres).
NEAR_LINE_M = 5e-3


def line_distance(points: np.ndarray, line: np.ndarray, step: float = 0.05e-3) -> np.ndarray:
    """Straight distance (k,) metres from ``points`` (k, 3) to the closed polyline ``line`` (m, 3): exact, to its
    segments (:func:`gluecell.core.geometry.polyline_distance`; ``step`` is kept for callers and unused)."""
    from gluecell.core.geometry import polyline_distance

    return polyline_distance(points, line)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangle areas (F,) float64, m^2."""
    tri = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def level_film(vertices: np.ndarray, faces: np.ndarray, area: np.ndarray, volume: np.ndarray,
               radius_m: float) -> np.ndarray:  # fmt: skip
    """Film thickness (F,) metres after levelling: each face's ``volume`` (F,) m^3 spreads over the faces
    whose centroids lie within ``radius_m`` of its own, in proportion to their ``area`` (F,) m^2.

    Volume is conserved exactly; with ``radius_m = 0`` the film is ``volume / area``.
    """
    src = np.flatnonzero(volume > 0)
    if radius_m <= 0 or src.size == 0:
        return volume / area
    from scipy.spatial import cKDTree

    c = vertices[faces].mean(axis=1)
    pairs = cKDTree(c[src]).sparse_distance_matrix(cKDTree(c), radius_m, output_type="ndarray")
    i, j = src[pairs["i"]], pairs["j"]
    i, j = np.concatenate([i, src]), np.concatenate([j, src])  # every face reaches itself (distance 0)
    keep = np.ones(len(i), dtype=bool)
    keep[: len(pairs)] = i[: len(pairs)] != j[: len(pairs)]
    i, j = i[keep], j[keep]
    spread = np.bincount(i, weights=area[j], minlength=len(area))
    return np.bincount(j, weights=volume[i] / spread[i], minlength=len(area))


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def _dijkstra(n: int, i: np.ndarray, j: np.ndarray, w: np.ndarray, sources: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    g = coo_matrix((np.maximum(w, 1e-12), (i, j)), shape=(n, n)).tocsr()
    return dijkstra(g, directed=False, indices=np.unique(sources), min_only=True)


def distance_from_points(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Surface distance (V,) metres of every vertex from a set of points lying on the mesh.

    Args:
        vertices: (V, 3) float64; faces: (F, 3) int; points: (m, 3) float64 on the surface.
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    pid = scene.compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))["primitive_ids"].numpy()
    e = _edges(faces)
    nv, m = len(vertices), len(points)
    corner = faces[pid.astype(np.int64)]  # (m, 3)
    src = np.repeat(nv + np.arange(m), 3)
    dst = corner.ravel()
    i = np.concatenate([e[:, 0], src])
    j = np.concatenate([e[:, 1], dst])
    w = np.concatenate([np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1),
                        np.linalg.norm(np.repeat(points, 3, axis=0) - vertices[dst], axis=1)])  # fmt: skip
    return _dijkstra(nv + m, i, j, w, nv + np.arange(m))[:nv]


def distance_from_faces(vertices: np.ndarray, faces: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Surface distance (V,) metres of every vertex from the region ``region`` ((F,) bool), 0 on it."""
    e = _edges(faces)
    w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    if not np.any(region):
        return np.full(len(vertices), np.inf)
    return _dijkstra(len(vertices), e[:, 0], e[:, 1], w, faces[region].ravel())


def face_distance(vertices: np.ndarray, faces: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """Surface distance (F,) metres of each face centroid, from per-vertex distances ``dv`` (V,)."""
    c = vertices[faces].mean(axis=1)
    legs = np.linalg.norm(vertices[faces] - c[:, None, :], axis=2)
    return np.min(dv[faces] + legs, axis=1)


def _film_stats(film: np.ndarray, area: np.ndarray, mask: np.ndarray, covered_m: float) -> dict[str, float]:
    a = area[mask]
    total = float(a.sum())
    cov = film[mask] >= covered_m
    f_mm = film[mask] * 1e3
    return {
        "coverage": float(a[cov].sum() / total) if total > 0 else 0.0,
        "gap_area_mm2": float(a[~cov].sum() * 1e6),
        "bond_area_mm2": total * 1e6,
        "film_mean_mm": float(np.sum(f_mm * a) / total) if total > 0 else 0.0,
        "film_p05_mm": float(np.percentile(f_mm, 5)) if f_mm.size else 0.0,
    }


def _beyond(dist_m: np.ndarray, area: np.ndarray, prefix: str) -> dict[str, float]:
    d = dist_m * 1e3
    return {
        f"{prefix}_max_mm": float(d.max()) if d.size else 0.0,
        f"{prefix}_p99_mm": float(np.percentile(d, 99)) if d.size else 0.0,
        f"{prefix}_area_mm2": float(area.sum() * 1e6),
    }


def face_line_distance(vertices: np.ndarray, faces: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Surface distance (F,) metres of each face from the bite ``line`` (m, 3): straight centroid-to-line
    within ``NEAR_LINE_M``, along the edge graph beyond (see the module docstring)."""
    dface = face_distance(vertices, faces, distance_from_points(vertices, faces, line))
    straight = line_distance(vertices[faces].mean(axis=1), line)
    return np.where(straight < NEAR_LINE_M, straight, dface)


def upper_metrics(
    vertices: np.ndarray, faces: np.ndarray, film: np.ndarray, bond: np.ndarray, bite_line: np.ndarray,
    covered_m: float, visible_m: float, bands_m: tuple[float, ...] = (2e-3, 5e-3),
) -> dict[str, float]:  # fmt: skip
    """Metrics of the upper (see ``spray.score_upper``); all arrays in base_link metres."""
    area = face_areas(vertices, faces)
    dface = face_line_distance(vertices, faces, bite_line)
    out = _film_stats(film, area, bond, covered_m)
    for b in bands_m:
        band = bond & (dface <= b)
        ab = float(area[band].sum())
        out[f"band_coverage_{b * 1e3:g}mm"] = float(area[band & (film >= covered_m)].sum() / ab) if ab > 0 else 0.0
    above = ~bond & (film >= visible_m)
    out.update(_beyond(dface[above], area[above], "glue_above"))
    return out


def sole_metrics(
    vertices: np.ndarray, faces: np.ndarray, film: np.ndarray, bond: np.ndarray, covered_m: float, visible_m: float
) -> dict[str, float]:
    """Metrics of the sole (see ``spray.score_sole``); all arrays in base_link metres."""
    area = face_areas(vertices, faces)
    out = _film_stats(film, area, bond, covered_m)
    outside = ~bond & (film >= visible_m)
    if np.any(outside):
        d = face_distance(vertices, faces, distance_from_faces(vertices, faces, bond))[outside]
    else:
        d = np.zeros(0)
    out.update(_beyond(d, area[outside], "outside"))
    return out
