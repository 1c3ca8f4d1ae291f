"""UR10e kinematics: FK/IK agreement, path IK without flips, limits and reachability, time parametrisation."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan.errors import UnreachableError
from gluecell.pathplan.geom import frames_from_axis, quat_from_matrix
from gluecell.pathplan.kinematics import DH, RobotConfig, fk, ik, solve_path
from gluecell.pathplan.timing import retime, robot_program

#: FK of every IK solution must reproduce the pose to this (m / unitless rotation entries).
POSE_TOL = 1e-9
#: Limits are met up to this relative slack.
LIMIT_SLACK = 1.001


@pytest.mark.parametrize("model", sorted(DH))
def test_ik_inverts_fk(model):
    rng = np.random.default_rng(7)
    q = rng.uniform(-np.pi, np.pi, (300, 6))
    T = fk(q, model)
    sol = ik(T, model)
    ok = ~np.isnan(sol).any(axis=-1)
    assert ok.sum(axis=1).min() >= 2  # every reachable pose has several branches
    err = np.abs(fk(np.nan_to_num(sol), model) - T[:, None])[ok].max()
    assert err < POSE_TOL
    d = np.abs((sol - q[:, None] + np.pi) % (2 * np.pi) - np.pi).max(axis=-1)
    assert np.all(np.nanmin(d, axis=1) < 1e-6), "the original configuration is among the solutions"


def test_ur10e_reach_matches_datasheet():
    """UR10e: 1300 mm reach (datasheet); a stretched arm's flange is about that far from the shoulder axis."""
    T = fk(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    assert 1.18 < np.hypot(T[0, 3], T[1, 3]) < 1.31


def _ring(centre, radius, z, n=240, down_tilt_deg=0.0):
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pos = np.column_stack([centre[0] + radius * np.cos(th), centre[1] + radius * np.sin(th), np.full(n, z)])
    a = np.deg2rad(down_tilt_deg)
    d = np.column_stack([-np.cos(th) * np.cos(a), -np.sin(th) * np.cos(a), np.full(n, -np.sin(a))])
    R = frames_from_axis(d, np.tile([0.0, 0.0, 1.0], (n, 1)))
    return pos, quat_from_matrix(R)


def test_ring_round_a_part_is_solved_without_flips():
    """A nozzle circling a part at the upper station, spraying inwards: one branch, continuous joints."""
    cfg = RobotConfig()
    xyz, quat = _ring((0.55, -0.20), 0.09, 0.17)
    sol = solve_path(xyz, quat, cfg)
    assert sol.q.shape == (len(xyz), 6)
    assert np.degrees(np.abs(np.diff(sol.q, axis=0))).max() < cfg.max_jump_deg
    lim = np.deg2rad(np.asarray(cfg.joint_limits_deg))
    assert np.all(sol.q >= lim[:, 0]) and np.all(sol.q <= lim[:, 1])
    assert sol.min_sin_q5 >= cfg.min_sin_q5
    # the rolled nozzle keeps its spray axis and position
    T = fk(sol.q) @ cfg.T_flange_tool
    assert np.abs(T[:, :3, 3] - xyz).max() < 1e-6
    from gluecell.pathplan.geom import matrix_from_quat

    assert np.allclose(T[:, :3, 2], matrix_from_quat(quat)[:, :, 2], atol=1e-6)


def test_unreachable_placement_is_refused():
    cfg = RobotConfig(base_xyz=(-1.5, 0.0, 0.0))  # the robot stands 1.5 m further away
    xyz, quat = _ring((0.55, -0.20), 0.09, 0.17, n=60)
    with pytest.raises(UnreachableError, match="waypoint 0"):
        solve_path(xyz, quat, cfg)


def test_time_parametrisation_respects_limits():
    cfg = RobotConfig()
    xyz, quat = _ring((0.55, -0.20), 0.09, 0.17)
    sol = solve_path(xyz, quat, cfg)
    seg = np.linalg.norm(np.diff(xyz, axis=0), axis=1)
    t_path = np.r_[0.0, np.cumsum(seg / 0.25)]  # 250 mm/s process speed
    spray = np.ones(len(xyz), bool)
    spray[-1] = False
    tm = retime(t_path, sol.q, spray, cfg)
    assert np.all(tm.dt >= np.diff(t_path) - 1e-12), "retiming only slows down"
    v = np.abs(np.diff(sol.q, axis=0)) / tm.dt[:, None]
    assert np.all(v <= np.deg2rad(cfg.max_speed_deg_s) * LIMIT_SLACK)
    prog = robot_program(tm, sol.q, spray)
    assert prog.gun_events == ((0.0, True), (pytest.approx(prog.t[-1]), False))
    assert prog.duration >= t_path[-1] and 0.0 <= tm.process_speed_fraction <= 1.0
