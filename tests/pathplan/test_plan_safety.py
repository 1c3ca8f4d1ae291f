"""Safety holes of issue 13: a plan never claims less overspray than it will make (items 1-3).

- item 1: the learned correction's path is re-checked with the same film model, points and limit as the
  uncorrected plan and rolled back when it fails (before: the old metrics were copied; on this pair a constant
  -1.5 mm model stored 0.00 mm beyond the line while the film predicted again landed 1.84 mm beyond it);
- item 2: NaN film, NaN distances, no point beyond the line, NaN features, NaN directions stop the pair with
  an error that names the value (before: they compared False / became 0 and read as safe);
- item 3: the verdict of a plan: coverage short, line uncertain, margin capped, correction refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan.correction import FEATURE_NAMES, CorrectionModel, build_mlp, correct_plan, edge_features
from gluecell.pathplan.deposition import spray_metrics
from gluecell.pathplan.errors import NonFiniteError
from gluecell.pathplan.pipeline import PathplanConfig, film_limit, plan_part, recheck_film
from gluecell.pathplan.synthetic import make_synthetic_pair

#: Shift of the constant model that pushes the edge pass over the line (mm, - = towards the line) and a benign one.
UNSAFE_SHIFT_MM = -1.5
SAFE_SHIFT_MM = 0.5


def _constant(value_mm: float) -> CorrectionModel:
    """A correction network that predicts ``value_mm`` everywhere (zero weights, output bias)."""
    import torch

    n = len(FEATURE_NAMES)
    net = build_mlp(n, (4,))
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
        net[-1].bias.fill_(value_mm)
    return CorrectionModel(net, np.zeros(n), np.ones(n), np.full(n, -1e9), np.full(n, 1e9))


@pytest.fixture(scope="module")
def upper_plan():
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 25000, seed=1, noise_mm=0.1)
    cfg = PathplanConfig()
    return plan_part("upper", pts, cfg, bite_line=pair.bite_line, normals=nrm), cfg


def test_recheck_reproduces_the_plans_own_film(upper_plan):
    pp, cfg = upper_plan
    again = recheck_film(pp, pp.path, cfg)
    key, _, _ = film_limit(cfg)
    for k in (key, "coverage", "coverage_1mm", "gap_area_mm2"):
        assert again[k] == pytest.approx(pp.metrics[k], abs=1e-9), k
    assert again["film_ok"] == 1.0


def test_unsafe_correction_is_rolled_back(upper_plan):
    pp, cfg = upper_plan
    key, allow_mm, _ = film_limit(cfg)
    out, res = correct_plan(pp, _constant(UNSAFE_SHIFT_MM), cfg)
    assert not res.applied and res.reason.startswith("rolled back") and res.diagnostics["refused"] == "film"
    assert res.diagnostics["recheck"][key] > allow_mm + 0.5  # the corrected film would have landed beyond the line
    assert out is pp  # the uncorrected plan, untouched
    assert recheck_film(pp, out.path, cfg)[key] <= allow_mm


def test_applied_correction_carries_its_rechecked_metrics(upper_plan):
    pp, cfg = upper_plan
    key, allow_mm, _ = film_limit(cfg)
    out, res = correct_plan(pp, _constant(SAFE_SHIFT_MM), cfg)
    assert res.applied
    again = recheck_film(pp, out.path, cfg)
    for k in (key, "coverage_1mm", "coverage"):  # the metrics are the corrected path's, not copies
        assert out.metrics[k] == pytest.approx(again[k], abs=1e-9), k
    # not copies: the shifted edge pass changes the film near the line (with graded rings or closed rings the band
    # beyond 1 mm can stay covered whichever way the edge pass moves, so coverage_1mm alone may not change)
    assert any(out.metrics[k] != pytest.approx(pp.metrics[k], abs=1e-6) for k in ("coverage", "gap_area_mm2"))
    assert out.metrics[key] <= allow_mm


def test_spray_metrics_refuse_nan_and_an_unjudged_boundary():
    thick = np.array([0.2, 0.1, 0.0, 0.02]) * 1e-3
    signed = np.array([0.01, 0.02, -0.001, -0.002])
    band = signed >= 0
    assert spray_metrics(thick, signed, band, 1e-6)["above_line_mm"] == pytest.approx(2.0)
    with pytest.raises(NonFiniteError, match="film thickness"):
        spray_metrics(np.where(signed < 0, np.nan, thick), signed, band, 1e-6)
    with pytest.raises(NonFiniteError, match="signed distance"):
        spray_metrics(thick, np.where(signed < 0, np.nan, signed), band, 1e-6)
    with pytest.raises(NonFiniteError, match="beyond the line"):  # nothing evaluated beyond: unknown, not 0 mm
        spray_metrics(thick, np.abs(signed), band, 1e-6)


def test_nan_features_and_directions_stop_the_correction(upper_plan):
    from dataclasses import replace

    from gluecell.core.errors import ValidationError
    from gluecell.pathplan.correction import edge_pass_indices
    from gluecell.pathplan.geom import unit

    pp, _ = upper_plan
    tp, t = pp.toolpath, pp.path.t.copy()
    idx = edge_pass_indices(tp)
    t[idx[5]] = np.nan  # a NaN time read as a standing nozzle (speed feature 0) and passed the range gate
    with pytest.raises(NonFiniteError, match="waypoint times"):
        edge_features(tp, pp.region, idx, t)
    inward = tp.inward.copy()
    inward[idx[3]] = np.nan
    with pytest.raises(ValidationError, match="inward"):
        edge_features(replace(tp, inward=inward), pp.region, idx, pp.path.t)
    with pytest.raises(ValidationError, match="non-finite"):
        unit(np.array([[1.0, 0.0, 0.0], [np.nan, 0.0, 0.0]]))  # used to come back as a silent zero vector


def test_verdict_names_every_reason(upper_plan):
    from gluecell.pathplan.safety import plan_verdict

    pp, cfg = upper_plan
    ok = dict(pp.metrics, coverage_1mm=0.99)
    assert plan_verdict({"upper": ok}, cfg) == ("ok", [])
    short = dict(pp.metrics, coverage_1mm=0.92)
    verdict, why = plan_verdict({"upper": ok, "sole": short}, cfg, ["line uncertain: x"])
    assert verdict == "needs_human"
    assert why[0] == "line uncertain: x" and why[1].startswith("coverage short: sole 92.0%")
    missing = {k: v for k, v in ok.items() if k != "above_visible_mm"}
    assert plan_verdict({"upper": missing}, cfg)[1][0].startswith("metrics missing")
    nan = dict(ok, coverage_1mm=float("nan"))
    assert plan_verdict({"upper": nan}, cfg)[0] == "needs_human"
