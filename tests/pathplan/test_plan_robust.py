"""Issue 15 item 2: planning on clouds from another scanner (flying points, no normals)."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan.cloud import drop_outliers
from gluecell.pathplan.region import detect_rim
from gluecell.pathplan.synthetic import make_synthetic_pair


@pytest.fixture(scope="module")
def pair():
    return make_synthetic_pair()


def test_flying_points_are_dropped_and_the_surface_kept(pair):
    pts, nrm = pair.sample("upper", 25000, seed=3, noise_mm=0.1)
    kept, kn = drop_outliers(pts, nrm)
    assert len(pts) - len(kept) <= 0.0005 * len(pts)  # a clean scan keeps (nearly) every point
    rng = np.random.default_rng(1)
    i = rng.choice(len(pts), 75, replace=False)  # 0.3 %, 2.5-5 mm off the surface along the normal
    bad = pts.copy()
    bad[i] += nrm[i] * rng.uniform(2.5e-3, 5e-3, (75, 1)) * rng.choice([-1.0, 1.0], (75, 1))
    kept, kn = drop_outliers(bad, nrm)
    left = {tuple(p) for p in kept}
    survivors = sum(tuple(p) in left for p in bad[i])
    assert survivors <= 4, survivors
    assert len(kept) >= len(pts) - 75 - 0.0005 * len(pts) and kn.shape == kept.shape


def test_a_flying_point_does_not_lift_the_rim(pair):
    pts, _ = pair.sample("sole", 30000, seed=2, noise_mm=0.1)
    rim = detect_rim(pts)
    top = int(np.argmax(pts[:, 2]))
    lifted = np.vstack([pts, pts[top] + np.array([0.0, 0.0, 4e-3])])
    moved = np.abs(detect_rim(lifted) - rim)
    # the point is not picked (it would lift the rim 4 mm there); the centre's tiny shift may move a sector's pick
    assert moved[:, 2].max() < 0.3e-3 and moved.max() < 1e-3


def test_motion_metrics_of_a_known_program():
    """Two joints, 10 waypoints 0.1 s apart, spraying in the middle: steps, share at the limit, peak speed."""
    from gluecell.core.types import RobotProgram
    from gluecell.pathplan.kinematics import JOINT_NAMES, RobotConfig
    from gluecell.pathplan.timing import motion_metrics

    t = np.arange(10) * 0.1
    q = np.zeros((10, 6))
    q[:, 3] = np.deg2rad(np.r_[0, 1, 2, 3, 21, 22, 23, 24, 25, 26])  # 18 deg in 0.1 s = 180 deg/s: at the limit
    spray = np.r_[False, True, True, True, True, True, True, True, True, False]
    prog = RobotProgram(joint_names=JOINT_NAMES, t=t, q=q, qd=np.zeros_like(q), gun_events=((0.1, True), (0.9, False)))
    m = motion_metrics(prog, spray, RobotConfig())
    assert m["joint_step_max_deg"] == pytest.approx(18.0)
    assert m["spray_time_s"] == pytest.approx(0.7)
    assert m["at_limit_share"] == pytest.approx(0.1 / 0.7)
    assert m["joint_speed_peak_fraction"] == pytest.approx(1.0)
