"""The sole's rim band: points on the crest's outer slope (normal leaning outwards past the apex) are not bond face.

A synthetic round cup sole (132 mm across) with a 4 mm wall whose crest is a half-round of 2 mm radius: inside
the rim lie the footbed, the inner wall and the crest's inner half; the crest's outer half falls away to the outer
wall.
"""

from __future__ import annotations

import numpy as np
import pytest

import gluecell.pathplan.solewall as solewall
from gluecell.pathplan.region import sole_region

C = np.array([0.55, 0.20, 0.03])  # footbed centre (m)
R_IN, WALL, CREST_R, H = 62e-3, 4e-3, 2e-3, 15e-3  # inner wall radius, wall thickness, crest radius, rim height
LEAN = solewall.CREST_OUTER_FACING  # the rule's threshold as shipped


def _cup(n_per_mm2: float = 2.0, noise_m: float = 0.1e-3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points and true outward normals of the cup (footbed, inner wall, half-round crest, outer wall)."""
    rng = np.random.default_rng(seed)
    rc, zc = R_IN + WALL / 2, H - CREST_R  # crest centre (radius, height)
    parts = []

    def add(r, z, nr, nz, th):
        parts.append(np.column_stack([r * np.cos(th), r * np.sin(th), z, nr * np.cos(th), nr * np.sin(th), nz]))

    def n(area_m2):
        return int(area_m2 * 1e6 * n_per_mm2)

    k = n(np.pi * R_IN**2)  # footbed (uniform over the disc), normal up
    r = R_IN * np.sqrt(rng.random(k))
    add(r, np.zeros(k), np.zeros(k), np.ones(k), rng.uniform(0, 2 * np.pi, k))
    k = n(2 * np.pi * R_IN * zc)  # inner wall, normal towards the centre
    add(np.full(k, R_IN), rng.uniform(0, zc, k), -np.ones(k), np.zeros(k), rng.uniform(0, 2 * np.pi, k))
    k = n(2 * np.pi * rc * np.pi * CREST_R)  # crest half-round: phi = 0 outward-horizontal ... pi inward-horizontal
    phi = rng.uniform(0, np.pi, k)
    add(rc + CREST_R * np.cos(phi), zc + CREST_R * np.sin(phi), np.cos(phi), np.sin(phi), rng.uniform(0, 2 * np.pi, k))
    k = n(2 * np.pi * (R_IN + WALL) * (zc + 5e-3))  # outer wall down past the footbed, normal outwards
    add(np.full(k, R_IN + WALL), rng.uniform(-5e-3, zc, k), np.ones(k), np.zeros(k), rng.uniform(0, 2 * np.pi, k))
    a = np.concatenate(parts)
    pts = a[:, :3] + C + rng.normal(0, noise_m, (len(a), 3))
    return pts, a[:, 3:]


@pytest.fixture(scope="module")
def cup():
    return _cup()


def _crest_halves(region) -> tuple[np.ndarray, np.ndarray]:
    """Region points on the crest (above the inner wall's top), split by their true side of the apex: the outer
    slope leaning outwards past the rule's threshold, and the inner half facing in at least as much."""
    q = region.points - C
    r = np.linalg.norm(q[:, :2], axis=1)
    on_crest = q[:, 2] > H - CREST_R + 0.3e-3
    lean = (r - (R_IN + WALL / 2)) / CREST_R  # cos(phi): the true normal's outward plan component
    return on_crest & (lean > -LEAN + 0.1), on_crest & (lean < LEAN - 0.1)


def test_outer_slope_of_the_crest_is_not_bond_band(cup):
    region = sole_region(*cup)
    outer, inner = _crest_halves(region)
    assert outer.sum() > 30 and inner.sum() > 30
    assert np.mean(region.signed[outer] < 0) > 0.95, "the crest's outer slope lies outside the bond region"
    assert np.mean(region.signed[inner] > 0) > 0.95, "the crest's inner half stays bond band"
    q = region.points - C
    footbed = (np.abs(q[:, 2]) < 0.5e-3) & (np.linalg.norm(q[:, :2], axis=1) < R_IN - 3e-3)
    inner_wall = (np.abs(np.linalg.norm(q[:, :2], axis=1) - R_IN) < 0.5e-3) & (q[:, 2] > 2e-3) & (q[:, 2] < 10e-3)
    assert np.all(region.signed[footbed] > 0) and np.mean(region.signed[inner_wall] > 0) > 0.97


def test_without_the_rule_the_crest_width_rule_takes_the_outer_slope_in(cup, monkeypatch):
    """The case the rule exists for: switched off, most of the outer slope counts as bond band."""
    monkeypatch.setattr(solewall, "CREST_OUTER_FACING", -2.0)  # no normal leans out that far: the rule is off
    region = sole_region(*cup)
    outer, _ = _crest_halves(region)
    assert np.mean(region.signed[outer] > 0) > 0.5


def test_rule_keeps_up_and_inward_facing_points_and_far_ones():
    inside = np.ones(5, bool)
    vn = np.array([[0, 0, 1], [-0.6, 0, 0.8], [0.6, 0, 0.8], [0.6, 0, 0.8], [0.95, 0, -0.3]], float)
    facing = -vn[:, 0]  # inward is -x
    d_xy = np.array([1e-3, 1e-3, 1e-3, 4e-3, 1e-3])
    below = np.full(5, 0.5e-3)
    got = solewall.crest_outer_slope(vn, inside, d_xy, below, facing)
    assert got.tolist() == [False, False, True, False, False]
    below[2] = 3e-3  # the same lean 3 mm under the rim: a footbed point with a noisy normal, not the crest
    assert not solewall.crest_outer_slope(vn, inside, d_xy, below, facing)[2]
