"""The image-level head: its per-view measurements, its fit, the per-part policy and the verdict it gives."""

import dataclasses

import numpy as np
import pytest

from gluecell.core.types import DEFECT_TYPES

from .conftest import FX, WALL_X, wall_plan, wall_view

#: image rows per metre of wall height
ROWS_PER_M = FX / WALL_X


def _inputs(view):
    from gluecell.quality.geometry import view_geometry
    from gluecell.quality.net import features

    return features(view, view_geometry(view, wall_plan()))


def _probs_from_truth(view):
    """Probabilities of a perfect glue segmentation (glue where the film is), no defect channels."""
    film = (view.depth_before.astype(np.int32) - view.depth_after.astype(np.int32)) > 0
    p = np.zeros((5, *film.shape), np.float32)
    p[0] = film
    return p


def test_features_measure_the_dry_zone_and_the_glue_beyond_the_line():
    from gluecell.quality.head import FEATURE_NAMES, view_features

    col = {n: k for k, n in enumerate(FEATURE_NAMES)}
    clean, gap, above = (wall_view(a, seed=1) for a in (1.2e-3, 9e-3, -3e-3))
    f = {name: view_features(_inputs(v), _probs_from_truth(v)) for name, v in
         (("clean", clean), ("gap", gap), ("above", above))}  # fmt: skip
    # zone: 2 sigma + 2.5 mm = 3.1 mm .. 9 mm dry over the whole 128-px width: ~ 5.9 mm * 1.875 px/mm rows
    dry_px = np.expm1(f["gap"][col["dry_zone"]])
    assert 0.8 * 5.9e-3 * ROWS_PER_M * 128 < dry_px < 1.2 * 5.9e-3 * ROWS_PER_M * 128
    assert f["gap"][col["dry_frac"]] > 0.5
    assert f["clean"][col["dry_zone"]] == 0.0 and f["clean"][col["dry_frac"]] == 0.0
    # glue from 3 mm beyond the line: 3 mm - (2 sigma + 0.5 mm) = 1.9 mm of rows beyond the tolerance
    beyond = np.expm1(f["above"][col["glue_beyond"]])
    assert 0.6 * 1.9e-3 * ROWS_PER_M * 128 < beyond < 1.4 * 1.9e-3 * ROWS_PER_M * 128
    assert f["clean"][col["glue_beyond"]] == 0.0 and f["gap"][col["glue_beyond"]] == 0.0
    assert np.all(f["clean"][13:] == 0.0)  # no classical scores given


def test_fit_head_separates_and_round_trips():
    from gluecell.quality.errors import ModelVersionError, TrainingError
    from gluecell.quality.head import FEATURE_NAMES, ImageHead, fit_head

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(FEATURE_NAMES)))
    Y = np.zeros((400, 4), bool)
    Y[:, 0] = X[:, 8] > 1.0  # gap <- dry_zone
    Y[:, 1] = X[:, 10] > 1.5  # above <- glue_beyond
    head = fit_head(X, Y)
    s = head.scores(X)
    for k, c in ((0, 8), (1, 10)):
        assert s[Y[:, k], k].min() > s[~Y[:, k], k].max() - 0.2  # (almost) separated
        assert np.argmax(np.abs(head.weights[k])) == c
    assert np.all(s[:, 2] < 1e-3)  # no thin positives: the head never fires on thin
    again = ImageHead.from_dict(head.to_dict())
    np.testing.assert_allclose(again.scores(X), s)
    bad = head.to_dict() | {"features": ["x"] * len(FEATURE_NAMES)}
    with pytest.raises(ModelVersionError):
        ImageHead.from_dict(bad)
    with pytest.raises(TrainingError):
        fit_head(X[:, :5], Y)


def test_part_policy_keeps_the_false_reject_budget_on_validation_parts():
    from gluecell.quality.headfit import choose_part_policy, part_scores
    from gluecell.quality.policy import decide

    rng = np.random.default_rng(1)
    n_parts, views = 200, 4
    scores = rng.uniform(0, 0.6, size=(n_parts * views, 4))
    labels = np.zeros_like(scores, dtype=bool)
    ids = [f"{p:05d}/v{k}" for p in range(n_parts) for k in range(views)]
    labels[:40, 0] = True  # 10 parts with a gap in their views
    scores[:40, 0] += 0.5
    s, y, parts = part_scores(scores, labels, ids)
    assert len(parts) == n_parts and y[:10, 0].all() and not y[10:].any()
    assert np.allclose(s[3], scores[12:16].max(axis=0))
    pol = choose_part_policy(scores, labels, ids, fr_goal=0.04, human_goal=0.04)
    verdicts = [decide(dict(zip(DEFECT_TYPES, row)), pol)[0] for row in s]
    clean = np.asarray(verdicts)[~y.any(axis=1)]
    assert (clean == "fail").mean() <= 0.04 + 1e-9  # 1 % per type at most
    assert (clean != "pass").mean() <= 0.08 + 1e-9
    assert all(v != "pass" for v in verdicts[:10])  # the shifted gap scores sit above every clean score


