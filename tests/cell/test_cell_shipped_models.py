"""The models shipped in the repo load, say how they were made, were never fitted on the bench world, and are
evaluated here on a world pair they were not fitted to (not only their own records: issue 13, item 8)."""

import json

import numpy as np
import pytest

from gluecell.cell.bench import BENCH_SEED
from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
from gluecell.pathplan.correction import DEFAULT_MODEL, load_model

#: A world pair of another seed than the calibration's training world (4101) and the bench's (9001).
EVAL_SEED = 2
#: Share of the calibrated line's points within 2 sigma of the true line, and its p95 error (mm): the bench's
#: level for the calibrated predictor (deform_cal p95 worst 1.86 mm on seed 9001, n=24).
CAL_WITHIN_2SIGMA = 0.95
CAL_P95_MM = 1.9


def test_shipped_calibration_was_learnt_with_references_off_the_bench_world():
    cal = load_calibration(DEFAULT_CALIBRATION)
    cfg = json.loads(DEFAULT_CALIBRATION.read_text())["config"]
    assert cfg["references"] == "sim" and cfg["split"] == "train" and cal.references == "sim"
    assert str(BENCH_SEED) not in cfg["dataset"]
    assert cal.n_pairs >= 20


@pytest.mark.slow
def test_shipped_calibration_covers_its_error_on_an_unseen_pair():
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.core.geometry import bite_line_error
    from gluecell.datasets.world import make_pair
    from gluecell.datasets.world.scanner import scan_part
    from gluecell.deformation.line import predict_bite_line
    from gluecell.perception.scan import scan_part_frames

    pair = make_pair(EVAL_SEED)
    rng = np.random.default_rng(EVAL_SEED)
    up = scan_part_frames(scan_part(pair, "upper", rng).frames, "upper", item_id="eval")
    so = scan_part_frames(scan_part(pair, "sole", rng).frames, "sole", item_id="eval")
    pl = predict_bite_line(up, so, calibration=load_calibration(DEFAULT_CALIBRATION), style=pair.item.style,
                           reference=nominal_upper({}, pair.item)[:2], sole_reference=nominal_sole({}, pair.item))
    e = bite_line_error(pl.line, pair.bite_line)
    assert e.p95_mm < CAL_P95_MM
    assert np.mean(e.to_true <= 2 * pl.sigma) >= CAL_WITHIN_2SIGMA
    assert pl.reasons == () and pl.sigma_p95_m < 1e-3


def test_shipped_correction_beat_the_planner_on_another_seed():
    from gluecell.pathplan.correction_train import beats_baseline

    load_model(DEFAULT_MODEL)  # refuses a model without a recorded held-out win
    rec = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert rec["beats_baseline"] is True and str(BENCH_SEED) not in rec["dataset"] + rec["trained_on"]
    assert beats_baseline(rec["baseline"], rec["corrected"])[0] is True  # the switch-on rule on its own figures


@pytest.mark.slow
def test_shipped_correction_never_leaves_a_plan_that_fails_the_film_check():
    """On a world pair it was not trained on, the corrected upper plan is re-checked by the planner's own film
    model: whatever the model does, the plan that comes back passes the limit (on this boot the correction moves
    the edge pass until the predicted film lands 0.43 mm beyond the line, so it is rolled back)."""
    from gluecell.cell.bench.pathplan import sample_scan
    from gluecell.datasets.world import make_pair
    from gluecell.pathplan.correction import correct_plan
    from gluecell.pathplan.pipeline import PathplanConfig, film_limit, plan_part, recheck_film

    w = make_pair(EVAL_SEED)
    u, un = sample_scan(w.upper_mesh, 40_000, 3, drop_below=-1.1)
    cfg = PathplanConfig()
    pp = plan_part("upper", u, cfg, bite_line=w.bite_line, normals=un)
    out, res = correct_plan(pp, load_model(DEFAULT_MODEL), cfg)
    key, allow_mm, _ = film_limit(cfg)
    assert recheck_film(pp, out.path, cfg)[key] <= allow_mm
    assert res.applied or res.reason  # a correction that is not applied says why
    if not res.applied and res.diagnostics.get("refused") == "film":
        assert res.diagnostics["recheck"][key] > allow_mm and out is pp
