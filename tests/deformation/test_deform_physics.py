"""Physics of the attach solver against cases with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gluecell.deformation.material import MATERIALS, UpperContact
from gluecell.deformation.predict import predict_attach
from gluecell.deformation.solver import analytic_ring_tension, solve_ring

#: FE ring vs closed form (relative): 128 chords on a circle differ from it by < 0.1 %.
RING_REL_TOL = 0.01
#: Bite-line height error of a flat sole on a flat bottom (scan noise 0.1 mm, 1 mm depth bins).
FLAT_MEDIAN_TOL = 0.15e-3
FLAT_P95_TOL = 0.35e-3
#: Hoop strain the full pipeline measures for a zero-undersize pair (outline measurement bias, ~0.3 mm radial).
FLAT_STRAIN_TOL = 5e-3
#: Poisson shift of the bite line (metres) against the closed form nu * eps * h.
POISSON_TOL = 0.12e-3


def _circle(K: int = 128, R: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    ang = np.linspace(0, 2 * np.pi, K, endpoint=False)
    X = np.column_stack([R * np.cos(ang), R * np.sin(ang)])
    return X, np.linalg.norm(np.roll(X, -1, axis=0) - X, axis=1)


@pytest.mark.parametrize("E_u", [2.0e6, 2.0e3])
def test_ring_fe_matches_closed_form_on_a_circle(E_u: float) -> None:
    X, L = _circle()
    rest = 0.97 * L
    EA = np.full(len(X), 4e6 * 0.005 * 0.02)
    h = np.full(len(X), 0.02)
    contact = UpperContact(E_u=E_u)
    res = solve_ring(X, rest, EA, h, contact)
    T = analytic_ring_tension(rest.sum(), L.sum(), EA[0], 0.02, contact, radius=0.1)
    assert res.contact.all()
    assert np.mean(res.tension) == pytest.approx(T, rel=RING_REL_TOL)
    assert np.std(res.strain) < 1e-6
    # indentation w = T kappa / (k_f h)
    assert np.mean(res.indent) == pytest.approx(T / 0.1 / (contact.k_f * 0.02), rel=RING_REL_TOL)


def test_zero_undersize_gives_zero_hoop_strain() -> None:
    X, L = _circle()
    res = solve_ring(X, L.copy(), np.full(len(X), 400.0), np.full(len(X), 0.02), UpperContact())
    assert np.abs(res.strain).max() < 1e-12
    assert np.abs(res.indent).max() < 1e-12


def test_stiffer_sole_stretches_less() -> None:
    X, L = _circle()
    contact = UpperContact(E_u=2.0e4)  # a soft upper makes the share visible
    strains = []
    for name in ("eva", "rubber", "pu", "tpu"):
        EA = np.full(len(X), MATERIALS[name].E * 0.005 * 0.02)
        res = solve_ring(X, 0.97 * L, EA, np.full(len(X), 0.02), contact)
        T = analytic_ring_tension(0.97 * L.sum(), L.sum(), EA[0], 0.02, contact, radius=0.1)
        assert np.mean(res.strain) == pytest.approx(T / EA[0], rel=RING_REL_TOL)
        strains.append(float(np.mean(res.strain)))
    assert all(a > b for a, b in itertools.pairwise(strains)), strains
    assert strains[0] > 0.0 and strains[-1] > 0.0


def test_flat_sole_on_flat_bottom_keeps_the_wall_height(flat_pair) -> None:
    upper, sole, _ = flat_pair
    pred = predict_attach(upper, sole, material="rubber")
    dz = pred.bite_line[:, 2] - (0.17 - 0.02)  # bottom at 0.17 m, wall 20 mm
    assert abs(np.median(dz)) < FLAT_MEDIAN_TOL
    assert np.percentile(np.abs(dz), 95) < FLAT_P95_TOL
    assert abs(pred.diagnostics["mean_hoop_strain"]) < FLAT_STRAIN_TOL


def test_poisson_contraction_of_a_stretched_wall(geom) -> None:
    upper = geom.scan_mesh(geom.make_upper(), "upper", seed=3)
    sole = geom.scan_mesh(geom.make_sole(height=0.02, undersize=0.04), "sole", seed=4)
    depth = {}
    for name in ("eva", "rubber"):
        pred = predict_attach(upper, sole, material=name)
        depth[name] = 0.17 - float(np.median(pred.bite_line[:, 2]))
        eps = pred.diagnostics["mean_hoop_strain"]
        assert eps == pytest.approx(1 / 0.96 - 1, abs=3e-3)
    expected = (MATERIALS["rubber"].nu - MATERIALS["eva"].nu) * (1 / 0.96 - 1) * 0.02
    assert depth["eva"] - depth["rubber"] == pytest.approx(expected, abs=POISSON_TOL)
    assert depth["eva"] == pytest.approx(0.02 * (1 - MATERIALS["eva"].nu * (1 / 0.96 - 1)), abs=FLAT_P95_TOL)
