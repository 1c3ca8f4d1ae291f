"""Bond regions: signed surface distance from the bite line / rim, and every way a region is refused."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan.errors import OrientationError, RegionError
from gluecell.pathplan.region import RegionParams, detect_rim, sole_region, upper_region
from gluecell.pathplan.synthetic import make_synthetic_pair

#: Signed distance near the line must match the true height above the line on the vertical side (mm).
SIGNED_TOL_MM = 0.6
#: The detected rim must lie within this of the sole's true rim height (mm).
RIM_TOL_MM = 1.0


@pytest.fixture(scope="module")
def pair():
    return make_synthetic_pair()


@pytest.fixture(scope="module")
def upper_cloud(pair):
    return pair.sample("upper", 30000, seed=1, noise_mm=0.2)


def test_upper_signed_distance_matches_height_on_the_side(pair, upper_cloud):
    pts, nrm = upper_cloud
    r = upper_region(pts, pair.bite_line, nrm)
    th = np.arctan2(r.points[:, 1] + 0.20, r.points[:, 0] - 0.55)
    # on the vertical wall (below the 12 mm edge radius) and within 5 mm of the line
    wall = (r.points[:, 2] < 0.18 - 0.012 - 0.001) & (np.abs(r.signed) < 5e-3)
    z_line = 0.18 - 0.018 - 0.003 * np.cos(th[wall])  # the synthetic bite line height at that bearing
    err = (r.signed[wall] - (r.points[wall, 2] - z_line)) * 1e3
    assert wall.sum() > 200
    assert np.percentile(np.abs(err), 99) < SIGNED_TOL_MM
    # the bottom (top face) is far inside the bond side; the side well below the line is outside
    assert np.all(r.signed[r.points[:, 2] > 0.1795] > 0.015)  # >= 3 mm of side + 18.8 mm of edge radius
    assert np.all(r.signed[r.points[:, 2] < 0.150] < 0)


def test_upper_without_normals_estimates_them(pair, upper_cloud):
    pts, _ = upper_cloud
    r = upper_region(pts, pair.bite_line, None)
    top = r.points[:, 2] > 0.1795
    assert np.mean(r.normals[top, 2] > 0.9) > 0.95


def test_sole_rim_and_sides(pair):
    pts, nrm = pair.sample("sole", 30000, seed=2, noise_mm=0.1)
    rim = detect_rim(pts)
    assert np.abs(rim[:, 2] - 0.052).max() * 1e3 < RIM_TOL_MM
    r = sole_region(pts, nrm)
    footbed = (np.abs(r.points[:, 2] - 0.032) < 0.5e-3) & (r.normals[:, 2] > 0.9)
    assert np.all(r.signed[footbed] > 0.015), "the footbed lies inside the rim"
    outer_wall = (r.normals[:, 2] < 0.1) & (np.einsum("ij,ij->i", r.normals[:, :2], r.points[:, :2] - [0.55, 0.20]) > 0)
    assert np.mean(r.signed[outer_wall & (r.points[:, 2] < 0.045)] < 0) > 0.97


def test_bite_line_with_gap_is_refused(pair, upper_cloud):
    pts, nrm = upper_cloud
    bl = np.delete(pair.bite_line, np.arange(100, 110), axis=0)  # ~20 mm hole
    with pytest.raises(RegionError, match="gap of"):
        upper_region(pts, bl, nrm)


def test_bite_line_off_the_surface_is_refused(pair, upper_cloud):
    pts, nrm = upper_cloud
    bl = pair.bite_line.copy()
    bl[50, 0] += 0.02
    bl[50, 1] += 0.02
    with pytest.raises(RegionError):
        upper_region(pts, bl, nrm)


def test_bite_margin_moves_the_region_inside_the_line(pair, upper_cloud):
    """A margin for the line's uncertainty shifts every signed distance by exactly that much (bond side)."""
    pts, nrm = upper_cloud
    r0 = upper_region(pts, pair.bite_line, nrm)
    r1 = upper_region(pts, pair.bite_line, nrm, RegionParams(bite_margin_mm=1.5))
    assert np.array_equal(r0.points, r1.points)
    assert np.allclose(r0.signed - r1.signed, 1.5e-3, atol=1e-12)
    assert r1.meta["bite_margin_mm"] == 1.5
    with pytest.raises(ValueError, match="bite_margin_mm"):
        RegionParams(bite_margin_mm=float("nan"))


def test_sole_point_with_a_noisy_normal_stays_inside(pair):
    """A footbed point near the wall whose normal noise tilts it outwards is still inside the rim."""
    pts, nrm = pair.sample("sole", 30000, seed=2, noise_mm=0.1)
    r0 = sole_region(pts, nrm)
    footbed = np.flatnonzero((np.abs(pts[:, 2] - 0.032) < 0.5e-3) & (nrm[:, 2] > 0.9))
    rim = detect_rim(pts)
    d = np.min(np.linalg.norm(pts[footbed, None, :2] - rim[None, :, :2], axis=2), axis=1)
    i = footbed[np.argmin(np.abs(d - 0.007))]  # a footbed point ~7 mm in from the rim (inside the wall zone)
    bad = nrm.copy()
    out = pts[i, :2] - np.array([0.55, 0.20])
    bad[i] = np.r_[0.7 * out / np.linalg.norm(out), 0.7]  # tilted 45 degrees outwards
    bad[i] /= np.linalg.norm(bad[i])
    r1 = sole_region(pts, bad)
    k = np.flatnonzero(np.all(np.isclose(r1.points, pts[i]), axis=1))
    assert len(k) == 1 and r1.signed[k[0]] > 0, "a single tilted normal must not put a footbed point outside"
    assert np.mean(r0.signed > 0) == pytest.approx(np.mean(r1.signed > 0), abs=1e-3)


