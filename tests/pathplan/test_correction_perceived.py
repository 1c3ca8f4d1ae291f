"""The learned correction on what the cell has (issue 15, item 5): the margin feature, the per-world switch-on rule,
and ``gluecell plan`` using the shipped correction by default (its gate refusal keeps the uncorrected plan)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gluecell.pathplan.correction import (
    DEFAULT_MODEL,
    FEATURE_NAMES,
    N_FEATURES,
    CorrectionModel,
    CorrectionRefusedError,
    build_mlp,
    edge_features,
    edge_pass_indices,
    load_model,
)
from gluecell.pathplan.correction_train import beats_baseline_true, summarise_true, worlds_verdict
from gluecell.pathplan.region import upper_region
from gluecell.pathplan.stages import build_pipeline, build_stage
from gluecell.pathplan.synthetic import make_synthetic_pair

#: Per-point margins of the margin-feature test (m): one half of the line each.
MARGINS_M = (0.5e-3, 2.0e-3)
#: Figures of a held-out row that the rule reads (the uncorrected plan of the rule tests).
BASE = {"true_above_max_mm": 0.3, "true_above_p99_mm": 0.25, "true_band2mm_coverage": 0.6, "true_coverage": 0.97,
        "true_dry_strip_p95_mm": 1.8, "true_gap_mm2": 20.0}  # fmt: skip


def _tool_path(region):
    rings = build_stage({"name": "contour_offset", "width_mm": 20.0})(region)
    mods = build_pipeline([{"name": "resample", "spacing_mm": 2.0}, {"name": "orient", "smooth_mm": 30.0},
                           {"name": "standoff"}, {"name": "lead_in_out"}, {"name": "gun_on_off"},
                           {"name": "speed_profile"}])  # fmt: skip
    return mods(rings)


def test_margin_feature_is_the_regions_per_point_margin():
    """The feature the 1.x checkpoints lacked: on perceived pairs the glue edge's distance from the true line
    depends on the line's margin (2 sigma), so the network must see it, point by point."""
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 20000, seed=3, noise_mm=0.1)
    line = pair.bite_line
    half = np.arange(len(line)) < len(line) // 2
    margin = np.where(half, *MARGINS_M)
    region = upper_region(pts, line, nrm, margin_m=margin)
    tp = _tool_path(region)
    idx = edge_pass_indices(tp)
    col = FEATURE_NAMES.index("margin_mm")
    got = edge_features(tp, region, idx)[:, col]
    from scipy.spatial import cKDTree

    # each waypoint carries the margin of the line's half it lies beside (both halves are sprayed)
    want = margin[cKDTree(line).query(tp.contact[idx])[1]] * 1e3
    assert np.mean(np.isclose(got, want)) > 0.95
    assert set(np.round(np.unique(got), 6)) <= {MARGINS_M[0] * 1e3, MARGINS_M[1] * 1e3}
    assert len(np.unique(got)) == 2
    plain = upper_region(pts, line, nrm)  # an exact line: no margin
    tp0 = _tool_path(plain)
    assert np.allclose(edge_features(tp0, plain, edge_pass_indices(tp0))[:, col], 0.0)


def _row(kind: str, corr: dict[str, float], applied: bool = True) -> dict:
    return {"id": "p", "kind": kind, "applied": applied, "reason": "" if applied else "inputs outside the training "
            "ranges", "base": dict(BASE), "corr": {**BASE, **corr}}  # fmt: skip


