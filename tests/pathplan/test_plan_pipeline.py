"""Whole-part planning on the synthetic pair: tuned paths keep every trace behind the line, cover the band,
are reachable and timed; bad configs are refused."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.config import from_dict
from gluecell.core.errors import ConfigError
from gluecell.core.types import RobotProgram, SprayPath
from gluecell.pathplan.deposition import film_thickness, path_samples, spray_metrics
from gluecell.pathplan.geom import matrix_from_quat, resample_polyline
from gluecell.pathplan.kinematics import fk
from gluecell.pathplan.pipeline import PathplanConfig, film_limit, plan_pair
from gluecell.pathplan.synthetic import make_synthetic_pair

#: Predicted coverage of the whole bond side (the strip the bite-line margin keeps dry is ~2-3 mm wide).
MIN_COVERAGE = 0.93
#: Trace glue beyond the true bite line, judged on a fresh dense sample of the true surface (mm).
MAX_ABOVE_TRUE_MM = 0.5
#: Nozzle pose from FK of the program vs the path (m).
FK_TOL = 1e-6


@pytest.fixture(scope="module")
def pair():
    return make_synthetic_pair()


@pytest.fixture(scope="module")
def planned(pair):
    u, un = pair.sample("upper", 40000, seed=11, noise_mm=0.2)
    s, sn = pair.sample("sole", 30000, seed=12, noise_mm=0.2)
    return plan_pair(u, s, pair.bite_line, PathplanConfig(), upper_normals=un, sole_normals=sn)


@pytest.mark.slow
def test_pair_plan_is_safe_covered_and_executable(planned):
    for part in ("upper", "sole"):
        path, prog, m = planned.paths[part], planned.programs[part], planned.metrics[part]
        assert isinstance(path, SprayPath) and isinstance(prog, RobotProgram)
        assert m["above_visible_mm"] <= film_limit(PathplanConfig())[1], f"{part}: predicted glue beyond the line"
        assert m["coverage"] >= MIN_COVERAGE, f"{part}: coverage {m['coverage']:.3f}"
        assert np.array_equal(prog.t, path.t) and len(prog.q) == len(path)
        # the program's joints put the nozzle where the path says
        from gluecell.pathplan.kinematics import RobotConfig

        T = fk(prog.q) @ RobotConfig().T_flange_tool
        assert np.abs(T[:, :3, 3] - path.xyz).max() < FK_TOL
        assert np.allclose(T[:, :3, 2], matrix_from_quat(path.quat_xyzw)[:, :, 2], atol=1e-6)
        # gun events match the spray flags
        on_times = [t for t, on in prog.gun_events if on]
        assert len(on_times) == int(np.sum(np.diff(path.spray.astype(int)) == 1) + int(path.spray[0]))


@pytest.mark.slow
def test_upper_path_stays_below_the_true_bite_line(planned, pair):
    """Judge the plan on the true surface (fresh samples, no noise) against the true bite line."""
    path = planned.paths["upper"]
    pts, nrm = pair.sample("upper", 60000, seed=99)
    near = pts[:, 2] > 0.13
    pts, nrm = pts[near], nrm[near]
    film = film_thickness(path_samples(path), pts, nrm)
    fine = resample_polyline(pair.bite_line, 2e-4)
    from scipy.spatial import cKDTree

    d, i = cKDTree(fine).query(pts)
    below = pts[:, 2] < fine[i, 2]  # on the side, "above the bite line" in shoe terms is below it here
    signed = np.where(below, -d, d)
    m = spray_metrics(film, signed, signed >= 0, 1.0)
    assert m["above_visible_mm"] <= MAX_ABOVE_TRUE_MM
    assert m["coverage"] >= MIN_COVERAGE


def test_config_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(PathplanConfig, {"tuning": {"target_coverag": 0.99}}, path="pathplan")
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(PathplanConfig, {"robot": {"modle": "ur10"}}, path="pathplan")
    cfg = from_dict(PathplanConfig, {"robot": {"model": "ur10"}, "upper": {"planners": [{"name": "raster_fill"}]}})
    assert cfg.robot.model == "ur10" and cfg.upper.planners == ({"name": "raster_fill"},)


def test_unknown_stage_in_config_is_refused_before_planning(pair):
    from gluecell.pathplan.pipeline import plan_part

    cfg = from_dict(PathplanConfig, {"upper": {"modifiers": [{"name": "smooth", "windw": 3}]}})
    u, un = pair.sample("upper", 20000, seed=1)
    with pytest.raises(ConfigError, match="windw"):
        plan_part("upper", u, cfg, bite_line=pair.bite_line, normals=un)
