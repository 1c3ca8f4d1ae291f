"""The style library of the simulated cell: each style's nominal upper and sole (what a plant has as CAD data
of its lasts and sole moulds, or as a scan of the pair its line was taught on).

The deformation step can register a nominal upper and sole onto the scans (``predict_attach(reference=...,
sole_reference=...)``): they fill what the cameras miss. Here they come from the world's nominal pair of the
style, size and side (a fixed seed, never a bench or training seed), sampled as dense clouds with normals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NOMINAL_SEED", "nominal_pair", "nominal_upper", "nominal_sole"]

#: Seed of the nominal pair of every style/size/side (the "teacher's" pair; the same as the teach-once baseline).
NOMINAL_SEED = 424242
#: Points sampled from each nominal part.
N_POINTS = 40_000


def nominal_pair(cache: dict, item: Any) -> Any:
    """The world's nominal pair (WorldPair) of ``item``'s style, size and side; cached in ``cache``."""
    from gluecell.cell.sim.world import make_pair

    key = ("pair", item.style, float(item.size_eu), item.side)
    if key not in cache:
        cache[key] = make_pair(NOMINAL_SEED, style=item.style, size_eu=item.size_eu, side=item.side)
    return cache[key]


def nominal_upper(cache: dict, item: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (n, 3), normals (n, 3), nominal bite line (m, 3)) of the nominal upper of ``item``'s style, size
    and side, base_link metres at the upper station; cached in ``cache``."""
    key = ("upper", item.style, float(item.size_eu), item.side)
    if key not in cache:
        pair = nominal_pair(cache, item)
        pts, fi = pair.upper_mesh.sample(N_POINTS, return_index=True, seed=1)
        cache[key] = (np.asarray(pts), np.asarray(pair.upper_mesh.face_normals[fi]), np.asarray(pair.bite_line))
    return cache[key]


def nominal_sole(cache: dict, item: Any) -> tuple[np.ndarray, np.ndarray]:
    """(points, normals) of the nominal sole of ``item``'s style, size and side (free, footbed up at the sole
    station); cached in ``cache``."""
    key = ("sole", item.style, float(item.size_eu), item.side)
    if key not in cache:
        pair = nominal_pair(cache, item)
        pts, fi = pair.sole_mesh.sample(N_POINTS, return_index=True, seed=1)
        cache[key] = (np.asarray(pts), np.asarray(pair.sole_mesh.face_normals[fi]))
    return cache[key]