def test_head_model_fails_a_gap_and_passes_clean_views(tmp_path):
    """End to end through quality.inspect: the shipped network + a head fitted on synthetic walls."""
    from gluecell.quality import inspect
    from gluecell.quality.geometry import view_geometry
    from gluecell.quality.head import batch_features, fit_head
    from gluecell.quality.inspect import resolve_model
    from gluecell.quality.measure import measure_view
    from gluecell.quality.policy import VerdictPolicy
    from gluecell.quality.train import predict

    base = resolve_model("champion")
    xs, cls, ys = [], [], []
    for seed in range(4):
        for bright in (False, True):
            for start, lab in ((1.2e-3, False), (9e-3, True)):
                v = wall_view(start, seed=seed, brightened=bright)
                xs.append(_inputs(v))
                cls.append([measure_view(v, view_geometry(v, wall_plan())).scores[t] for t in DEFECT_TYPES])
                ys.append([lab, False, False, False])
    x = np.stack(xs)
    probs, _ = predict(base.net, x)
    head = fit_head(batch_features(x, probs, np.asarray(cls)), np.asarray(ys))
    pol = VerdictPolicy(fail=dict.fromkeys(DEFECT_TYPES, 0.5), uncertain=dict.fromkeys(DEFECT_TYPES, 0.5),
                        cross_check=2.0)  # fmt: skip
    record = {k: v for k, v in base.record.items() if k != "image_size"}  # the walls are 128 x 128
    model = dataclasses.replace(base, record={**record, "head": head.to_dict()}, policy=pol)
    for bright in (False, True):
        gap = inspect([wall_view(9e-3, seed=11, brightened=bright)], wall_plan(), model=model)
        clean = inspect([wall_view(1.2e-3, seed=11, brightened=bright)], wall_plan(), model=model)
        assert gap.verdict == "fail" and [d.kind for d in gap.defects] == ["gap"]
        # located in the dry rows (3.1-9 mm above the line: image rows ~47-58), not at the part's centre
        y0, y1 = gap.defects[0].bbox_px[1], gap.defects[0].bbox_px[3]
        assert 44 <= y0 and y1 <= 61 and y1 - y0 >= 5, gap.defects[0].bbox_px
        assert gap.diagnostics["scores"]["gap"] > 0.5 > clean.diagnostics["scores"]["gap"]
        assert clean.verdict == "pass", clean.diagnostics["scores"]


def test_head_fit_refuses_validation_equal_to_fitting_data(tmp_path):
    from gluecell.quality.errors import TrainingError
    from gluecell.quality.headfit import fit_head_model
    from gluecell.quality.inspect import resolve_model

    with pytest.raises(TrainingError, match="must not be the fitting data"):
        fit_head_model(resolve_model("champion"), [tmp_path], [tmp_path], tmp_path / "m.pt")


def test_rejudge_counts_a_demo_run_against_its_truth_labels(tmp_path):
    """A demo run's layout (views, plan, truth) re-inspected by the classical measurement and counted."""
    import json

    from gluecell.cell.bench.quality import rejudge_run
    from gluecell.core.plan import plan_to_dict
    from gluecell.datasets.inspection.format import save_view

    cases = {"00000": (1.5e-3, "pass"), "00001": (-3e-3, "fail"), "00002": (-3e-3, "pass"), "00003": (1.5e-3, "fail")}
    for pid, (start, truth) in cases.items():
        (tmp_path / "inspection" / pid).mkdir(parents=True)
        save_view(tmp_path / "inspection" / pid / "view0.npz", wall_view(start, seed=3))
        (tmp_path / "pairs").mkdir(exist_ok=True)
        (tmp_path / "pairs" / f"{pid}_plan.json").write_text(json.dumps(plan_to_dict(wall_plan())))
        (tmp_path / "inspection_truth").mkdir(exist_ok=True)
        (tmp_path / "inspection_truth" / f"{pid}.json").write_text(json.dumps(
            {"verdict": truth, "defects": ["above"] if truth == "fail" else [], "views": []}))
    res = rejudge_run(tmp_path, model=None)
    assert res["pairs"] == 4
    assert [r["verdict"] for r in res["rows"]] == ["pass", "fail", "fail", "pass"]
    assert (res["caught"], res["missed"], res["false reject"], res["correct pass"]) == (1, 1, 1, 1)
    assert res["first_pass_yield"] == 0.5