def test_fewer_rejects_branch():
    """Visible glue over the goal is a reject: removing it may cost a little dry strip and band, not more."""
    base = {**BASE, "true_above_max_mm": 0.62, "true_above_p99_mm": 0.55, "plans_over_goal": 0.5}
    fixed = {**base, "true_above_max_mm": 0.15, "true_above_p99_mm": 0.1, "plans_over_goal": 0.0,
             "true_band2mm_coverage": 0.5, "true_dry_strip_p95_mm": BASE["true_dry_strip_p95_mm"] + 0.2}  # fmt: skip
    assert beats_baseline_true(base, fixed)[0] and "fewer_rejects=True" in beats_baseline_true(base, fixed)[1]
    wider = {**fixed, "true_dry_strip_p95_mm": BASE["true_dry_strip_p95_mm"] + 0.5}  # strip cost too high
    assert not beats_baseline_true(base, wider)[0]
    new_reject = {**BASE, "true_above_max_mm": 1.2, "true_above_p99_mm": 1.1, "plans_over_goal": 0.25}
    worse = {**new_reject, "true_above_max_mm": 1.1, "true_band2mm_coverage": 0.8, "plans_over_goal": 0.5}
    assert not beats_baseline_true(new_reject, worse)[0]  # better band, lower worst pair, but a new reject
    stripped = {**BASE, "true_band2mm_coverage": 0.8, "true_dry_strip_p95_mm": BASE["true_dry_strip_p95_mm"] + 1.4}
    assert not beats_baseline_true(BASE, stripped)[0]  # better band on average, a much wider worst dry strip
    none_over = {**base, "true_above_max_mm": 0.3, "true_above_p99_mm": 0.2, "plans_over_goal": 0.0}
    assert not beats_baseline_true(none_over, {**fixed, "true_above_max_mm": 0.1})[0]  # nothing to fix: band lost


def test_per_world_rule_wins_off_and_loses():
    better = {"true_band2mm_coverage": 0.75, "true_dry_strip_p95_mm": 1.1, "true_coverage": 0.975}
    above = {"true_above_max_mm": 0.9, "true_above_p99_mm": 0.7, "true_band2mm_coverage": 0.9}
    assert beats_baseline_true(BASE, {**BASE, **better})[0]
    assert not beats_baseline_true(BASE, {**BASE, **above})[0]  # more glue above the line than allowed
    assert not beats_baseline_true(BASE, dict(BASE))[0]  # no gain is no win
    wins = summarise_true([_row("marked", better), _row("predicted", better)])
    assert wins["all"]["verdict"] == "wins" and wins["marked"]["uncorrected"]["true_band2mm_coverage"] == 0.6
    assert wins["all"]["corrected"]["true_band2mm_coverage"] == pytest.approx(0.75)
    off = summarise_true([_row("marked", {}, applied=False)])
    assert off["all"]["verdict"] == "off" and off["all"]["not_applied"] == ["inputs outside the training ranges"]
    loses = summarise_true([_row("marked", above)])
    assert loses["all"]["verdict"] == "loses"
    assert worlds_verdict({"world1": wins, "world2": off})[0] is True  # kept off where it would not win
    assert worlds_verdict({"world1": wins, "world2": loses})[0] is False
    assert worlds_verdict({"world1": off, "world2": off})[0] is False  # never applied: nothing earned


def _refusing_model() -> CorrectionModel:
    """A model whose training ranges exclude every input: its gate keeps it off on any path."""
    import torch

    net = build_mlp(N_FEATURES, (4,))
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
    lo, hi = np.full(N_FEATURES, 1e6), np.full(N_FEATURES, 2e6)
    return CorrectionModel(net, np.zeros(N_FEATURES), np.ones(N_FEATURES), lo, hi, {"beats_baseline": True})


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    from gluecell.core.ply import write_ply

    d = tmp_path_factory.mktemp("plan")
    pair = make_synthetic_pair()
    for part in ("upper", "sole"):
        pts, nrm = pair.sample(part, 25000, seed=2, noise_mm=0.1)
        write_ply(d / f"{part}.ply", pts, nrm)
    (d / "line.json").write_text(json.dumps({"bite_line": pair.bite_line.tolist()}))
    return d, pair


