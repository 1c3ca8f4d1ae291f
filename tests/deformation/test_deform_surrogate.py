"""The learnt ring-solver surrogate: agrees with the FE solver inside its training distribution, falls back to
the solver outside it, and round-trips through its versioned checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gluecell.core.errors import VersionError
from gluecell.deformation.material import UpperContact
from gluecell.deformation.predict import predict_attach, ring_problem
from gluecell.deformation.solver import solve_ring
from gluecell.deformation.surrogate import (
    RingProblem,
    SurrogateConfig,
    load_surrogate,
    ring_features,
    save_surrogate,
    train_surrogate,
)

#: Training moduli (Pa): rubber-like soles only, so that EVA (0.3 MPa) lies outside the distribution.
MODULI = [2.0e6, 4.0e6, 8.0e6]
#: In distribution, the surrogate's hoop strain may differ from the FE solver's by this much at any station.
#: The bite depth moves by nu * h * d_eps: 0.5 x 20 mm x 0.004 = 0.04 mm, a tenth of the 0.5 mm goal.
STRAIN_TOL = 4.0e-3
#: Bite line with the surrogate vs with the solver, in distribution: largest point distance, metres.
LINE_TOL = 0.1e-3


def _variants(base: RingProblem, scales: np.ndarray, seed: int) -> list[RingProblem]:
    """Copies of ``base`` with the sole's rest lengths scaled (undersize) and smooth wall-area variation (0-15 %)."""
    rng = np.random.default_rng(seed)
    K = len(base.rest)
    phi = np.arange(K) * 2 * np.pi / K
    out = []
    for s in scales:
        a = 1 + rng.uniform(0.0, 0.15) * np.sin(phi * rng.integers(1, 4) + rng.uniform(0, 2 * np.pi))
        out.append(RingProblem(X=base.X, rest=base.rest * s, area=base.area * a, height=base.height))
    return out


@pytest.fixture(scope="module")
def trained(flat_pair):
    upper, sole, _ = flat_pair
    base = ring_problem(upper, sole)
    train = _variants(base, np.linspace(0.975, 1.0, 12), seed=0)
    val = _variants(base, np.linspace(0.977, 0.998, 4), seed=1)
    sur = train_surrogate(train, val, MODULI, SurrogateConfig(steps=1000, seed=0))
    return sur, base, val


@pytest.mark.slow
def test_surrogate_agrees_with_solver_in_distribution(trained) -> None:
    sur, _, val = trained
    contact = UpperContact()
    for p in val:
        for E in MODULI:
            EA = E * p.area
            f = ring_features(p.X, p.rest, EA, p.height, contact)
            assert sur.check(f) is None
            fe = solve_ring(p.X, p.rest, EA, p.height, contact).strain
            assert np.abs(sur.predict_strain(f) - fe).max() < STRAIN_TOL
            assert np.abs(fe).max() > STRAIN_TOL  # the check has something to get wrong
    assert sur.metrics["val_in_distribution"] == 1.0


@pytest.mark.slow
def test_predict_uses_surrogate_in_distribution(trained, flat_pair) -> None:
    sur, _, _ = trained
    upper, sole, _ = flat_pair
    ref = predict_attach(upper, sole, check_confidence=False)
    pred = predict_attach(upper, sole, check_confidence=False, surrogate=sur)
    assert pred.diagnostics["surrogate"] == "used"
    assert ref.diagnostics["surrogate"] == "none"
    d = np.linalg.norm(pred.bite_line[:, None] - ref.bite_line[None], axis=2).min(axis=1)
    assert d.max() < LINE_TOL


@pytest.mark.slow
def test_out_of_distribution_falls_back_to_solver(trained, flat_pair) -> None:
    sur, base, _ = trained
    contact = UpperContact()
    # a sole 8 % too small: far outside the 0-2.5 % undersize it was trained on
    f = ring_features(base.X, base.rest * 0.92, 4.0e6 * base.area, base.height, contact)
    assert sur.check(f) is not None
    # an EVA sole (0.3 MPa) against a surrogate trained on 2-8 MPa: the prediction is the solver's, with the reason
    upper, sole, _ = flat_pair
    ref = predict_attach(upper, sole, material="eva", check_confidence=False)
    pred = predict_attach(upper, sole, material="eva", check_confidence=False, surrogate=sur)
    assert pred.diagnostics["surrogate"].startswith("fallback:")
    assert "log EA" in pred.diagnostics["surrogate"]
    np.testing.assert_array_equal(pred.bite_line, ref.bite_line)


@pytest.mark.slow
def test_checkpoint_roundtrip_and_version(trained, tmp_path) -> None:
    import torch

    sur, base, _ = trained
    path = tmp_path / "s.pt"
    save_surrogate(path, sur, {"note": "test"})
    back = load_surrogate(path)
    f = ring_features(base.X, base.rest * 0.99, 4.0e6 * base.area, base.height, UpperContact())
    np.testing.assert_allclose(back.predict_strain(f), sur.predict_strain(f), rtol=1e-5, atol=1e-7)  # float32 net
    assert back.check(f) == sur.check(f)
    doc = torch.load(path, weights_only=True)
    doc["format"] = "gluecell.deform_surrogate/2"
    torch.save(doc, path)
    with pytest.raises(VersionError):
        load_surrogate(path)


@pytest.mark.slow
def test_cli_predict_with_surrogate(trained, flat_pair, tmp_path) -> None:
    from gluecell.cell.cli import main
    from gluecell.core.ply import write_ply

    sur, _, _ = trained
    upper, sole, _ = flat_pair
    save_surrogate(tmp_path / "s.pt", sur)
    write_ply(tmp_path / "u.ply", upper.points, upper.normals)
    write_ply(tmp_path / "s.ply", sole.points, sole.normals)
    out = tmp_path / "attach.json"
    args = ["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out),
            "--no-calibration"]
    assert main([*args, "--surrogate", str(tmp_path / "s.pt")]) == 0
    assert json.loads(out.read_text())["diagnostics"]["surrogate"] == "used"
