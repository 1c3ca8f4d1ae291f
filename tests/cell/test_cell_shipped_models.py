"""The models shipped in the repo load, say how they were made, were never fitted on the bench world, and are
evaluated here on a world pair they were not fitted to (not only their own records: issue 13, item 8)."""

import json

import numpy as np
import pytest

from gluecell.cell.bench import BENCH_SEED
from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
from gluecell.deformation.errors import LowConfidenceError
from gluecell.pathplan.correction import DEFAULT_MODEL, load_model

#: A world pair of another seed than the calibration's training world (4101) and the bench's (9001).
EVAL_SEED = 2
#: Share of the calibrated line's points within 2 sigma of the true line, and its p95 error (mm), on this boot
#: of the reworked world (issue 12, round 2): measured 82 % and 3.42 mm, sigma p95 1.06 mm (so the default
#: predictor refuses it: the pair goes to a human). Issue 14's goals (95 %, 0.5 mm) are not reached yet.
CAL_WITHIN_2SIGMA = 0.75
CAL_P95_MM = 4.0
#: The predictor refuses a line whose sigma p95 is over this (metres): the pair goes to a human.
MAX_SIGMA_M = 1.0e-3


def test_shipped_calibration_was_learnt_with_references_off_the_bench_world():
    cal = load_calibration(DEFAULT_CALIBRATION)
    cfg = json.loads(DEFAULT_CALIBRATION.read_text())["config"]
    assert cfg["references"] == "sim" and cfg["split"] == "train" and cal.references == "sim"
    assert str(BENCH_SEED) not in cfg["dataset"]
    assert cal.n_pairs >= 20
    # World 2 (issue 12): refitted on world 2 the sigma floor is 1.06 mm, over the 1 mm at which the cell refuses
    # a prediction: the predictor does not follow the new variation yet. Bounded so a broken fit still fails.
    assert 0 < cal.sigma_floor < 1.5e-3


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
    kw = dict(calibration=load_calibration(DEFAULT_CALIBRATION), style=pair.item.style,
              reference=nominal_upper({}, pair.item)[:2], sole_reference=nominal_sole({}, pair.item))
    pl = predict_bite_line(up, so, check_confidence=False, **kw)
    e = bite_line_error(pl.line, pair.bite_line)
    assert e.p95_mm < CAL_P95_MM
    assert np.mean(e.to_true <= 2 * pl.sigma) >= CAL_WITHIN_2SIGMA  # the sigma covers the error it has
    assert pl.reasons == ()
    if pl.sigma_p95_m > MAX_SIGMA_M:  # too uncertain to spray: the default predictor sends the pair to a human
        with pytest.raises(LowConfidenceError, match="send the pair to a human"):
            predict_bite_line(up, so, **kw)


def test_shipped_correction_beat_the_planner_on_another_seed():
    from gluecell.pathplan.correction_train import beats_baseline_true, worlds_verdict

    rec = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert str(BENCH_SEED) not in rec["trained_on"]  # never fitted on the bench world
    worlds = rec["heldout_worlds"]
    assert set(worlds) == {"world1", "world2"}  # judged on held-out pairs of both worlds
    for s in worlds.values():  # each world's verdict is the switch-on rule on its own recorded figures
        v = s["all"]
        if v["n"] == 0:  # no held-out pair of that world could be planned: nothing was corrected there
            assert v["verdict"] == "off"
            continue
        ok = beats_baseline_true(v["uncorrected"], v["corrected"])[0]
        assert v["verdict"] == ("off" if v["applied_fraction"] == 0 else ("wins" if ok else "loses"))
    assert rec["beats_baseline"] is worlds_verdict(worlds)[0]
    if rec["beats_baseline"]:
        load_model(DEFAULT_MODEL)  # refuses a model without a recorded held-out win


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
    out, res = correct_plan(pp, load_model(DEFAULT_MODEL, require_beats_baseline=False), cfg)
    key, allow_mm, _ = film_limit(cfg)
    assert recheck_film(pp, out.path, cfg)[key] <= allow_mm
    assert res.applied or res.reason  # a correction that is not applied says why
    if not res.applied and res.diagnostics.get("refused") == "film":
        assert res.diagnostics["recheck"][key] > allow_mm and out is pp
