"""The upper's film check on world-2 scans (issue 15 item 2): droplets through the part, glue at the line, and
edge moves sized by the film they must shed."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan.deposition import DepositionParams, SpraySamples, film_thickness
from gluecell.pathplan.filmcheck import ON_LINE_MM, behind_off, droplet_film, film_limit
from gluecell.pathplan.pipeline import PathplanConfig, TuningConfig
from gluecell.pathplan.toolpath import BondRegion
from gluecell.pathplan.tuning import RingDesign, film_excess_moves, next_moves

DEP = DepositionParams()


def _plate_and_point(hole: bool, p_xyz: tuple[float, float, float] = (0.007, 0.0, -0.015),
                     nozzle_x: float = 0.003) -> tuple[BondRegion, SpraySamples]:  # fmt: skip
    """A 1 mm grid plate z = 0, x >= -2 mm (bond side x > 0, the line at x = 0, so ``signed`` = x) and one point P
    (default 15 mm *under* the plate, 4 mm beside the nozzles' axes) facing up at the nozzle, which the region puts
    10 mm beyond the line (as a far wall of the part); with ``hole`` the plate has no points within 12 mm of P in
    plan (a hole in the scan). The nozzle passes along y at x = ``nozzle_x``, 30 mm above the plate, spraying
    down."""
    g = np.arange(-0.03, 0.03, 1e-3)
    xx, yy = np.meshgrid(np.arange(-0.002, 0.02, 1e-3), g)
    plate = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])
    p = np.array([p_xyz])
    if hole:
        plate = plate[np.hypot(plate[:, 0] - p[0, 0], plate[:, 1] - p[0, 1]) > 0.012]
    pts = np.vstack([plate, p])
    nrm = np.tile([0.0, 0.0, 1.0], (len(pts), 1))
    ys = np.arange(-0.02, 0.02, 1e-3)
    k = len(ys)
    tip = np.column_stack([np.full(k, nozzle_x), ys, np.full(k, 0.03)])
    samples = SpraySamples(tip, np.tile([0.0, 0.0, -1.0], (k, 1)), np.tile([0.0, 1.0, 0.0], (k, 1)),
                           np.full(k, 1e-3 / 0.05), np.zeros(k, dtype=np.int64))  # fmt: skip
    bnd = np.column_stack([np.zeros(60), g, np.zeros(60)])
    region = BondRegion("upper", pts, nrm, np.r_[plate[:, 0], -0.010], pts[:, 1] + 0.03, bnd,
                        np.tile([0, 0, 1.0], (60, 1)), np.tile([1.0, 0, 0], (60, 1)))  # fmt: skip
    return region, samples


def test_droplet_film_is_the_models_per_pair_term():
    region, samples = _plate_and_point(hole=False)
    one = SpraySamples(samples.tip[20:21], samples.axis[20:21], samples.along[20:21], samples.dwell[20:21])
    near = [int(np.argmin(np.linalg.norm(region.points - q, axis=1))) for q in ([0.003, 0, 0], [0.007, 0.002, 0])]
    want = film_thickness(one, region.points[near], region.normals[near], DEP, surface=region.points, kernel="arrays")
    got = [droplet_film(samples, np.array([20]), region.points[i], region.normals[i], DEP)[0] for i in near]
    assert got == pytest.approx(want, rel=1e-4)
    assert want.min() > 0


def test_glue_that_only_reaches_a_point_through_the_part_is_taken_off():
    level = DEP.visible_mm * 1e-3
    cases = ({"hole": False},  # the plate is in the way of every droplet that reaches P: gone
             {"hole": True},  # the axes meet no scanned surface (a scan hole): the unseen surface is in the way
             {"hole": False, "p_xyz": (-0.012, 0.0, -0.002), "nozzle_x": -0.012})  # P beside the plate, in view
    for case, gone in zip(cases, (True, True, False)):
        region, samples = _plate_and_point(**case)
        films = film_thickness(samples, region.points, region.normals, DEP, n_labels=3, kernel="arrays")
        p = len(region.points) - 1
        assert films[:, p].sum() > 3 * level, case  # the model (no occlusion) glues P
        out = behind_off(films, samples, region, region, DEP, level, 0.0)
        if gone:
            assert out[:, p].sum() < 0.05 * films[:, p].sum(), case
        else:  # at the depth its nozzles' axes meet: never re-checked
            assert out[:, p].sum() == pytest.approx(films[:, p].sum(), rel=1e-9)
        assert np.array_equal(out[:, :-1], films[:, :-1])  # the plate's own points keep their film


def test_glue_at_the_line_is_not_glue_beyond_it():
    key, allow, level = film_limit(PathplanConfig())
    assert key == "above_visible_mm" and allow == pytest.approx(ON_LINE_MM) and 0 < ON_LINE_MM <= 0.01
    assert level == pytest.approx(DEP.visible_mm * 1e-3)


def test_an_edge_spot_moves_as_far_as_its_film_must_fall():
    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    ring = np.column_stack([0.1 * np.cos(th), 0.1 * np.sin(th), np.zeros_like(th)])
    signed = np.array([-0.02e-3, -0.02e-3, 2e-3])  # two spots just past the line, one bond point
    region = BondRegion("upper", ring[:3], np.tile([0, 0, 1.0], (3, 1)), signed, np.array([0.01, 0.3, 0.01]), ring,
                        np.tile([0, 0, 1.0], (200, 1)), np.zeros((200, 3)))  # fmt: skip
    level, covered = DEP.visible_mm * 1e-3, DEP.covered_mm * 1e-3
    films = np.array([[6.4e-5, 1.1e-5, 1e-4], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    tun = TuningConfig()
    span = tun.edge_target_mm * 1e-3
    got = film_excess_moves(region, films, level, 0.0, covered, span)
    assert got == pytest.approx([span * np.log(6.4) / np.log(5), span * np.log(1.1) / np.log(5)])
    design = RingDesign((1.3e-3, 10e-3), 1, 8e-3, 5e-3)
    local = next_moves(region, films, level, 0.0, 0.02, design, tun, 0, np.zeros(tun.local_bins), (0.0, 0.0),
                       covered)[0]  # fmt: skip
    q = len(local)
    b64, b11 = int(0.01 / region.perimeter * q), int(0.3 / region.perimeter * q)
    extra = tun.bump_extra_mm * 1e-3
    assert local[b64] == pytest.approx(got[0] + extra)  # 0.58 mm, not the 0.02 mm it lies beyond
    assert local[b11] == pytest.approx(max(got[1], 0.02e-3) + extra)
    old = next_moves(region, films, level, 0.0, 0.02, design, tun, 0, np.zeros(tun.local_bins), (0.0, 0.0))[0]
    assert old[b64] == pytest.approx(0.02e-3 + extra)  # without the covered level: the distance alone


def test_every_droplet_into_a_scan_hole_needs_no_line_of_sight_test():
    region, samples = _plate_and_point(True)
    near = np.abs(samples.tip[:, 1]) < 0.006  # every axis passes through the hole (no scanned point within 80 mm)
    sub = SpraySamples(samples.tip[near], samples.axis[near], samples.along[near], samples.dwell[near],
                       samples.label[near])  # fmt: skip
    films = film_thickness(sub, region.points, region.normals, DEP, n_labels=3, kernel="arrays")
    assert films[:, -1].sum() > DEP.visible_mm * 1e-3
    out = behind_off(films, sub, region, region, DEP, DEP.visible_mm * 1e-3, 0.0)
    assert out[:, -1].sum() < 0.05 * films[:, -1].sum()
