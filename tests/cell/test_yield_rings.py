"""Yield: contour rings stay closed when the planner joins them with a raster fill (no dry seam).

The 50-pair demo's uppers all had a ~26 mm^2 dry patch at the heel, across the band: the rings of
``contour_offset`` were joined with ``raster_fill``'s open lines into one ToolPath whose single ``closed`` flag
became False, so every ring was smoothed, resampled and led in/out as an open line and its gun stayed off
over the 6-8 mm between its two ends, at the same place on every ring.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan.pipeline import DEFAULT_MODIFIERS
from gluecell.pathplan.region import upper_region
from gluecell.pathplan.stages import build_pipeline, build_stage
from gluecell.pathplan.synthetic import make_synthetic_pair
from gluecell.pathplan.toolpath import concat_paths

#: A closed ring's gun-on stretch passes over its own start again (6 mm overlap): its start lies this close to
#: the stretch's later segments (an open ring stops 6-8 mm short of it).
MAX_START_MISS_M = 0.5e-3
#: Waypoints skipped after the start before looking for the return.
SKIP = 20


@pytest.fixture(scope="module")
def rings_and_path():
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 25000, seed=3, noise_mm=0.1)
    region = upper_region(pts, pair.bite_line, nrm)
    rings = build_stage({"name": "contour_offset", "width_mm": 20.0})(region)
    raster = build_stage({"name": "raster_fill"})(region)
    joined = concat_paths([rings, raster])
    return rings, raster, joined, build_pipeline(list(DEFAULT_MODIFIERS))(joined)


def _start_miss(sprayed: np.ndarray) -> float:
    """Distance (m) from the first sprayed point to the segments of the stretch after ``SKIP`` waypoints."""
    a, b = sprayed[SKIP:-1], sprayed[SKIP + 1 :]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", sprayed[0] - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-18), 0, 1)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - sprayed[0], axis=1)))


def test_joined_path_keeps_each_pass_closure(rings_and_path):
    rings, raster, joined, _ = rings_and_path
    assert rings.closed and not raster.closed and not joined.closed
    for idx in joined.passes():
        from_rings = bool(idx[0] < len(rings))
        assert joined.take(idx).closed == from_rings


def test_every_ring_is_sprayed_all_round(rings_and_path):
    rings, _, _, final = rings_and_path
    misses = []
    for pid in np.unique(rings.pass_id):
        on = np.flatnonzero((final.pass_id == pid) & final.spray)
        assert len(on) > 2 * SKIP and np.all(np.diff(on) == 1)  # one gun-on stretch per ring
        # a waypoint with the gun on sprays the segment to the next one
        misses.append(_start_miss(final.contact[np.r_[on, on[-1] + 1]]))
    assert max(misses) <= MAX_START_MISS_M, f"ring start missed by (mm): {np.round(np.array(misses) * 1e3, 2)}"


#: Largest nozzle turn (deg) between neighbouring sprayed waypoints of a ring on the synthetic upper (3.8 deg
#: mid-ring where the footprint's corners are; 10.4 deg at the seam when the axis smoothing treated the ring as
#: an open line and averaged each end one-sidedly).
MAX_TURN_DEG = 5.0


def test_the_nozzle_turns_smoothly_across_each_ring_seam(rings_and_path):
    """On the demo's pairs that seam jump, executed by the arm through the ring's overlap at the heel, put glue
    0.5-1.0 mm above the true line (pairs 00007 and 00013: 0.51 / 0.97 mm on the heel view; 0 with this)."""
    rings, _, _, final = rings_and_path
    for pid in np.unique(rings.pass_id):
        on = np.flatnonzero((final.pass_id == pid) & final.spray)
        d = final.direction[on]
        turn = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", d[1:], d[:-1]), -1.0, 1.0)))
        assert turn.max() <= MAX_TURN_DEG, f"ring {pid}: {turn.max():.1f} deg at waypoint {turn.argmax()} of {len(d)}"
