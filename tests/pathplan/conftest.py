"""Fixtures shared by the planner's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def clouds():
    """A synthetic pair's upper (20 000 points) and sole (12 000) with normals and its bite line."""
    from gluecell.pathplan.synthetic import make_synthetic_pair

    pair = make_synthetic_pair()
    u, un = pair.sample("upper", 20_000, seed=1, noise_mm=0.1)
    s, sn = pair.sample("sole", 12_000, seed=2, noise_mm=0.1)
    return u, un, s, sn, pair.bite_line
