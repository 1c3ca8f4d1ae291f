"""Sole-wall repairs for perceived scans (issue 15 item 2, world 2): rim spikes from stray points, outer-wall
normals that face into the sole. Used by :func:`gluecell.pathplan.region.sole_region` / ``detect_rim``."""

from __future__ import annotations

import numpy as np

__all__ = [
    "despike", "outer_wall_faces_out", "crest_outer_slope", "RIM_SPIKE_M", "RIM_SPIKE_SECTORS", "OUTER_WALL_OUT_M",
    "CREST_BAND_M", "CREST_OUTER_FACING", "CREST_DROP_M",
]  # fmt: skip

#: A rim point more than this (m) off the median radius of the sectors round it is a spike (re-picked) ...
RIM_SPIKE_M = 6e-3
#: ... over this many sectors (odd; a median removes spikes up to half of it wide).
RIM_SPIKE_SECTORS = 9
#: Outer-wall points whose normal faces into the sole are turned out up to this far (m) outside the rim in plan.
OUTER_WALL_OUT_M = 2e-3
#: Within this plan distance (m) of the rim line, inside it, a point may lie on the crest's outer slope ...
CREST_BAND_M = 3e-3
#: ... when its normal leans outwards past the crest's apex: its plan component along the rim's inward direction is
#: below this (the apex, where the crest's tangent plane is level, has 0; -0.3 = the surface falls away outwards at
#: >= 17 deg, beyond the few-degree normal noise of a level patch).
CREST_OUTER_FACING = -0.3
#: ... and when it lies less than this (m) below the rim line: on a half-round crest of radius rho the slope between
#: that lean and the wall rule's 0.8 lies within 0.4 rho of the apex, <= 1.2 mm on the 3-6 mm walls, + scan noise
#: (a footbed point beside the wall, several mm lower, keeps its label whatever its noisy normal says).
CREST_DROP_M = 1.5e-3


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


def crest_outer_slope(vn: np.ndarray, inside: np.ndarray, d_xy: np.ndarray, below: np.ndarray,
                      facing: np.ndarray) -> np.ndarray:  # fmt: skip
    """Points labelled ``inside`` within :data:`CREST_BAND_M` of the rim (plan distance ``d_xy``) and less than
    :data:`CREST_DROP_M` below it (``below``: the rim line's height above the point) whose normal
    ``vn`` faces up but leans outwards (``facing``: its plan component along the rim's inward direction) below
    :data:`CREST_OUTER_FACING`: they lie past the crest's apex, on the slope down to the outer wall, which is not
    bond surface (the bond face looks into the sole and up to the upper). The max-z rim pick wanders across a
    rounded crest, so the polygon and the crest-width rule put such points inside: on demo soles 00011 / 00038
    none of them lay on a true bond face, yet they were counted dry bond band and refused the sole at 97.5-98 %.
    """
    near = (d_xy < CREST_BAND_M) & (below < CREST_DROP_M)
    return inside & near & (vn[:, 2] > 0) & (facing < CREST_OUTER_FACING)
