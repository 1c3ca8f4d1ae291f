"""The demo cell plans with its own gun and the design film (cell side: the settings reach the planner)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gluecell.cell.cli.demo import DEMO_GUN, demo_pathplan_config
from gluecell.core.errors import FormatError
from gluecell.pathplan.gun_calibration import WORLD1_GUN, load_gun


def test_demo_config_is_the_cells_calibrated_gun_at_twice_the_inspected_film():
    cal = load_gun(WORLD1_GUN).params
    cfg = demo_pathplan_config()
    assert DEMO_GUN == "world1"
    assert cfg.deposition.flow_ml_s == pytest.approx(cal.flow_ml_s) and cal.flow_ml_s == pytest.approx(0.397, abs=0.01)
    assert cfg.deposition.core_sigma_deg == pytest.approx(cal.core_sigma_deg)
    assert cfg.deposition.covered_mm == pytest.approx(0.10)
    assert cfg.deposition.visible_mm == pytest.approx(0.01)  # what may land above the line is not relaxed
    assert 0.5 < cfg.tuning.edge_target_mm <= 0.7
    plain = demo_pathplan_config("none")  # the planner's uncalibrated default, no design margin
    assert (plain.deposition.flow_ml_s, plain.deposition.covered_mm, plain.tuning.edge_target_mm) == (0.3, 0.05, 0.5)
    assert demo_pathplan_config("world1", 1.0).deposition.covered_mm == pytest.approx(0.05)


def test_demo_config_refuses_a_bad_gun_file(tmp_path):
    bad = tmp_path / "gun.json"
    bad.write_text('{"format": "gluecell.gun_calibration/1", "deposition": {"flow_ml_s": "nan"}}')
    with pytest.raises(FormatError):
        demo_pathplan_config(str(bad))


@pytest.fixture(scope="module")
def synthetic():
    from gluecell.pathplan.synthetic import make_synthetic_pair

    pair = make_synthetic_pair()
    u, un = pair.sample("upper", 20_000, seed=1, noise_mm=0.1)
    s, sn = pair.sample("sole", 12_000, seed=2, noise_mm=0.1)
    scans = {"upper": SimpleNamespace(points=u, normals=un), "sole": SimpleNamespace(points=s, normals=sn)}
    line = {"line": pair.bite_line, "sigma": np.full(len(pair.bite_line), 0.3e-3), "sigma_p95_m": 0.3e-3,
            "reasons": (), "margin_sigmas": 3.0}  # fmt: skip
    return scans, line


def test_real_pipeline_plans_with_the_cells_config(synthetic):
    from gluecell.cell.control.pipeline import RealPipeline

    scans, line = synthetic
    pipe = RealPipeline(plan_worker=False)
    plain = pipe._plan(scans, line)
    pipe.pathplan_config = demo_pathplan_config()
    cell = pipe._plan(scans, line)

    def sprayed_m(checked):
        p = checked.pair.paths["upper"]
        seg = np.linalg.norm(np.diff(p.xyz, axis=0), axis=1)
        return float(seg[p.spray[:-1]].sum())

    # the design film lays more (closer) rings beside the line: more sprayed path on the upper, its coverage
    # now counted at the design film (the synthetic cup sole is short of its target either way)
    assert sprayed_m(cell) > 1.05 * sprayed_m(plain)
    assert cell.pair.metrics["upper"]["coverage_1mm"] >= 0.98
    assert plain.pair.metrics["upper"]["coverage_1mm"] >= 0.98


def test_yieldcheck_summary_counts_pairs_every_setting_ran():
    from gluecell.cell.sim.yieldcheck import summarise_rows

    rows = [{"id": "00000", "setting": "default", "verdict": "ok", "robot_s": 30.0, "defects": ["gap"]},
            {"id": "00000", "setting": "cell", "verdict": "ok", "robot_s": 40.0, "defects": []},
            {"id": "00001", "setting": "default", "verdict": "ok", "robot_s": 34.0, "defects": []},
            {"id": "00001", "setting": "cell", "verdict": "needs_human", "reason": "coverage short"},
            {"id": "00002", "setting": "default", "verdict": "ok", "robot_s": 50.0, "defects": ["above", "gap"]}]
    s = summarise_rows(rows)  # 00002 ran with one setting only: left out of both
    assert s["default"] == {"pairs": 2, "planned": 2, "good": 1, "defective": 1, "by_type": {"gap": 1},
                            "robot_s_mean": 32.0, "defective_ids": ["00000"], "refused_ids": []}
    assert s["cell"]["planned"] == 1 and s["cell"]["good"] == 1 and s["cell"]["refused_ids"] == ["00001"]
    assert s["cell"]["robot_s_mean"] == 40.0
