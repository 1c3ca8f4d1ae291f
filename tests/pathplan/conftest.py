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


def _ring_samples(u, n: int, duration_s: float):
    """Spray samples of a ring pass (``n`` waypoints, ``duration_s``) round the synthetic upper ``u``, 35 mm above
    a ring at its mean height + 40 mm, nozzle straight down, labels 0, 1, 2 in turn (1 mm sample step)."""
    import numpy as np

    from gluecell.core.types import SprayPath
    from gluecell.pathplan.deposition import path_samples
    from gluecell.pathplan.geom import frames_from_axis, quat_from_matrix

    c = u.mean(axis=0)
    th = np.linspace(0, 2 * np.pi, n)
    surf = c + np.column_stack([0.15 * np.cos(th), 0.06 * np.sin(th), np.full_like(th, 0.04)])
    axis = np.tile([0.0, 0.0, -1.0], (n, 1))
    R = frames_from_axis(axis, np.gradient(surf, axis=0))
    path = SprayPath(part="upper", t=np.linspace(0.0, duration_s, n), xyz=surf + np.array([0.0, 0.0, 0.035]),
                     quat_xyzw=quat_from_matrix(R), spray=np.ones(n, bool))  # fmt: skip
    return path_samples(path, 1e-3, np.arange(n) % 3)


@pytest.fixture(scope="session")
def ring_samples():
    """The ring-pass sampler above (test modules cannot import conftest under importlib mode)."""
    return _ring_samples
