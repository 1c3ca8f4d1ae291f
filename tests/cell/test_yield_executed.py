"""Yield: the executed path handed to the world keeps the arm's motion just after each gun closing.

The world's valve closes 2-6 ms after the command. The simulated robot logged only gun-on samples, so the world
held the nozzle still at the last gun-on pose for that delay and laid a puddle there ("blob" labels at the ring
ends of demo pairs, and glue above the line where an edge ring ends). Now the arm's samples for
``EXEC_PAD_S`` after each closing travel with the gun-on samples, flagged off, and the delayed closing happens on
the real motion.
"""

from __future__ import annotations

import numpy as np

from gluecell.cell.robot.wire import trajectory_msg
from gluecell.cell.sim.executed import gun_on_paths
from gluecell.cell.sim.robot import EXEC_PAD_S, HOME_Q, ActiveGoal, RobotSim, RobotSimConfig, parse_goal
from gluecell.core.types import SprayPath
from gluecell.datasets.world.uv_spray import shift_gun

CFG = RobotSimConfig()
#: The world's largest valve closing delay (s), SprayWorldConfig.off_delay_s.
OFF_DELAY_S = 6e-3
EVENTS = [(0.3013, True), (0.9, False), (1.2007, True), (1.7, False)]


def _run() -> ActiveGoal:
    t = np.linspace(0.0, 2.0, 200)
    q = np.asarray(HOME_Q) + np.outer(np.sin(np.pi * t / 2.0) ** 2 * 0.25, [1.0, 0.4, -0.4, 0.3, 0.0, 0.0])
    traj = parse_goal({"trajectory": trajectory_msg(CFG.joint_names, t, q, np.gradient(q, t, axis=0))}, q[0], CFG, 0.0)
    robot = RobotSim(CFG, seed=1)
    robot.q = q[0].copy()
    goal = ActiveGoal("g", traj, list(EVENTS))
    robot.start(goal)
    done = None
    while done is None:
        done = robot.step(0.037)
    return done


def test_the_arm_is_logged_just_after_each_closing():
    done = _run()
    after = np.concatenate(done.gun_after_tau)
    on = np.concatenate(done.gun_on_tau)
    for t_off in (0.9, 1.7):
        pad = after[(after >= t_off - CFG.tick_s) & (after <= t_off + 2 * EXEC_PAD_S)]
        assert pad.size > 0 and pad.max() - pad.min() >= EXEC_PAD_S - 2 * CFG.tick_s
        assert pad.max() <= on[on < t_off + CFG.tick_s].max() + EXEC_PAD_S + 1e-9
    assert not np.intersect1d(after, on).size  # a sample is either gun-on or after a closing


def test_the_world_closes_the_gun_on_the_moving_arm():
    done = _run()
    with_pad = gun_on_paths(done.gun_on_tau, done.gun_on_q, CFG.tick_s, done.gun_after_tau, done.gun_after_q)
    bare = gun_on_paths(done.gun_on_tau, done.gun_on_q, CFG.tick_s)
    assert len(with_pad) == len(bare) == 2
    for p, b in zip(with_pad, bare):
        k = int(np.flatnonzero(p["spray"])[-1])  # the last sprayed segment: the closing follows it
        assert np.all(~p["spray"][k + 1 :]) and p["t"][-1] - p["t"][k + 1] >= EXEC_PAD_S - 2 * CFG.tick_s
        assert np.linalg.norm(p["xyz"][-1] - p["xyz"][k + 1]) > 1e-4  # the arm moved on after the command
        for path, holds in ((p, False), (b, True)):
            sp = SprayPath(part="upper", t=path["t"], xyz=path["xyz"], quat_xyzw=path["quat_xyzw"], spray=path["spray"])
            shifted = shift_gun(sp, 0.0, OFF_DELAY_S)[0]
            # without the pad the world extends the path and holds the nozzle still while the valve closes
            assert (shifted.t[-1] > path["t"][-1] + 1e-9) == holds
