"""The compiled per-station sections (:mod:`gluecell.deformation.sectkernel`) give the per-wedge rules' sections."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import ValidationError
from gluecell.deformation import profiles, sectkernel
from gluecell.deformation.sections import outline_frame, station_angles, wedge_index

pytestmark = pytest.mark.skipif(not sectkernel.available(), reason="numba is a dependency; without it nothing compiles")


def _same_sections(a, b, atol: float = 1e-12) -> float:
    """Every array field of two section records equal (NaN where the other is NaN, else within ``atol`` m);
    returns the largest difference."""
    worst = 0.0
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if not isinstance(x, np.ndarray):
            continue
        if x.dtype == bool:
            assert np.array_equal(x, y), name
            continue
        assert np.array_equal(np.isfinite(x), np.isfinite(y)), name
        fin = np.isfinite(x)
        d = float(np.abs(x[fin] - y[fin]).max(initial=0.0))
        assert d <= atol, (name, d)
        worst = max(worst, d)
    return worst


def _plain_and_compiled(monkeypatch, fn, *args, **kw):
    """``fn`` by the per-wedge rules (``VECTORISED`` off) and by the compiled loops."""
    out = []
    for vec, comp in ((False, False), (True, True)):
        monkeypatch.setattr(profiles, "VECTORISED", vec)
        monkeypatch.setattr(profiles, "COMPILED", comp)
        out.append(fn(*args, **kw))
    return out


def test_compiled_sections_equal_the_per_wedge_rules(monkeypatch, flat_pair, rough_pair) -> None:
    for up, so in ((flat_pair[0], flat_pair[1]), rough_pair):
        plain_u, comp_u = _plain_and_compiled(monkeypatch, profiles.upper_sections, up.points, up.normals, 128)
        assert plain_u.valid.sum() > 100 and plain_u.full.sum() > 50
        _same_sections(plain_u, comp_u)
        plain_s, comp_s = _plain_and_compiled(monkeypatch, profiles.sole_sections, so.points, so.normals, 128)
        assert plain_s.valid.sum() > 100
        _same_sections(plain_s, comp_s)


def test_compiled_sole_sections_of_a_reference_sampled_all_round(monkeypatch, geom) -> None:
    """A sole sampled all round (tread and walls' undersides too, as a style reference), in another frame."""
    so = geom.scan_mesh(geom.make_sole(height=0.02, yaw_deg=-2.0), "sole", n=40000, noise=0.0, seed=12, min_nz=-2.0)
    frame = outline_frame(so.points + np.array([0.002, -0.001, 0.0]))
    plain, comp = _plain_and_compiled(monkeypatch, profiles.sole_sections, so.points, so.normals, 128, frame=frame)
    assert plain.valid.sum() > 100
    _same_sections(plain, comp)


def test_empty_and_thin_wedges_fail_alike(monkeypatch, flat_pair) -> None:
    """A quarter of the outline without points (empty wedges), the rest thinned: the stations there fail the same
    way on both paths."""
    for part, fn in ((flat_pair[0], profiles.upper_sections), (flat_pair[1], profiles.sole_sections)):
        c = np.median(part.points[:, :2], axis=0)
        keep = ~((part.points[:, 0] > c[0]) & (part.points[:, 1] > c[1]))
        pts, nrm = part.points[keep][::3], part.normals[keep][::3]
        plain, comp = _plain_and_compiled(monkeypatch, fn, pts, nrm, 128)
        print(plain.valid.sum())
        assert 40 < plain.valid.sum() < 110
        _same_sections(plain, comp)


def test_stray_far_points_are_measured_alike(monkeypatch, flat_pair) -> None:
    """Outliers metres away and a few millimetres off the surface (another scanner's) enter the same wedges."""
    rng = np.random.default_rng(3)
    for part, fn in ((flat_pair[0], profiles.upper_sections), (flat_pair[1], profiles.sole_sections)):
        n = len(part.points)
        far = rng.choice(n, 40, replace=False)
        pts, nrm = part.points.copy(), part.normals.copy()
        pts[far[:20]] += rng.normal(0.0, 0.004, (20, 3))
        pts[far[20:]] += rng.uniform(-2.0, 2.0, (20, 3))
        plain, comp = _plain_and_compiled(monkeypatch, fn, pts, nrm, 128)
        _same_sections(plain, comp)


@pytest.mark.parametrize("fn", [profiles.upper_sections, profiles.sole_sections])
@pytest.mark.parametrize("compiled", [False, True])
def test_non_finite_points_are_refused(monkeypatch, flat_pair, fn, compiled) -> None:
    monkeypatch.setattr(profiles, "COMPILED", compiled)
    part = flat_pair[0] if fn is profiles.upper_sections else flat_pair[1]
    for arr in ("points", "normals"):
        pts, nrm = part.points.copy(), part.normals.copy()
        (pts if arr == "points" else nrm)[7, 1] = np.nan if arr == "points" else np.inf
        with pytest.raises(ValidationError, match="NaN/inf"):
            fn(pts, nrm, 128)


def test_members_are_the_wedges_of_wedge_index() -> None:
    """Angles on the stations' bounds, at -pi and pi, and few stations: each wedge holds the same points."""
    rng = np.random.default_rng(0)
    for K in (128, 64, 7, 5, 3):
        half = 2.5 * np.pi / K
        tk = station_angles(K)
        theta = np.concatenate([rng.uniform(-np.pi, np.pi, 3000), tk - half, tk + half, tk,
                                [-np.pi, np.pi, np.nextafter(-np.pi, 0), np.nextafter(np.pi, 0)]])  # fmt: skip
        theta = theta[(theta >= -np.pi) & (theta <= np.pi)]
        idx, lens = wedge_index(theta, K, 2.5)
        got, starts = sectkernel._members(theta, K, 2.5)
        assert np.array_equal(np.diff(starts), lens)
        for k in range(K):
            a, b = int(starts[k]), int(starts[k + 1])
            assert np.array_equal(got[a:b], np.sort(idx[a:b])), (K, k)


def test_percentile_is_the_per_wedge_rules() -> None:
    from gluecell.deformation import sectloops

    sectkernel.available()  # compiles sectloops' helpers
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 7, 50, 301):
        v = np.round(rng.normal(size=n), 1)  # ties
        for q in (0.0, 40.0, 50.0, 95.0, 98.0, 100.0):
            buf = v.copy()
            assert sectloops.pct(buf, n, q) == profiles._pct(v, q), (n, q)
            assert np.array_equal(buf, v)  # the caller's values are left in place


def test_flag_switches_back_to_numpy(monkeypatch, flat_pair) -> None:
    """``profiles.COMPILED`` off: the numpy passes (:mod:`.profiles_vec`) measure, with the same sections."""
    calls = []
    real = sectkernel.upper_stations

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(sectkernel, "upper_stations", counting)
    up = flat_pair[0]
    a = profiles.upper_sections(up.points, up.normals, 128)
    monkeypatch.setattr(profiles, "COMPILED", False)
    b = profiles.upper_sections(up.points, up.normals, 128)
    assert len(calls) == 1
    _same_sections(a, b)


def test_warm_up_compiles_the_loops() -> None:
    sectkernel.warm_up()
    assert sectkernel._compiled and sectkernel._compiled[0] is not None
