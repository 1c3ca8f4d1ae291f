"""The learnt residual on top of the physics (issue 14, items 3-4): labels read a known shift, training lowers the
loss, the correction moves the line by the predicted depth, the checkpoint round-trips with its version, an
input outside the training distribution falls back with a reason, and the conformal sigma factor gives the asked
coverage on its calibration data. Synthetic geometry only (tests/deformation/conftest.py), a few seconds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from gluecell.core.errors import FormatError, VersionError
from gluecell.deformation.errors import LowConfidenceError
from gluecell.deformation.line import predict_bite_line, predict_with_residual
from gluecell.deformation.predict import predict_attach
from gluecell.deformation.residual import (
    N_CHANNELS,
    RESIDUAL_FORMAT,
    ResidualConfig,
    ResidualOutOfDistribution,
    apply_correction,
    load_residual,
    normal_directions,
    save_residual,
    side_directions,
    station_features,
)
from gluecell.deformation.residual_train import (
    COVERAGE,
    conformal_scale,
    line_offsets,
    station_labels,
    train_residual,
)

#: A known shift of the true line along the side, metres.
SHIFT = 1.5e-3
#: line_offsets reads SHIFT to within this (the crossing is interpolated on a ~0.8 mm polyline), metres.
OFFSET_TOL = 0.05e-3
#: After training, the net's mean depth correction is within this of the labels' mean, metres.
FIT_TOL = 0.25e-3


@pytest.fixture(scope="module")
def physics(flat_pair):
    """The physics prediction of the flat pair (line, diagnostics, u, theta, station angles, features)."""
    upper, sole, _ = flat_pair
    pred = predict_attach(upper, sole, check_confidence=False)
    theta, u = side_directions(pred.bite_line, pred.diagnostics)
    theta_st = pred.diagnostics["sigma_parts"]["stations"]["us"].theta
    f = station_features(pred.diagnostics, style_known=False)
    return {"pred": pred, "theta": theta, "u": u, "theta_st": theta_st, "features": f}


def _samples(physics: dict, n: int, seed: int) -> list[dict]:
    """Synthetic training samples: the flat pair's features with a level noise, the true line shifted along the side by
    SHIFT + a per-sample amount that one feature channel (the perimeter strain) carries."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        f = physics["features"] + rng.normal(0, 0.05, (N_CHANNELS, 1)).astype(np.float32)  # a level per channel
        extra = rng.uniform(-0.5e-3, 0.5e-3)
        f[21] += extra * 1e3  # "perimeter strain %" channel carries the per-sample shift
        shift = SHIFT + extra
        line = physics["pred"].bite_line
        true = line + shift * physics["u"]
        off = line_offsets(line, physics["u"], true, across=True)
        y, mask = station_labels(physics["theta"], off, physics["theta_st"])
        out.append({"features": f, "labels": y, "mask": mask, "line": line, "u": physics["u"],
                    "theta": physics["theta"], "theta_st": physics["theta_st"], "true_line": true})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def trained(physics):
    return train_residual(_samples(physics, 12, seed=0), ResidualConfig(steps=250, seed=0))


def test_features_have_every_channel_finite(physics) -> None:
    f = physics["features"]
    assert f.shape == (N_CHANNELS, len(physics["theta_st"]))
    assert np.all(np.isfinite(f))
    assert f[20].max() == 0.0  # "style known": no references were used


def test_line_offsets_read_a_known_shift(physics) -> None:
    line, u = physics["pred"].bite_line, physics["u"]
    off = line_offsets(line, u, line + SHIFT * u)
    assert np.mean(np.isfinite(off)) > 0.95
    assert np.nanmedian(np.abs(off - SHIFT)) < OFFSET_TOL


def test_training_reduces_the_loss_and_learns_the_shift(trained, physics) -> None:
    assert trained.metrics["train_nll"] < trained.metrics["train_nll_initial"] - 1.0
    delta, sigma = trained.predict(_samples(physics, 1, seed=5)[0]["features"])
    assert abs(float(np.mean(delta[:, 0])) - SHIFT) < FIT_TOL
    assert abs(float(np.mean(delta[:, 1]))) < FIT_TOL  # no shift across the surface was taught
    assert np.all(sigma > 0)


