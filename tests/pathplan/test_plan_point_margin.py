"""Issue 15 item 1: per-point margins from each bite-line point's own sigma.

One p95 margin kept a dry strip as wide as the worst stretch's uncertainty all round the line; per point, the
region (and so the glue) starts as far inside the line as that point's sigma asks, and no further.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import ConfigError, GlueCellError
from gluecell.pathplan.pipeline import PathplanConfig
from gluecell.pathplan.region import RegionParams, upper_region
from gluecell.pathplan.safety import MAX_MARGIN_MM, point_margins
from gluecell.pathplan.synthetic import make_synthetic_pair


@pytest.fixture(scope="module")
def pair():
    return make_synthetic_pair()


@pytest.fixture(scope="module")
def cloud(pair):
    return pair.sample("upper", 25000, seed=1, noise_mm=0.1)


def _half_margins(line: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``lo`` on the bite-line points with x below the median, ``hi`` on the others (metres)."""
    return np.where(line[:, 0] < np.median(line[:, 0]), lo, hi)


def test_each_point_moves_by_its_own_margin(pair, cloud):
    pts, nrm = cloud
    r0 = upper_region(pts, pair.bite_line, nrm)
    m = _half_margins(pair.bite_line, 0.3e-3, 2.0e-3)
    r1 = upper_region(pts, pair.bite_line, nrm, margin_m=m)
    shift = (r0.signed - r1.signed) * 1e3
    assert np.array_equal(r0.points, r1.points)
    assert set(np.round(np.unique(shift), 6)) <= {0.3, 2.0}  # every point moves by one of the two margins
    assert 0.2 < np.mean(np.isclose(shift, 0.3)) < 0.8  # both halves of the line keep their own
    # the margin follows the nearest bite-line point: low-x points near the line moved by the low margin
    near = np.abs(r0.signed) < 3e-3
    mid = np.median(pair.bite_line[:, 0])
    assert np.allclose(shift[near & (r1.points[:, 0] < mid - 0.01)], 0.3)
    assert np.allclose(shift[near & (r1.points[:, 0] > mid + 0.01)], 2.0)
    assert r1.meta["bite_margin_mm"] == pytest.approx(2.0)


def test_config_margin_is_the_floor(pair, cloud):
    pts, nrm = cloud
    low = np.full(len(pair.bite_line), 0.2e-3)
    r = upper_region(pts, pair.bite_line, nrm, RegionParams(bite_margin_mm=1.0), margin_m=low)
    r0 = upper_region(pts, pair.bite_line, nrm)
    assert np.allclose((r0.signed - r.signed) * 1e3, 1.0)


@pytest.mark.parametrize("bad", ["short", "nan", "neg", "big"])
def test_bad_margins_are_refused(pair, cloud, bad):
    pts, nrm = cloud
    n = len(pair.bite_line)
    m = {"short": np.full(5, 1e-3), "nan": np.full(n, np.nan), "neg": np.full(n, -1e-3), "big": np.full(n, 6e-3)}
    with pytest.raises(GlueCellError, match="per-point margins"):
        upper_region(pts, pair.bite_line, nrm, margin_m=m[bad])


def test_point_margins_policy():
    cfg = PathplanConfig()
    sig = np.array([0.1, 0.2, 0.5, 4.0]) * 1e-3
    m, why = point_margins(cfg, sig, 2.0)
    assert np.allclose(m * 1e3, [0.2, 0.4, 1.0, MAX_MARGIN_MM])
    assert len(why) == 1 and why[0].startswith("margin capped: at 1 of 4")
    m2, why2 = point_margins(cfg, sig[:3], 2.0)
    assert why2 == [] and np.allclose(m2 * 1e3, [0.2, 0.4, 1.0])
    for bad in (np.array([np.nan]), np.array([-1e-3]), np.array([])):
        with pytest.raises(ConfigError):
            point_margins(cfg, bad)
    with pytest.raises(ConfigError):
        point_margins(cfg, sig, margin_sigmas=9.0)
