"""The simulated arm's controller: goal checks, interpolation, gun switching on the trajectory clock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gluecell.cell.robot.wire import duration, trajectory_digest, trajectory_msg
from gluecell.cell.sim.executed import gun_on_paths, nozzle_poses, station_of, switching_errors_mm
from gluecell.cell.sim.faults import load_faults, parse_fault
from gluecell.cell.sim.robot import HOME_Q, ActiveGoal, GoalRefusal, RobotSim, RobotSimConfig, parse_goal
from gluecell.core.errors import ConfigError

CFG = RobotSimConfig()
NAMES = CFG.joint_names
#: at 460 mm/s one 2 ms tick is 0.92 mm; with 1 ms lag and 0.5 ms valve jitter the bound is ~1.6 mm.
SWITCH_BOUND_MM = 1.8


def _sweep(n: int = 200, dur: float = 2.0, amp: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.linspace(0.0, dur, n)
    s = np.sin(np.pi * t / dur) ** 2
    q = np.asarray(HOME_Q) + np.outer(s * amp, [1.0, 0.4, -0.4, 0.3, 0.0, 0.0])
    qd = np.gradient(q, t, axis=0)
    return t, q, qd


def test_hermite_interpolation_passes_through_the_points():
    t, q, qd = _sweep()
    traj = parse_goal({"trajectory": trajectory_msg(NAMES, t, q, qd)}, q[0], CFG, 0.0)
    assert np.allclose(traj.at(t), q, atol=1e-9)
    mid = 0.5 * (t[:-1] + t[1:])
    assert np.max(np.abs(traj.at(mid) - 0.5 * (q[:-1] + q[1:]))) < 1e-4


def test_goal_in_other_joint_order_is_reordered_and_digest_survives_json():
    import json

    t, q, qd = _sweep(20)
    order = [5, 4, 3, 2, 1, 0]
    msg = trajectory_msg(tuple(NAMES[i] for i in order), t, q[:, order], qd[:, order])
    msg = json.loads(json.dumps(msg))
    traj = parse_goal({"trajectory": msg}, q[0], CFG, 0.0)
    assert np.allclose(traj.q, q)
    assert traj.digest == trajectory_digest(trajectory_msg(tuple(NAMES[i] for i in order), t, q[:, order], None))


def test_first_point_later_than_zero_is_reached_from_the_current_position():
    q_now = np.asarray(HOME_Q)
    target = q_now + 0.2
    traj = parse_goal({"trajectory": trajectory_msg(NAMES, np.array([1.0]), target[None], None)}, q_now, CFG, 0.0)
    assert traj.t.tolist() == [0.0, 1.0] and np.allclose(traj.q[0], q_now)
    with pytest.raises(GoalRefusal) as info:
        parse_goal({"trajectory": trajectory_msg(NAMES, np.array([0.0, 1.0]), np.vstack([target, target]), None)},
                   q_now, CFG, 0.0)  # fmt: skip
    assert info.value.code == -1 and "current position" in info.value.reason


def test_time_must_increase_and_stamps_must_be_fresh():
    t, q, _ = _sweep(10)
    msg = trajectory_msg(NAMES, t, q, None)
    msg["points"][3]["time_from_start"] = msg["points"][2]["time_from_start"]
    with pytest.raises(GoalRefusal, match="strictly increasing"):
        parse_goal({"trajectory": msg}, q[0], CFG, 0.0)
    msg = trajectory_msg(NAMES, t, q, None)
    msg["header"]["stamp"] = {"sec": 100, "nanosec": 0}
    with pytest.raises(GoalRefusal) as info:
        parse_goal({"trajectory": msg}, q[0], CFG, now_s=200.0)
    assert info.value.code == -3
    assert parse_goal({"trajectory": msg}, q[0], CFG, now_s=100.5).duration == pytest.approx(2.0)


def test_gun_switches_on_the_first_tick_at_or_after_each_event_and_errors_are_small():
    t, q, qd = _sweep()
    traj = parse_goal({"trajectory": trajectory_msg(NAMES, t, q, qd)}, q[0], CFG, 0.0)
    robot = RobotSim(CFG, seed=1)
    robot.q = q[0].copy()
    events = [(0.3013, True), (0.9, False), (1.2007, True), (1.7, False)]
    goal = ActiveGoal("g", traj, events)
    robot.start(goal)
    done = None
    while done is None:
        done = robot.step(0.037)  # uneven wall steps: switching must not depend on them
    assert done.status == 4 and len(done.switches) == 4
    for (planned, actual, on), (t_ev, s_ev) in zip(done.switches, events):
        assert planned == t_ev and on == s_ev
        assert 0.0 <= actual - planned <= CFG.tick_s + CFG.valve_jitter_s + 1e-9
    errs = switching_errors_mm(traj, done.switches, CFG.tracking_lag_s)
    speed = np.linalg.norm(np.diff(nozzle_poses(traj.at(np.linspace(0, 2, 2001)))[:, :3, 3], axis=0), axis=1) / 1e-3
    bound = float(speed.max()) * (CFG.tick_s + CFG.valve_jitter_s + CFG.tracking_lag_s) * 1e3
    assert len(errs) == 4 and max(errs) <= bound + 0.05 and max(errs) > 0
    paths = gun_on_paths(done.gun_on_tau, done.gun_on_q, CFG.tick_s)
    assert len(paths) == 2
    assert paths[0]["t"][-1] == pytest.approx(0.9 - 0.3013, abs=2 * CFG.tick_s)


def test_estop_aborts_the_goal_and_closes_the_gun():
    t, q, qd = _sweep()
    traj = parse_goal({"trajectory": trajectory_msg(NAMES, t, q, qd)}, q[0], CFG, 0.0)
    robot = RobotSim(CFG)
    robot.q = q[0].copy()
    goal = ActiveGoal("g", traj, [(0.1, True), (1.9, False)])
    robot.start(goal)
    robot.step(0.5)
    assert robot.gun_on
    stopped = robot.stop(1, "e-stop", estop=True)
    assert stopped is goal and goal.status == 6 and goal.error_code == -4 and not robot.gun_on
    assert not robot.motion_possible and robot.goal is None
    assert goal.switches[-1][2] is False and math.isnan(goal.switches[-1][0])  # a safety switch-off, not planned


def test_station_of_a_nozzle_path():
    assert station_of(np.array([[0.55, -0.2, 0.2], [0.6, -0.18, 0.2]])) == "upper"
    assert station_of(np.array([[0.55, 0.2, 0.05]])) == "sole"
    assert duration(1.25) == {"sec": 1, "nanosec": 250_000_000}


def test_fault_specs_are_strict(tmp_path):
    assert parse_fault({"kind": "estop", "item": 2, "during": "upper"}).item == 2
    assert parse_fault({"kind": "clogged_nozzle"}).value == pytest.approx(0.2)
    for bad in ({"kind": "meteor"}, {"kind": "estop", "during": "lunch"}, {"kind": "estop", "colour": "red"},
                {"kind": "estop", "at_fraction": 2.0}, {"kind": "estop", "item": -1}):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_fault(bad)
    f = tmp_path / "faults.toml"
    f.write_text('[[fault]]\nkind = "camera_timeout"\nitem = "00001"\n[[fault]]\nkind = "robot_error"\nitem = 0\n'
                 'during = "sole"\nat_fraction = 0.25\n')  # fmt: skip
    specs = load_faults(f)
    assert [s.kind for s in specs] == ["camera_timeout", "robot_error"] and specs[1].at_fraction == 0.25


@pytest.mark.parametrize(
    ("key", "tol", "status", "code"),
    [("goal_tolerance", 1e-9, 6, -5), ("path_tolerance", 1e-6, 6, -4), ("path_tolerance", 0.05, 4, 0),
     ("goal_tolerance", -1.0, 4, 0)],
)
def test_path_and_goal_tolerances(key, tol, status, code):
    t, q, qd = _sweep()
    args = {"trajectory": trajectory_msg(NAMES, t, q, qd), key: [{"name": NAMES[0], "position": tol}]}
    robot = RobotSim(CFG, seed=2)
    robot.q = q[0].copy()
    goal = ActiveGoal("g", parse_goal(args, q[0], CFG, 0.0))
    robot.start(goal)
    done = None
    while done is None:
        done = robot.step(0.05)
    assert (done.status, done.error_code) == (status, code)
    if code == -4:
        assert 0.0 < done.tau < 0.2  # stopped where the error first exceeded it, not at the end
    with pytest.raises(GoalRefusal):
        parse_goal({**args, key: [{"name": "elbow", "position": 0.1}]}, q[0], CFG, 0.0)