def test_correction_moves_the_line_by_the_predicted_depth(trained, physics) -> None:
    pred = physics["pred"]
    line, sigma = trained.correct(pred.bite_line, pred.diagnostics, style_known=False)
    moved = line - pred.bite_line
    n = normal_directions(pred.bite_line, physics["u"])
    along, across = np.sum(moved * physics["u"], axis=1), np.sum(moved * n, axis=1)
    delta, _ = trained.predict(physics["features"])
    # every point moved in the (u, n) plane only, by the net's station correction interpolated to it
    assert np.allclose(np.linalg.norm(moved, axis=1), np.hypot(along, across), atol=1e-9)
    assert abs(float(np.median(along)) - float(np.median(delta[:, 0]))) < 0.05e-3
    assert abs(float(np.median(across)) - float(np.median(delta[:, 1]))) < 0.05e-3
    assert len(sigma) == len(line) and np.all(sigma > 0)
    assert np.allclose(apply_correction(pred.bite_line, physics["u"], np.column_stack([along, across])), line)
    only_u = apply_correction(pred.bite_line, physics["u"], along)
    assert np.allclose(only_u, pred.bite_line + along[:, None] * physics["u"])


def test_checkpoint_roundtrip_and_version(trained, physics, tmp_path) -> None:
    path = tmp_path / "residual.pt"
    save_residual(path, trained, {"dataset": "synthetic"})
    doc = torch.load(path, weights_only=True)  # plain tensors and builtins only
    assert doc["format"] == RESIDUAL_FORMAT
    back = load_residual(path)
    d0, s0 = trained.predict(physics["features"])
    d1, s1 = back.predict(physics["features"])
    assert np.allclose(d0, d1) and np.allclose(s0, s1)
    torch.save({**doc, "format": "gluecell.deform_residual/2"}, tmp_path / "v2.pt")
    with pytest.raises(VersionError):
        load_residual(tmp_path / "v2.pt")
    torch.save({**doc, "channels": doc["channels"][:-1]}, tmp_path / "ch.pt")
    with pytest.raises(FormatError):
        load_residual(tmp_path / "ch.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError):
        load_residual(tmp_path / "junk.pt")


def test_out_of_distribution_falls_back_with_reason(trained, physics, flat_pair) -> None:
    f = physics["features"].copy()
    f[0] += 1000.0  # a wall 1 m high
    reason = trained.check(f)
    assert reason is not None and "wall height" in reason
    assert trained.check(physics["features"]) is None
    narrow = replace(trained, hi=trained.lo.copy())  # nothing but the minimum was seen in training
    with pytest.raises(ResidualOutOfDistribution):
        narrow.correct(physics["pred"].bite_line, physics["pred"].diagnostics, False)
    upper, sole, _ = flat_pair
    pred, used = predict_with_residual(upper, sole, narrow, check_confidence=False)
    assert not used
    assert pred.diagnostics["residual"].startswith("fallback: feature")
    assert np.allclose(pred.bite_line, physics["pred"].bite_line)  # the physics line, as without the residual


def test_predict_bite_line_uses_the_residual_and_refuses_a_wide_sigma(trained, flat_pair) -> None:
    upper, sole, _ = flat_pair
    pl = predict_bite_line(upper, sole, residual=trained, check_confidence=False)
    assert pl.diagnostics["residual"] == "used"
    assert pl.reasons == ()
    wide = replace(trained, sigma_scale=trained.sigma_scale * 100.0)
    with pytest.raises(LowConfidenceError, match="line uncertain"):
        predict_bite_line(upper, sole, residual=wide)


def test_conformal_scale_gives_the_asked_coverage(trained, physics) -> None:
    calib = _samples(physics, 6, seed=3)
    rng = np.random.default_rng(7)
    for s in calib:  # a true line with per-point scatter the net never saw
        s["true_line"] = s["true_line"] + rng.normal(0, 0.6e-3, s["true_line"].shape)
    scale = conformal_scale(trained, calib)
    model = replace(trained, sigma_scale=scale)
    from gluecell.core.geometry import polyline_distance
    from gluecell.deformation.residual_train import corrected

    hit = n = 0
    for s in calib:
        line, sig = corrected(model, s)
        d = polyline_distance(line, s["true_line"])
        hit += int(np.sum(d <= 2 * sig))
        n += len(d)
    assert abs(hit / n - COVERAGE) < 0.01


def test_cli_predict_with_residual_file_and_off(trained, flat_pair, tmp_path) -> None:
    import json

    from gluecell.cell.cli import main
    from gluecell.core.ply import write_ply

    upper, sole, _ = flat_pair
    # the CLI cleans the clouds it reads, which moves this tiny synthetic training set's narrow distribution:
    # widen it (the distribution check has its own test above); this test is about the CLI's plumbing
    wide = replace(trained, lo=trained.lo - 100.0, hi=trained.hi + 100.0, d2_max=1e12)
    save_residual(tmp_path / "r.pt", wide)
    write_ply(tmp_path / "u.ply", upper.points, upper.normals)
    write_ply(tmp_path / "s.ply", sole.points, sole.normals)
    out = tmp_path / "attach.json"
    args = ["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out),
            "--no-calibration", "--max-sigma-mm", "100"]
    assert main([*args, "--residual", str(tmp_path / "r.pt")]) == 0
    doc = json.loads(out.read_text())
    assert doc["diagnostics"]["residual"] == "used"
    assert doc["line_reasons"] == []
    assert main([*args, "--residual", "off"]) == 0
    doc = json.loads(out.read_text())
    assert "residual" not in doc["diagnostics"]
    assert doc["line_reasons"] and doc["line_reasons"][0].startswith("line uncertain: no depth calibration")


def test_shipped_checkpoint_is_off_by_default_and_never_saw_the_bench_seed() -> None:
    from gluecell.cell.bench import BENCH_SEED
    from gluecell.deformation.line import resolve_residual
    from gluecell.deformation.residual import DEFAULT_RESIDUAL, ResidualModel

    doc = torch.load(DEFAULT_RESIDUAL, weights_only=True)
    assert str(BENCH_SEED) not in doc["config"]["dataset"]
    model = load_residual()
    # measured on the bench worlds it did not beat physics + calibration (issue 14 report): off by default
    assert model.default_on is False
    assert model.base_calibrated is True  # trained with --remove-cell-offset: it sits on each cell's calibration
    assert resolve_residual("default") is None and resolve_residual("off") is None
    assert isinstance(resolve_residual("on"), ResidualModel)
    assert 0.5 < model.sigma_scale < 3.0  # the conformal factor on its own val split
    assert model.metrics["val_within_2sigma"] == pytest.approx(COVERAGE, abs=0.01)


def test_cell_offset_moves_from_the_labels_into_the_base_line(physics, trained, tmp_path) -> None:
    from gluecell.deformation.residual_train import cell_offsets, centre_cell_offset

    samples = _samples(physics, 4, seed=9)
    for s in samples:
        s["variant"] = "unknown"
    offs = cell_offsets(samples)
    assert offs["unknown"] == pytest.approx(SHIFT, abs=0.6e-3)  # SHIFT + a per-sample share within +-0.5 mm
    centred = centre_cell_offset(samples, offs)
    assert abs(float(np.median(np.concatenate([s["labels"][s["mask"]][:, 0] for s in centred])))) < 1e-9
    # the base line moved by the offset along the side: the true line is as far from it as the labels say
    s = centred[0]
    again = line_offsets(s["line"], s["u"], s["true_line"])
    assert np.nanmedian(again) == pytest.approx(float(np.median(s["labels"][s["mask"]][:, 0])), abs=OFFSET_TOL)
    save_residual(tmp_path / "b.pt", replace(trained, base_calibrated=True))
    assert load_residual(tmp_path / "b.pt").base_calibrated is True
