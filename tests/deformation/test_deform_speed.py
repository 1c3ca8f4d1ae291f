"""The deformation step's faster paths give the results of the plain ones (issue 14's latency goal)."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.deformation import profiles


def _same_sections(a, b) -> None:
    """Every array field of two section records equal (NaN where the other is NaN, else within 1e-9 m)."""
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if not isinstance(x, np.ndarray):
            continue
        if x.dtype == bool:
            assert np.array_equal(x, y), name
            continue
        assert np.array_equal(np.isfinite(x), np.isfinite(y)), name
        fin = np.isfinite(x)
        assert np.allclose(x[fin], y[fin], rtol=0, atol=1e-9), name


def _both(monkeypatch, fn, *args):
    out = []
    for vec in (False, True):
        monkeypatch.setattr(profiles, "VECTORISED", vec)
        out.append(fn(*args))
    return out


@pytest.fixture(scope="module")
def rough_pair(geom):
    """A toe-sprung, turned upper and a sole with a lower wall, sparse noisy scans (stations fail here and there)."""
    up = geom.scan_mesh(geom.make_upper(toe_spring=0.012, yaw_deg=7.0), "upper", n=25000, noise=3e-4, seed=5)
    so = geom.scan_mesh(geom.make_sole(height=0.014, undersize=0.02, yaw_deg=-4.0), "sole", n=20000, noise=3e-4,
                        seed=6)  # fmt: skip
    return up, so


def test_vectorised_sections_equal_the_per_wedge_rules(monkeypatch, flat_pair, rough_pair) -> None:
    for up, so in ((flat_pair[0], flat_pair[1]), rough_pair):
        ref_u, vec_u = _both(monkeypatch, profiles.upper_sections, up.points, up.normals, 128)
        assert ref_u.valid.sum() > 100 and ref_u.full.sum() > 50
        _same_sections(ref_u, vec_u)
        ref_s, vec_s = _both(monkeypatch, profiles.sole_sections, so.points, so.normals, 128)
        assert ref_s.valid.sum() > 100
        _same_sections(ref_s, vec_s)


def test_vectorised_sections_drop_the_same_thin_wedges(monkeypatch, flat_pair) -> None:
    """Half the upper's points gone on one side: the stations there fail the same way in both."""
    up = flat_pair[0]
    keep = up.points[:, 1] > np.median(up.points[:, 1]) - 0.01
    pts, nrm = up.points[keep][::3], up.normals[keep][::3]
    ref_u, vec_u = _both(monkeypatch, profiles.upper_sections, pts, nrm, 128)
    assert 0 < ref_u.valid.sum() < 128
    _same_sections(ref_u, vec_u)
