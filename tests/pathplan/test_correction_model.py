"""Learned path correction without the world: features, the network, clamping, refusal, checkpoints, the stage."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import VersionError
from gluecell.pathplan.correction import (
    FEATURE_NAMES,
    N_FEATURES,
    CorrectionModel,
    CorrectionRefusedError,
    LearnedCorrection,
    build_mlp,
    correct_toolpath,
    edge_features,
    edge_pass_indices,
    load_model,
    read_checkpoint,
)
from gluecell.pathplan.correction_train import (
    TrainConfig,
    beats_baseline,
    constant_model,
    record_heldout,
    save_checkpoint,
    train,
)
from gluecell.pathplan.region import upper_region
from gluecell.pathplan.stages import build_pipeline, build_stage
from gluecell.pathplan.synthetic import make_synthetic_pair

#: Clamp used in the tests (mm) and the tolerance of a shifted point (m).
CLAMP_MM = 1.5
SHIFT_TOL_M = 1e-9
#: The known offset law of the synthetic training problem: offset = K_MM_PER_DEG * incidence (mm).
K_MM_PER_DEG = 0.05
#: How well the trained network must recover the law (mm, mean absolute error on fresh points).
LAW_MAE_MM = 0.06
#: Label noise of the quantile test (mm) and the fraction of fresh labels a 0.95-quantile fit must lie above.
NOISE_MM = 0.2
QUANTILE_RANGE = (0.9, 0.985)
#: Passes closer than this to the line (mm) follow the edge pass in the follow test.
FOLLOW_MM = 12.0


@pytest.fixture(scope="module")
def planned():
    """A tool path over the synthetic upper (rings, oriented, with tips and speeds) and its region."""
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 25000, seed=3, noise_mm=0.1)
    region = upper_region(pts, pair.bite_line, nrm)
    rings = build_stage({"name": "contour_offset", "width_mm": 20.0})(region)
    mods = build_pipeline([{"name": "resample", "spacing_mm": 2.0}, {"name": "orient", "smooth_mm": 30.0},
                           {"name": "standoff"}, {"name": "lead_in_out"}, {"name": "gun_on_off"},
                           {"name": "speed_profile"}])  # fmt: skip
    return mods(rings), region


def _constant_model(value_mm: float, lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                    beats: bool | None = True) -> CorrectionModel:  # fmt: skip
    """A network that predicts ``value_mm`` everywhere (zero weights, output bias)."""
    import torch

    net = build_mlp(N_FEATURES, (4,))
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
        net[-1].bias.fill_(value_mm)
    lo = np.full(N_FEATURES, -1e9) if lo is None else lo
    hi = np.full(N_FEATURES, 1e9) if hi is None else hi
    rec = {"config": {"hidden": [4]}, "beats_baseline": beats}
    return CorrectionModel(net, np.zeros(N_FEATURES), np.ones(N_FEATURES), lo, hi, rec)


def test_features_are_finite_deterministic_and_on_the_edge_pass(planned):
    tp, region = planned
    idx = edge_pass_indices(tp)
    assert len(idx) > 50
    sprayed = tp.pass_id >= 0
    assert np.median(tp.offset[idx]) == pytest.approx(tp.offset[sprayed].min(), abs=1e-4)
    f1 = edge_features(tp, region, idx)
    f2 = edge_features(tp, region, idx)
    assert f1.shape == (len(idx), len(FEATURE_NAMES)) and np.all(np.isfinite(f1))
    assert np.array_equal(f1, f2)
    col = {n: f1[:, k] for k, n in enumerate(FEATURE_NAMES)}
    assert np.allclose(col["offset_mm"], tp.offset[idx] * 1e3)
    assert np.allclose(col["standoff_mm"], np.linalg.norm(tp.tip[idx] - tp.contact[idx], axis=1) * 1e3)
    assert np.all((col["incidence_deg"] >= 0) & (col["incidence_deg"] <= 90))
    # times give the same speeds as the path's own speed profile where the gun is on
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(tp.tip, axis=0), axis=1) / tp.speed[:-1])]
    f3 = edge_features(tp, region, idx, t)
    on = tp.spray[idx]
    assert np.allclose(f3[on, 6], f1[on, 6], rtol=1e-6)


def test_correction_is_clamped_and_moves_along_inward(planned):
    tp, region = planned
    res = correct_toolpath(tp, region, _constant_model(10.0), max_offset_mm=CLAMP_MM, follow_within_mm=0.0)
    assert res.applied, res.reason
    moved = np.linalg.norm(res.toolpath.contact - tp.contact, axis=1)
    assert np.allclose(moved[res.indices], CLAMP_MM * 1e-3, atol=SHIFT_TOL_M)
    others = np.setdiff1d(np.arange(len(tp)), res.indices)
    assert np.all(moved[others] == 0.0)
    step = res.toolpath.tip[res.indices] - tp.tip[res.indices]
    assert np.allclose(step, CLAMP_MM * 1e-3 * tp.inward[res.indices], atol=SHIFT_TOL_M)
    assert np.allclose(res.toolpath.offset[res.indices] - tp.offset[res.indices], CLAMP_MM * 1e-3)
    neg = correct_toolpath(tp, region, _constant_model(-10.0), max_offset_mm=CLAMP_MM)
    assert neg.offsets_m.min() == pytest.approx(-CLAMP_MM * 1e-3)


def test_passes_near_the_line_follow_the_edge_pass(planned):
    tp, region = planned
    res = correct_toolpath(tp, region, _constant_model(-0.7), follow_within_mm=FOLLOW_MM)
    near = np.zeros(len(tp), bool)
    for i in tp.passes():
        near[i] = tp.pass_id[i[0]] >= 0 and np.median(np.abs(tp.offset[i])) < FOLLOW_MM * 1e-3
    assert near.sum() > len(res.indices)  # more than the edge pass
    moved = np.linalg.norm(res.toolpath.contact - tp.contact, axis=1)
    assert np.allclose(moved[near], 0.7e-3, atol=SHIFT_TOL_M)
    assert np.all(moved[~near] == 0.0)


def test_out_of_range_inputs_switch_the_correction_off(planned):
    tp, region = planned
    feats = edge_features(tp, region, edge_pass_indices(tp))
    lo, hi = feats.min(axis=0), feats.max(axis=0)
    assert correct_toolpath(tp, region, _constant_model(-0.5, lo, hi)).applied
    hi2 = hi.copy()
    hi2[1] = lo[1] + 0.5 * (hi[1] - lo[1]) - 5.0  # standoff range that excludes this path
    res = correct_toolpath(tp, region, _constant_model(-0.5, lo, hi2))
    assert not res.applied and "outside the training ranges" in res.reason
    assert "standoff_mm" in res.diagnostics["out_of_range_features"]
    assert res.toolpath is tp
    assert not correct_toolpath(tp, region, None).applied
    # a few out-of-range spots (<= max_out_of_range) keep the correction on but get none of their own
    inc = feats[:, 2]
    hi3 = hi.copy()
    hi3[2] = np.sort(inc)[-2] - 1e-6 - 0.1 * (hi[2] - lo[2])  # the two largest incidences fall outside
    res = correct_toolpath(tp, region, _constant_model(-0.5, lo, hi3), smooth_window=1, max_out_of_range=0.05,
                           follow_within_mm=0.0)  # fmt: skip
    assert res.applied
    off = inc > hi3[2] + 0.1 * (hi3[2] - lo[2])
    assert 1 <= off.sum() <= 3
    assert np.all(res.offsets_m[off] == 0.0) and np.allclose(res.offsets_m[~off], -0.5e-3)


def test_mlp_recovers_a_known_offset_law():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1500, N_FEATURES)) * 10 + 20
    x[:, 2] = rng.uniform(0, 30, len(x))  # incidence_deg
    y = K_MM_PER_DEG * x[:, 2] + rng.normal(0, 0.02, len(x))
    cfg = TrainConfig(epochs=400, hidden=(16, 16), quantile=0.0)
    net, stats, metrics = train(x, y, np.arange(len(x)) // 50, cfg)
    model = CorrectionModel(net, stats["mean"], stats["std"], stats["lo"], stats["hi"])
    xt = rng.uniform(-1, 1, (300, N_FEATURES)) * 10 + 20
    xt[:, 2] = rng.uniform(2, 28, len(xt))
    err = np.abs(model.predict_mm(xt) - K_MM_PER_DEG * xt[:, 2])
    assert err.mean() < LAW_MAE_MM, err.mean()
    assert metrics["val"]["mae_mm"] < metrics["val_constant_offset"]["mae_mm"] / 3


def test_quantile_fit_bounds_the_labels_from_above():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 30, (3000, N_FEATURES))
    y = K_MM_PER_DEG * x[:, 2] + rng.normal(0, NOISE_MM, len(x))
    net, stats, metrics = train(x, y, np.arange(len(x)) // 50, TrainConfig(epochs=400, hidden=(16, 16), quantile=0.95))
    model = CorrectionModel(net, stats["mean"], stats["std"], stats["lo"], stats["hi"])
    xt = rng.uniform(0, 30, (2000, N_FEATURES))
    yt = K_MM_PER_DEG * xt[:, 2] + rng.normal(0, NOISE_MM, len(xt))
    below = np.mean(yt <= model.predict_mm(xt))
    assert QUANTILE_RANGE[0] <= below <= QUANTILE_RANGE[1], below
    assert metrics["val"]["pinball_mm"] < metrics["val_constant_offset"]["pinball_mm"]


def test_checkpoint_round_trip_version_and_refusal(tmp_path, planned):
    import torch

    m = _constant_model(-0.8)
    stats = {"mean": m.mean, "std": m.std, "lo": m.lo, "hi": m.hi}
    path = tmp_path / "model.pt"
    save_checkpoint(path, m.net, stats, {"config": {"hidden": [4]}, "beats_baseline": False, "heldout": None})
    with pytest.raises(CorrectionRefusedError, match="did not beat"):
        load_model(path)
    loaded = load_model(path, require_beats_baseline=False)
    feats = edge_features(planned[0], planned[1], edge_pass_indices(planned[0]))
    assert np.allclose(loaded.predict_mm(feats), m.predict_mm(feats))
    base = {"glue_above_max_mm": 0.0, "glue_above_p99_mm": 0.0, "band_coverage_2mm_mean": 0.1}
    record_heldout(path, {"beats_baseline": True, "baseline": base})
    assert load_model(path).record["heldout"]["baseline"] == base
    blob = read_checkpoint(path)
    blob["format"] = "gluecell.correction/3.0"
    torch.save(blob, path)
    with pytest.raises(VersionError):
        load_model(path, require_beats_baseline=False)


def test_stage_is_registered_off_by_default_and_refuses_unbeaten_models(tmp_path, planned):
    tp, region = planned
    stage = build_stage({"name": "learned_correction"})
    assert stage(tp) is tp and "no model" in stage.last_result.reason
    m = _constant_model(-0.6)
    path = tmp_path / "m.pt"
    stats = {"mean": m.mean, "std": m.std, "lo": m.lo, "hi": m.hi}
    save_checkpoint(path, m.net, stats, {"config": {"hidden": [4]}, "beats_baseline": True})
    bound = build_stage({"name": "learned_correction", "model": str(path)}).bind(region)
    assert isinstance(bound, LearnedCorrection)
    out = bound(tp)
    ref = correct_toolpath(tp, region, m)
    assert np.allclose(out.contact, ref.toolpath.contact)
    save_checkpoint(path, m.net, stats, {"config": {"hidden": [4]}, "beats_baseline": False})
    with pytest.raises(CorrectionRefusedError):
        build_stage({"name": "learned_correction", "model": str(path)}).bind(region)(tp)


def test_constant_ablation_predicts_the_training_constant(planned):
    m = _constant_model(0.0)
    m.record["train_metrics"] = {"constant_offset_mm": -0.25}
    c = constant_model(m)
    feats = edge_features(planned[0], planned[1], edge_pass_indices(planned[0]))
    assert np.allclose(c.predict_mm(feats), -0.25, atol=1e-6) and c.record["ablation"] == "constant"


def test_outcomes_folder_gives_per_run_labels_and_checks_its_format(tmp_path):
    from gluecell.core.arrays import save_npz
    from gluecell.core.fileio import atomic_write_json
    from gluecell.pathplan.correction_train import OUTCOMES_FORMAT, load_outcomes

    edge = np.array([[1.0, 2.0, np.nan], [1.5, 2.5, 3.0]])
    feats = np.arange(3 * N_FEATURES, dtype=float).reshape(3, N_FEATURES)
    save_npz(tmp_path / "a.npz", {"features": feats, "label_mm": 1.0 - np.nanmean(edge, axis=0), "edge_mm": edge})
    atomic_write_json(tmp_path / "meta.json", {"format": OUTCOMES_FORMAT, "ids": ["a"], "margin_mm": 1.0})
    x, y, g, _ = load_outcomes(tmp_path)
    assert np.all(g == 0)
    assert x.shape == (5, N_FEATURES) and np.allclose(np.sort(y), np.sort(1.0 - edge[np.isfinite(edge)]))
    _, y2, _, meta = load_outcomes(tmp_path, margin_mm=0.5)
    assert np.allclose(np.sort(y2), np.sort(y) - 0.5) and meta["margin_mm"] == 0.5
    atomic_write_json(tmp_path / "meta.json", {"format": "gluecell.correction_outcomes/2.0", "ids": ["a"]})
    with pytest.raises(VersionError):
        load_outcomes(tmp_path)


def test_beats_baseline_rule():
    base = {"glue_above_max_mm": 0.0, "glue_above_p99_mm": 0.0, "band_coverage_2mm_mean": 0.05}
    better = {"glue_above_max_mm": 0.0, "glue_above_p99_mm": 0.0, "band_coverage_2mm_mean": 0.4}
    unsafe = {"glue_above_max_mm": 1.2, "glue_above_p99_mm": 0.9, "band_coverage_2mm_mean": 0.9}
    same = dict(base)
    assert beats_baseline(base, better)[0]
    assert not beats_baseline(base, unsafe)[0]
    assert not beats_baseline(base, same)[0]