def test_gate_refusal_of_the_default_keeps_the_plan_without_a_reason_for_a_human(clouds):
    from gluecell.pathplan.safety import plan_checked

    _, pair = clouds
    up, so = pair.sample("upper", 25000, seed=2, noise_mm=0.1), pair.sample("sole", 25000, seed=2, noise_mm=0.1)
    named = plan_checked(up, so, pair.bite_line, correction=_refusing_model())
    default = plan_checked(up, so, pair.bite_line, correction=_refusing_model(), correction_required=False)
    for c in (named, default):
        assert not c.correction.applied and "outside the training ranges" in c.correction.reason
    assert any(r.startswith("correction refused") for r in named.reasons)
    assert not any(r.startswith("correction refused") for r in default.reasons)
    assert np.allclose(default.pair.paths["upper"].xyz, named.pair.paths["upper"].xyz)  # the uncorrected path


def test_gluecell_plan_uses_the_shipped_correction_by_default(clouds, tmp_path, monkeypatch):
    """``--correction default`` is the shipped checkpoint where it is switched on (its record), ``off`` none; a
    switched-on default refused by its gate keeps the plan without a reason for a human, a named one does not."""
    from gluecell.cell.cli import plan as cmd_plan
    from gluecell.pathplan import correction as corr_mod
    from gluecell.pathplan.correction_train import save_checkpoint

    try:
        shipped = load_model(DEFAULT_MODEL)
    except CorrectionRefusedError:  # switched off by its held-out record: the default plans uncorrected
        shipped = None
    got = cmd_plan._load_correction("default")
    assert (got is None) == (shipped is None)
    if shipped is not None:  # the default is the shipped checkpoint itself
        assert got.record["heldout_worlds"] == shipped.record["heldout_worlds"]
    assert cmd_plan._load_correction("off") is None
    m = _refusing_model()  # a switched-on checkpoint whose gate refuses every path
    ck = tmp_path / "on.pt"
    save_checkpoint(ck, m.net, {"mean": m.mean, "std": m.std, "lo": m.lo, "hi": m.hi},
                    {"config": {"hidden": [4]}, "beats_baseline": True})  # fmt: skip
    monkeypatch.setattr(corr_mod, "DEFAULT_MODEL", ck)  # as if it were the shipped one
    d, _ = clouds
    kw = {"bite_line": d / "line.json", "calibration": None}
    for name, corr in (("default", "default"), ("off", "off"), ("named", ck)):
        cmd_plan.run_plan(d / "upper.ply", d / "sole.ply", tmp_path / f"{name}.json", correction=corr, **kw)
    on, off, named = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("default", "off", "named"))
    assert "correction" not in off
    assert on["correction"]["applied"] is False and "outside the training ranges" in on["correction"]["reason"]
    assert on["correction"]["diagnostics"]["out_of_range_fraction"] > 0.9
    assert not any(r.startswith("correction refused") for r in on["verdict_reasons"])
    assert any(r.startswith("correction refused") for r in named["verdict_reasons"])


def test_outcomes_of_one_pair_share_a_group_and_filter_by_line_kind(tmp_path):
    from gluecell.core.arrays import save_npz
    from gluecell.core.fileio import atomic_write_json
    from gluecell.pathplan.correction_train import OUTCOMES_FORMAT, load_outcomes

    ids = ["p1_predicted", "p1_marked", "p2_predicted"]
    for k, sid in enumerate(ids):
        feats = np.full((4, N_FEATURES), float(k))
        save_npz(tmp_path / f"{sid}.npz", {"features": feats, "label_mm": np.full(4, float(k))})
    atomic_write_json(tmp_path / "meta.json", {"format": OUTCOMES_FORMAT, "ids": ids, "margin_mm": 0.5})
    _, y, g, _ = load_outcomes(tmp_path)
    assert len(y) == 12 and np.array_equal(np.unique(g[:8]), [0]) and np.all(g[8:] == 1)  # p1's two lines: group 0
    _, yp, gp, _ = load_outcomes(tmp_path, kinds=("predicted",))
    assert np.array_equal(np.unique(yp), [0.0, 2.0]) and np.array_equal(np.unique(gp), [0, 1])
