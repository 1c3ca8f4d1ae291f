"""The models shipped in the repo load, say how they were made, and were never fitted on the bench world."""

import json

from gluecell.cell.bench import BENCH_SEED
from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
from gluecell.pathplan.correction import DEFAULT_MODEL, load_model


def test_shipped_calibration_was_learnt_with_references_off_the_bench_world():
    cal = load_calibration(DEFAULT_CALIBRATION)
    cfg = json.loads(DEFAULT_CALIBRATION.read_text())["config"]
    assert cfg["references"] == "sim" and cfg["split"] == "train"
    assert str(BENCH_SEED) not in cfg["dataset"]
    assert cal.n_pairs >= 20
    assert 0 < cal.sigma_floor < 1e-3  # a sigma the cell can still spray with (refused above 1 mm)


def test_shipped_correction_beat_the_planner_on_another_seed():
    load_model(DEFAULT_MODEL)  # refuses a model without a recorded held-out win
    rec = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert rec["beats_baseline"] is True and str(BENCH_SEED) not in rec["dataset"] + rec["trained_on"]
    assert rec["corrected"]["glue_above_max_mm"] <= 0.5
    assert rec["corrected"]["band_coverage_2mm_mean"] > rec["baseline"]["band_coverage_2mm_mean"]
