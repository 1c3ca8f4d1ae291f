"""Honest sigma (issue 14, item 4): the sigma terms for run-time conditions, the calibration's part for predictions
without the style references, and a world pair of a style the library does not hold going to the human with the
reason."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.deformation.sigma_terms import TERMS, SigmaTerms, fit_sigma_terms, term_matrix

POSE = TERMS.index("pose_rms_mm")
GAP = TERMS.index("gap_stations")


def _synthetic(rng: np.random.Generator, n_pairs: int, cell_offsets: tuple[float, ...]) -> list[dict]:
    """Pairs whose point errors are half-normal-ish with sigma 0.6 mm x exp(0.8 (pose - 2) + 0.1 gap), plus a
    per-cell offset (each cell's own level, unknown to a calibration learnt on the other cells)."""
    out = []
    for g, off in enumerate(cell_offsets):
        for _ in range(n_pairs):
            m = 120
            X = np.zeros((m, len(TERMS)))
            X[:, POSE] = rng.uniform(1.0, 3.0)
            X[:, GAP] = np.clip(rng.normal(0, 3, m), 0, None)
            sig = 0.6e-3 * np.exp(0.8 * (X[:, POSE] - 2.0) + 0.1 * X[:, GAP])
            d = np.abs(off + sig * rng.standard_normal(m))
            out.append({"group": str(g), "d": d, "d_out": d, "own": np.full(m, 0.2e-3), "X": X})
    return out


def _coverage(terms: SigmaTerms, samples: list[dict]) -> float:
    d = np.concatenate([s["d"] for s in samples])
    sig = np.concatenate([terms.sigma(s["own"], s["X"]) for s in samples])
    return float(np.mean(d <= 2 * sig))


def test_terms_learn_the_widening_and_cover_new_pairs_and_a_new_cell() -> None:
    rng = np.random.default_rng(0)
    train = _synthetic(rng, 25, (0.0, 0.3e-3, -0.3e-3))
    terms = fit_sigma_terms(train)
    # the pose misfit and the gap widen sigma as they were made to (the cells' offsets flatten the slopes a little)
    assert 0.5 <= terms.coef[POSE] <= 1.0
    assert 0.05 <= terms.coef[GAP] <= 0.15
    assert max(abs(c) for j, c in enumerate(terms.coef) if j not in (POSE, GAP)) < 0.05  # the others: nothing
    # held out: new pairs of a new cell (its own offset) are covered at ~95 %, also where the pose fit is bad
    test = _synthetic(np.random.default_rng(1), 40, (0.2e-3,))
    cov = _coverage(terms, test)
    assert 0.93 <= cov <= 0.985
    bad = [s for s in test if s["X"][0, POSE] > 2.5]
    assert _coverage(terms, bad) >= 0.9
    # one level for every pair (no terms) does not cover the bad pairs: the terms are what makes it honest
    flat = SigmaTerms(scale=0.0, floor=float(np.quantile(np.concatenate([s["d"] for s in train]), 0.95) / 2),
                      coef=(0.0,) * len(TERMS), mean=(0.0,) * len(TERMS))  # fmt: skip
    assert _coverage(flat, bad) < 0.88


def test_term_matrix_reads_gaps_and_pair_terms() -> None:
    K = 16
    theta_st = np.linspace(-np.pi, np.pi, K, endpoint=False)
    seen = np.ones(K, dtype=bool)
    seen[4:8] = False  # four stations not seen: 1, 2, 2, 1 stations from a seen one
    pair = {"pose_rms_mm": 2.0, "side_seen_share": 0.75, "abs_perimeter_strain_pct": 1.5, "valid_sole": 0.9}
    X = term_matrix(pair, theta_st, theta_st, seen, np.full(K, 9.0))
    assert X[:, 0] == pytest.approx(np.full(K, 2.0))
    assert X[4:8, TERMS.index("gap_stations")] == pytest.approx([1, 2, 2, 1])
    assert X[4:8, TERMS.index("unseen_station")] == pytest.approx(np.ones(4))
    assert X[:, TERMS.index("depth_slope")].max() == pytest.approx(5.0)  # clipped
    # what widens it is named for the operator: the gap (x1.22 at 2 stations), not the pose term (coef 0)
    coef = [0.0] * len(TERMS)
    coef[GAP] = 0.1
    terms = SigmaTerms(scale=0.0, floor=1e-3, coef=tuple(coef), mean=(0.0,) * len(TERMS))
    assert terms.drivers(X) == ["gap_stations 2 (sigma x1.22)"]
    assert terms.sigma(np.zeros(K), X)[5] == pytest.approx(1e-3 * np.exp(0.2))


def test_calibration_round_trip_and_which_part_applies(tmp_path) -> None:
    from gluecell.core.errors import FormatError
    from gluecell.deformation.calibration import DepthCalibration, load_calibration, save_calibration

    terms = SigmaTerms(scale=0.3, floor=1.2e-3, coef=tuple(np.linspace(0, 0.6, len(TERMS))),
                       mean=(1.0,) * len(TERMS), factor=0.9)  # fmt: skip
    unref = DepthCalibration(offsets={"unknown": 0.5e-3}, sigma_terms=terms, references="none")
    cal = DepthCalibration(offsets={"unknown": 0.1e-3}, sigma_floor=1e-3, unreferenced=unref)
    p = tmp_path / "cal.json"
    save_calibration(p, cal, {"references": "sim"})
    got = load_calibration(p)
    assert got.references == "sim" and got.sigma_terms is None
    part = got.for_prediction(with_references=False)
    assert part.references == "none" and part.offset("unknown") == pytest.approx(0.5e-3)
    X = np.ones((3, len(TERMS))) * 2.0
    assert part.sigma_terms.sigma(np.full(3, 1e-4), X) == pytest.approx(terms.sigma(np.full(3, 1e-4), X))
    assert got.for_prediction(with_references=True) is got  # with the references the main part applies
    assert part.for_prediction(with_references=False) is part  # learnt without: applies as it is
    import json

    doc = json.loads(p.read_text())
    doc["unreferenced"]["sigma_terms"]["names"] = ["pose_rms_mm"]
    p.write_text(json.dumps(doc))
    with pytest.raises(FormatError):
        load_calibration(p)


@pytest.fixture(scope="module")
def unknown_style_pair():
    """A world-1 pair (seed 3, a boot; in no training set) scanned by its cameras, predicted as an unknown style:
    no references, the shipped calibration."""
    from gluecell.datasets.world import make_pair
    from gluecell.datasets.world.scanner import scan_part
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
    from gluecell.deformation.predict import predict_attach
    from gluecell.perception.scan import scan_part_frames

    pair = make_pair(3)
    rng = np.random.default_rng(3)
    upper = scan_part_frames(scan_part(pair, "upper", rng).frames, "upper", item_id="w3")
    sole = scan_part_frames(scan_part(pair, "sole", rng).frames, "sole", item_id="w3")
    cal = load_calibration(DEFAULT_CALIBRATION)
    pred = predict_attach(upper, sole, calibration=cal, check_confidence=False)
    return pair, upper, sole, cal, pred


def test_unknown_style_sigma_covers_and_the_pair_goes_to_the_human(unknown_style_pair) -> None:
    from gluecell.core.geometry import bite_line_error
    from gluecell.deformation.errors import LowConfidenceError
    from gluecell.deformation.line import predict_bite_line
    from gluecell.deformation.predict import predict_attach

    pair, upper, sole, cal, pred = unknown_style_pair
    assert cal.unreferenced is not None and cal.unreferenced.sigma_terms is not None  # shipped
    assert pred.diagnostics["sigma"]["model"] == "calibration terms (references: none)"
    e = bite_line_error(pred.bite_line, pair.bite_line)
    # the plain solver's own sigma covered 37 % of this pair's points (tests/deformation/test_deform_world.py)
    assert np.mean(e.to_true <= 2 * pred.bite_line_sigma) >= 0.85
    p95 = float(np.percentile(pred.bite_line_sigma, 95))
    assert p95 > 1e-3  # an unknown style is not known to 1 mm: the cell must not plan on it
    with pytest.raises(LowConfidenceError) as exc:
        predict_attach(upper, sole, calibration=cal)
    assert "no style reference" in exc.value.message and exc.value.partial is not None
    with pytest.raises(LowConfidenceError):  # the cell's path (predict_bite_line) refuses it the same way
        predict_bite_line(upper, sole, calibration=cal, residual=None)
    line = predict_bite_line(upper, sole, calibration=cal, residual=None, check_confidence=False)
    assert line.reasons == ()  # the unreferenced part's sigma applies: no "sigma model does not apply" reason


def test_runtime_terms_equal_the_terms_the_trainer_reads(unknown_style_pair) -> None:
    from gluecell.deformation.residual import side_directions, station_features
    from gluecell.deformation.sigma_terms import terms_of_prediction
    from gluecell.deformation.sigma_train import _terms_from_features

    *_, pred = unknown_style_pair
    diag = pred.diagnostics
    theta, _ = side_directions(pred.bite_line, diag)
    sample = {"features": station_features(diag, False), "theta": theta,
              "theta_st": diag["sigma_parts"]["stations"]["us"].theta}  # fmt: skip
    X_train = _terms_from_features(sample)
    X_run = terms_of_prediction(diag, theta)
    assert X_train == pytest.approx(X_run, rel=1e-4, abs=1e-4)


def test_sigma_train_writes_an_unreferenced_part_from_feature_caches(unknown_style_pair, tmp_path, capsys) -> None:
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
    from gluecell.deformation.residual_train import _extract_variant
    from gluecell.deformation.sigma_train import main

    pair, upper, sole, *_ = unknown_style_pair
    true = np.asarray(pair.bite_line, dtype=np.float64)
    caches = []
    for cell in ("a", "b"):  # two cells of one pair each (the plumbing; the shipped part has 6 cells, 269 pairs)
        out = tmp_path / cell / "residual-cache" / "00000_unknown.npz"
        assert _extract_variant((upper, sole), "unknown", pair.item, None, true, out) == "ok"
        caches += ["--cache", str(out.parent)]
    assert main([*caches, "--calibration", str(DEFAULT_CALIBRATION), "--out", str(tmp_path / "cal.json")]) == 0
    cal = load_calibration(tmp_path / "cal.json")
    part = cal.for_prediction(with_references=False)
    assert part is cal.unreferenced and part.n_pairs == 2 and part.sigma_terms is not None
    assert abs(part.offset("unknown")) < 5e-3 and part.sigma_terms.metrics["cells"] == 2.0
    assert cal.offsets == load_calibration(DEFAULT_CALIBRATION).offsets  # the referenced part is kept as it was
    assert "unreferenced: 2 pairs, 2 cells" in capsys.readouterr().out


def test_shipped_residual_sigma_factor_is_the_worst_held_out_cells() -> None:
    from gluecell.deformation.residual import load_residual

    model = load_residual()
    cells = {k: v for k, v in model.metrics.items() if k.startswith("sigma_scale_cell_")}
    assert len(cells) >= 3  # refitted on world-1 cells the net was not trained on (sigma_train --residual-out)
    assert model.sigma_scale == pytest.approx(max(cells.values()))
    assert model.sigma_scale > model.metrics["sigma_scale_own_val"]  # its own validation split under-covered them