def _punch(pts, nrm, centre, radius):
    keep = np.linalg.norm(pts - centre, axis=1) > radius
    return pts[keep], nrm[keep]


def test_bite_line_across_a_scan_hole_is_accepted(pair, upper_cloud):
    """Dark or grazing leather leaves holes in a real scan: a line running across one stays plannable."""
    pts, nrm = upper_cloud
    bl = pair.bite_line
    hp, hn = _punch(pts, nrm, bl[60], 0.008)  # a 16 mm wide hole centred on the line
    d = np.linalg.norm(hp[:, None] - bl[None, 55:66], axis=2).min(axis=0)
    assert d.max() > RegionParams().on_surface_mm * 1e-3  # the line really leaves the scanned points there
    r = upper_region(hp, bl, hn)
    assert 0 < r.meta["hole_fraction"] < RegionParams().max_hole_fraction
    assert r.meta["hole_length_mm"] > 4.0


def test_bite_line_off_the_surface_inside_a_hole_is_refused(pair, upper_cloud):
    """Inside a hole a line point must still lie on the surface fitted round the hole."""
    pts, nrm = upper_cloud
    hp, hn = _punch(pts, nrm, pair.bite_line[60], 0.008)
    bl = pair.bite_line.copy()
    out = bl[60] - np.array([0.55, -0.20, bl[60, 2]])
    bl[60, :2] += 0.006 * out[:2] / np.linalg.norm(out[:2])  # 6 mm out from the side, in the hole
    with pytest.raises(RegionError, match="off the surface fitted"):
        upper_region(hp, bl, hn)


def test_bite_line_mostly_in_holes_is_refused(pair, upper_cloud):
    pts, nrm = upper_cloud
    hp, hn = pts, nrm
    for i in range(0, len(pair.bite_line), 12):  # holes along the whole line: nothing left to check it against
        hp, hn = _punch(hp, hn, pair.bite_line[i], 0.008)
    with pytest.raises(RegionError, match="holes of the scan"):
        upper_region(hp, pair.bite_line, hn)


def test_upper_wrong_way_up_is_refused(pair, upper_cloud):
    pts, _ = upper_cloud
    # flip about z and add the shaft (collar) that a wrong-way-up upper shows on top
    flipped = pts.copy()
    flipped[:, 2] = 0.22 - flipped[:, 2]
    rng = np.random.default_rng(0)
    a, h = rng.uniform(0, 2 * np.pi, 4000), rng.uniform(0, 0.08, 4000)
    shaft = np.column_stack([0.45 + 0.04 * np.cos(a), -0.20 + 0.04 * np.sin(a), 0.18 + h])
    cloud = np.vstack([flipped, shaft])
    bl = pair.bite_line.copy()
    bl[:, 2] = 0.22 - bl[:, 2]
    with pytest.raises(OrientationError, match="wrong way up"):
        upper_region(cloud, bl, None)
    # a bite line far below the top is refused even on a symmetric part
    with pytest.raises(OrientationError):
        upper_region(flipped, bl, None)


def test_sole_tread_up_is_refused(pair):
    pts, _ = pair.sample("sole", 20000, seed=3, visible_only=False)
    flipped = pts.copy()
    flipped[:, 2] = 0.072 - flipped[:, 2]
    with pytest.raises(OrientationError, match="tread-up"):
        sole_region(flipped)


@pytest.mark.parametrize("bad", ["empty", "tiny", "nan", "flat"])
def test_bad_scans_are_refused(bad, pair, upper_cloud):
    pts, _ = upper_cloud
    nan = np.where(np.arange(len(pts))[:, None] == 7, np.nan, pts)
    cloud = {"empty": np.empty((0, 3)), "tiny": pts[:50], "nan": nan, "flat": pts * [0.1, 0.1, 1.0]}[bad]
    with pytest.raises(RegionError):
        upper_region(cloud, pair.bite_line, None, RegionParams())


def test_upper_normals_pointing_both_ways_are_made_outward(pair, upper_cloud):
    """A cloud fused from several cameras can carry normals oriented towards each camera: they are flipped out."""
    pts, nrm = upper_cloud
    mixed = nrm.copy()
    mixed[np.random.default_rng(4).random(len(nrm)) < 0.3] *= -1
    a = upper_region(pts, pair.bite_line, nrm)
    b = upper_region(pts, pair.bite_line, mixed)
    assert np.mean(np.einsum("ij,ij->i", a.normals, b.normals) > 0.9) > 0.99
    assert np.allclose(a.signed, b.signed, atol=0.5e-3)
