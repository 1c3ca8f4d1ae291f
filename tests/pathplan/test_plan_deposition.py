"""Deposition model: mass conservation, standoff and angle dependence, metrics, ring design."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.types import SprayPath
from gluecell.pathplan.deposition import DepositionParams, SpraySamples, film_thickness, path_samples, spray_metrics
from gluecell.pathplan.tuning import cross_profile, design_rings

#: Film volume on a large plate must match flow x time to this fraction.
VOLUME_TOL = 0.03
P = DepositionParams()


def _plate(half=0.06, step=5e-4, tilt_deg=0.0):
    g = np.arange(-half, half, step)
    x, y = np.meshgrid(g, g, indexing="ij")
    a = np.deg2rad(tilt_deg)
    pts = np.column_stack([x.ravel() * np.cos(a), y.ravel(), x.ravel() * np.sin(a)])
    nrm = np.tile([-np.sin(a), 0.0, np.cos(a)], (len(pts), 1))
    return pts, nrm, step**2


def _spot(standoff, dwell=0.1):
    return SpraySamples(np.array([[0.0, 0.0, standoff]]), np.array([[0.0, 0.0, -1.0]]), np.array([[0.0, 1.0, 0.0]]),
                        np.array([dwell]))  # fmt: skip


def test_volume_is_conserved_on_a_large_plate():
    pts, nrm, area = _plate()
    dwell = 0.1
    film = film_thickness(_spot(0.035, dwell), pts, nrm, P)
    vol = film.sum() * area
    assert vol == pytest.approx(P.flow_ml_s * 1e-6 * dwell, rel=VOLUME_TOL)


def test_footprint_widens_and_thins_with_standoff():
    pts, nrm, _ = _plate(half=0.03)
    near, far = (film_thickness(_spot(h), pts, nrm, P) for h in (0.02, 0.04))
    assert near.max() / far.max() == pytest.approx(4.0, rel=0.05)  # 1/h^2 at the centre

    def width(f):
        return np.sqrt((f * (pts[:, 0] ** 2)).sum() / f.sum())

    assert width(far) / width(near) == pytest.approx(2.0, rel=0.05)  # grows linearly with h


def test_oblique_incidence_spreads_and_surfaces_facing_away_get_nothing():
    pts, nrm, area = _plate(tilt_deg=40.0)
    flat_pts, flat_nrm, _ = _plate()
    tilted = film_thickness(_spot(0.035), pts, nrm, P)
    flat = film_thickness(_spot(0.035), flat_pts, flat_nrm, P)
    assert tilted.max() < flat.max()
    assert tilted.sum() * area == pytest.approx(flat.sum() * area, rel=VOLUME_TOL)  # same volume, spread out
    assert film_thickness(_spot(0.035), flat_pts, -flat_nrm, P).max() == 0.0


def test_path_samples_follow_the_gun_flags():
    xyz = np.array([[0, 0, 0.03], [0.01, 0, 0.03], [0.02, 0, 0.03], [0.03, 0, 0.03]], float)
    q = np.tile([1.0, 0.0, 0.0, 0.0], (4, 1))  # 180 deg about x: nozzle +z points down
    path = SprayPath("upper", t=[0, 0.04, 0.08, 0.12], xyz=xyz, quat_xyzw=q, spray=[True, False, True, False])
    s = path_samples(path, 1e-3)
    assert s.dwell.sum() == pytest.approx(0.08)  # two of three segments sprayed
    assert np.allclose(s.axis, [0, 0, -1])
    assert np.all((s.tip[:, 0] < 0.01) | (s.tip[:, 0] > 0.02))


def test_metrics():
    thick = np.array([0.2, 0.1, 0.01, 0.0, 0.02, 0.001]) * 1e-3
    signed = np.array([0.01, 0.02, 0.03, 0.04, -0.0007, -0.002])
    band = signed >= 0
    m = spray_metrics(thick, signed, band, 1e-6, P)
    assert m["coverage"] == pytest.approx(0.5)
    assert m["gap_area_mm2"] == pytest.approx(2.0)
    assert m["above_line_mm"] == pytest.approx(0.7)


def test_ring_design_keeps_every_pass_inside_the_line_and_closes_gaps():
    edge, main = (0.008, 0.25), (0.035, 0.25)
    d = design_rings(edge, main, P, 0.3e-3, 0.012)
    e = cross_profile(edge[0], 0.0, edge[1], P)
    m = cross_profile(main[0], 0.0, main[1], P)
    assert d.offsets[0] == pytest.approx(e.reach(P.trace_mm * 1e-3) + 0.3e-3)
    assert d.offsets[d.n_edge] >= m.reach(P.trace_mm * 1e-3) + 0.3e-3 - 1e-9
    # sum of the designed stripes: covered from ~1 mm inside the line out to the last ring
    x = np.arange(0.0, d.offsets[-1], 1e-4)
    prof = [e] * d.n_edge + [m] * (len(d.offsets) - d.n_edge)
    film = sum(np.interp(x - o, p.x, p.film, left=0, right=0) for o, p in zip(d.offsets, prof))
    covered = x[film >= P.covered_mm * 1e-3]
    assert covered.min() < 1.5e-3, "glue must reach within ~1 mm of the line"
    assert np.all(film[x >= covered.min()] >= P.covered_mm * 1e-3)
