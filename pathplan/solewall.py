"""Sole-wall repairs for perceived scans (issue 15 item 2, world 2): rim spikes from stray points, outer-wall
normals that face into the sole. Used by :func:`gluecell.pathplan.region.sole_region` / ``detect_rim``."""

from __future__ import annotations

import numpy as np

__all__ = ["despike", "outer_wall_faces_out", "RIM_SPIKE_M", "RIM_SPIKE_SECTORS", "OUTER_WALL_OUT_M"]

#: A rim point more than this (m) off the median radius of the sectors round it is a spike (re-picked) ...
RIM_SPIKE_M = 6e-3
#: ... over this many sectors (odd; a median removes spikes up to half of it wide).
RIM_SPIKE_SECTORS = 9
#: Outer-wall points whose normal faces into the sole are turned out up to this far (m) outside the rim in plan.
OUTER_WALL_OUT_M = 2e-3


def despike(rim: np.ndarray, pts: np.ndarray, c: np.ndarray, rad: np.ndarray, order: np.ndarray,
            bounds: np.ndarray) -> None:  # fmt: skip
    """Re-pick, in place, each rim point whose radius is more than :data:`RIM_SPIKE_M` off the median of the
    :data:`RIM_SPIKE_SECTORS` sectors round it: the highest point of its sector within that band of the median radius
    (if any; else the median radius at the rim's height there). A few stray points far out in 1-3 sectors
    (a perceived world-2 sole: 20-26 mm out) made the rim jump out and back, and its first ring broke."""
    k = RIM_SPIKE_SECTORS // 2
    r = np.linalg.norm(rim[:, :2] - c, axis=1)
    med = np.median(np.stack([np.roll(r, s) for s in range(-k, k + 1)]), axis=0)
    zmed = np.median(np.stack([np.roll(rim[:, 2], s) for s in range(-k, k + 1)]), axis=0)
    for s in np.flatnonzero(np.abs(r - med) > RIM_SPIKE_M):
        idx = order[bounds[s] : bounds[s + 1]]
        near = idx[np.abs(rad[idx] - med[s]) <= RIM_SPIKE_M]
        if len(near):
            rim[s] = pts[near[np.argmax(pts[near, 2])]]
        else:
            a = np.arctan2(rim[s, 1] - c[1], rim[s, 0] - c[0])
            rim[s] = [c[0] + med[s] * np.cos(a), c[1] + med[s] * np.sin(a), zmed[s]]


def outer_wall_faces_out(vn: np.ndarray, outer: np.ndarray, in_xy: np.ndarray) -> np.ndarray:
    """``vn`` with the normals of ``outer`` (outer-wall) points that face into the sole (``in_xy``: the rim's
    inward plan direction at each point) mirrored to face out: the wall stands between them and every nozzle inside
    the rim. World-2 cup soles show the wall's outer face but not its inner one, and perceived normals on a thin
    wall flip: the film model put glue 4-7 mm beyond the rim on them, the tuner moved the edge passes out to its
    cap and the rings broke ("first ring has a 17-27 mm hole")."""
    wrong = outer & (np.einsum("ij,ij->i", vn[:, :2], in_xy) > 0)
    if not wrong.any():
        return vn
    out = vn.copy()
    flat = out[wrong, :2]
    out[wrong, :2] = flat - 2 * np.einsum("ij,ij->i", flat, in_xy[wrong])[:, None] * in_xy[wrong]
    return out
