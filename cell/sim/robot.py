"""The simulated 6-axis robot: a joint trajectory controller with a gun output on the trajectory clock.

It behaves like the UR driver's scaled joint trajectory controller as far as the controller can see: a goal
(``trajectory_msgs/JointTrajectory``) is checked (joint names, finite values, strictly increasing times,
position and speed limits, the start against the current position, a stale header stamp) and refused with
the standard ``FollowJointTrajectory`` error codes; an accepted one is executed on a 500 Hz control tick
(the UR's 2 ms cycle) in real or accelerated time, interpolated as a cubic Hermite spline through the
points (linear where no velocities are given). The arm follows the command with a small servo lag and
repeatability noise (its tracking error, reported in feedback). A gun schedule armed for the goal switches
the output on the first tick at or after each event's trajectory time; every switch is logged with where
the plan wanted it and where the nozzle really was, which is the switching error the bench reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gluecell.cell.robot.wire import seconds, trajectory_digest

__all__ = ["GoalRefusal", "RobotSimConfig", "Trajectory", "parse_goal", "ActiveGoal", "RobotSim", "HOME_Q"]

#: A reachable rest pose above the stations (radians): arm bent, tool pointing down.
HOME_Q = (0.0, -1.9, 1.9, -1.57, -1.57, 0.0)
#: The arm's motion is logged this long (s) after each gun closing: the world's valve closes 2-6 ms after the
#: command (``SprayWorldConfig.off_delay_s``) while the arm moves on. Without it the world held the nozzle still
#: at the last gun-on pose for that delay and laid a puddle there (demo pairs labelled "blob" at ring ends).
EXEC_PAD_S = 0.03


class GoalRefusal(Exception):
    """A goal the controller refuses: ``code`` is the FollowJointTrajectory error code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class RobotSimConfig:
    """The simulated arm and controller.

    Attributes:
        joint_names: controller order.
        tick_s: control period (UR e-Series: 2 ms).
        joint_limits_rad: (lower, upper) per joint (UR10e: +-360 deg).
        max_speed_rad_s: UR10e datasheet (120, 120, 180, 180, 180, 180 deg/s); a goal faster than
            ``speed_tolerance`` x these is refused.
        start_tolerance_rad: a first point at time 0 must be this close to the current position.
        tracking_lag_s: servo lag of the real arm behind the command (chosen: 1 ms with the driver's
            feed-forward; gives ~0.3-0.5 mm of lag along the path at spray speed, the order of a measured
            industrial arm's path error, FACTS [Robots]).
        noise_rad: 1-sigma joint noise (chosen: ~0.02 mm at the nozzle, UR10e repeatability +-0.05 mm).
        valve_jitter_s: the gun's valve opens/closes uniformly 0..this after the tick that switched it
            (chosen: spread of a solenoid's response once its mean delay is compensated).
        max_points: larger goals are refused (INVALID_GOAL).
        max_stamp_age_s: a non-zero header stamp older than this is OLD_HEADER_TIMESTAMP.
    """

    joint_names: tuple[str, ...] = (
        "shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint",
    )  # fmt: skip
    tick_s: float = 0.002
    joint_limits_rad: tuple[float, float] = (-2 * math.pi, 2 * math.pi)
    max_speed_rad_s: tuple[float, ...] = (2.0944, 2.0944, 3.1416, 3.1416, 3.1416, 3.1416)
    speed_tolerance: float = 1.05
    start_tolerance_rad: float = 0.01
    tracking_lag_s: float = 0.001
    noise_rad: float = 2e-6
    valve_jitter_s: float = 0.0005
    max_points: int = 100_000
    max_stamp_age_s: float = 1.0


@dataclass
class Trajectory:
    """A checked goal trajectory in controller joint order: t (n,) s from 0, q (n, 6), qd (n, 6) or None."""

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray | None
    digest: str
    path_tol: np.ndarray | None = None  # (6,) rad, inf = not checked (the goal's path_tolerance)
    goal_tol: np.ndarray | None = None  # (6,) rad (the goal's goal_tolerance)

    @property
    def duration(self) -> float:
        """Seconds to the last point."""
        return float(self.t[-1])

    def at(self, tau: np.ndarray) -> np.ndarray:
        """(m, 6) commanded positions at trajectory times ``tau`` (m,), clamped to the ends."""
        tau = np.clip(np.asarray(tau, dtype=np.float64), 0.0, self.duration)
        k = np.clip(np.searchsorted(self.t, tau, side="right") - 1, 0, len(self.t) - 2)
        t0, t1 = self.t[k], self.t[k + 1]
        h = (t1 - t0)[:, None]
        s = ((tau - t0) / (t1 - t0))[:, None]
        q0, q1 = self.q[k], self.q[k + 1]
        if self.qd is None:
            return q0 + s * (q1 - q0)
        v0, v1 = self.qd[k], self.qd[k + 1]
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        return h00 * q0 + h10 * h * v0 + h01 * q1 + h11 * h * v1


def _array(points: list[Any], key: str, n_joints: int, order: list[int]) -> np.ndarray | None:
    rows = [p.get(key) for p in points]
    if all(r is None or r == [] for r in rows):
        return None
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) != n_joints:
            raise GoalRefusal(-1, f"point {i}: '{key}' needs {n_joints} values")
    flat = [x if type(x) in (int, float) else math.nan for r in rows for x in r]  # no bools, strings, nulls
    out = np.asarray(flat, dtype=np.float64).reshape(len(rows), n_joints)[:, order]
    if not np.all(np.isfinite(out)):
        bad = int(np.argmax(~np.all(np.isfinite(out), axis=1)))
        raise GoalRefusal(-1, f"point {bad}: '{key}' has NaN, Inf or a non-number")
    return out


def parse_goal(args: dict[str, Any], q_now: np.ndarray, cfg: RobotSimConfig, now_s: float) -> Trajectory:
    """Check a ``FollowJointTrajectory`` goal and return its trajectory (starting at the current position).

    Raises:
        GoalRefusal: with INVALID_GOAL (-1), INVALID_JOINTS (-2) or OLD_HEADER_TIMESTAMP (-3).
    """
    traj = args.get("trajectory")
    if not isinstance(traj, dict):
        raise GoalRefusal(-1, "goal has no 'trajectory'")
    names, points = traj.get("joint_names"), traj.get("points")
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(cfg.joint_names) or len(names) != len(
            cfg.joint_names):  # fmt: skip
        raise GoalRefusal(-2, f"joint_names must be the robot's {list(cfg.joint_names)}, got {str(names)[:200]}")
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise GoalRefusal(-1, "trajectory has no points")
    if len(points) > cfg.max_points:
        raise GoalRefusal(-1, f"trajectory has {len(points)} points (at most {cfg.max_points})")
    stamp = seconds((traj.get("header") or {}).get("stamp", {"sec": 0, "nanosec": 0}))
    if math.isnan(stamp):
        raise GoalRefusal(-1, "header.stamp is malformed")
    if stamp > 0 and stamp < now_s - cfg.max_stamp_age_s:
        raise GoalRefusal(-3, f"header.stamp is {now_s - stamp:.1f} s old")
    order = [names.index(n) for n in cfg.joint_names]
    q = _array(points, "positions", len(names), order)
    if q is None:
        raise GoalRefusal(-1, "points have no positions")
    qd = _array(points, "velocities", len(names), order)
    t = np.array([seconds(p.get("time_from_start")) for p in points])
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) <= 0):
        raise GoalRefusal(-1, "time_from_start must be valid, >= 0 and strictly increasing")
    lo, hi = cfg.joint_limits_rad
    if np.any(q < lo) or np.any(q > hi):
        j = int(np.argmax(np.any((q < lo) | (q > hi), axis=0)))
        lim = f"{math.degrees(lo):.0f}..{math.degrees(hi):.0f} deg"
        raise GoalRefusal(-1, f"{cfg.joint_names[j]} beyond its limits ({lim})")
    if t[0] <= 0:
        if np.max(np.abs(q[0] - q_now)) > cfg.start_tolerance_rad:
            raise GoalRefusal(-1, "the first point is at time 0 but not at the current position")
    else:  # the controller interpolates from where the arm is
        t, q = np.r_[0.0, t], np.vstack([q_now, q])
        qd = None if qd is None else np.vstack([np.zeros(len(q_now)), qd])
    speed = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
    limit = np.asarray(cfg.max_speed_rad_s) * cfg.speed_tolerance
    if np.any(speed > limit):
        k, j = np.unravel_index(int(np.argmax(speed / limit)), speed.shape)
        raise GoalRefusal(-1, f"{cfg.joint_names[j]} would move at {speed[k, j]:.2f} rad/s between points {k} and"
                          f" {k + 1} (limit {cfg.max_speed_rad_s[j]:.2f})")  # fmt: skip
    if len(t) < 2:
        t, q = np.r_[0.0, cfg.tick_s], np.vstack([q, q])
        qd = None
    return Trajectory(t, q, qd, trajectory_digest(traj), _tolerances(args.get("path_tolerance"), cfg),
                      _tolerances(args.get("goal_tolerance"), cfg))  # fmt: skip


def _tolerances(items: Any, cfg: RobotSimConfig) -> np.ndarray:
    """Per-joint position tolerances of ``control_msgs/JointTolerance[]`` (0 or -1: not checked)."""
    tol = np.full(len(cfg.joint_names), np.inf)
    if items in (None, []):
        return tol
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise GoalRefusal(-1, "tolerances must be a list of JointTolerance objects")
    for i in items:
        name, pos = i.get("name"), i.get("position", 0.0)
        if name not in cfg.joint_names or not isinstance(pos, int | float) or not math.isfinite(pos):
            raise GoalRefusal(-1, f"bad tolerance {str(i)[:80]}")
        if pos > 0:
            tol[cfg.joint_names.index(name)] = float(pos)
    return tol


@dataclass
class ActiveGoal:
    """A goal being executed, with its gun schedule and what really happened."""

    goal_id: str
    traj: Trajectory
    events: list[tuple[float, bool]] = field(default_factory=list)
    pin: int = 0
    item_id: str | None = None
    tau: float = 0.0
    next_event: int = 0
    status: int = 2  # EXECUTING
    error_code: int = 0
    error_string: str = ""
    switches: list[tuple[float, float, bool]] = field(default_factory=list)  # (planned t, actual t, on)
    gun_on_tau: list[np.ndarray] = field(default_factory=list)
    gun_on_q: list[np.ndarray] = field(default_factory=list)
    #: The arm's samples in the :data:`EXEC_PAD_S` after each closing (gun commanded off, still moving): the
    #: world's valve closes a few ms late, on this motion, not with the nozzle frozen at its last gun-on pose.
    gun_after_tau: list[np.ndarray] = field(default_factory=list)
    gun_after_q: list[np.ndarray] = field(default_factory=list)
    last_on_tau: float = float("-inf")
    canceled: bool = False
    manual: list[tuple[float, bool]] = field(default_factory=list)  # set_io switches during the goal (tau, on)

    def report(self) -> dict[str, Any]:
        """The goal-status service's answer."""
        return {"goal_id": self.goal_id, "status": self.status, "progress_s": self.tau,
                "duration_s": self.traj.duration, "gun_switches": len(self.switches),
                "error_code": self.error_code}  # fmt: skip


class RobotSim:
    """The arm's state and its controller tick. Single-threaded: driven by the cell's event loop.

    Args:
        cfg: limits and the tracking model.
        seed: noise of the arm and the valve.
    """

    def __init__(self, cfg: RobotSimConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or RobotSimConfig()
        self.rng = np.random.default_rng(seed)
        self.q = np.asarray(HOME_Q, dtype=np.float64)
        self.qd = np.zeros(6)
        self.gun_on = False
        self.gun_pin = 0
        self.e_stopped = False
        self.in_error = False
        self.error_code = 0
        self.goal: ActiveGoal | None = None
        self.ticks = 0
        self._carry = 0.0

    @property
    def motion_possible(self) -> bool:
        """Drives on, no e-stop, no protective stop."""
        return not self.e_stopped and not self.in_error

    def start(self, goal: ActiveGoal) -> ActiveGoal | None:
        """Start ``goal``; returns the goal it preempted (aborted), if any."""
        old = self.goal
        if old is not None:
            self._end(old, 6, -4, "preempted by a new goal")
        self.goal = goal
        self._carry = 0.0
        return old

    def cancel(self) -> None:
        """Stop the running goal where it is (status CANCELED)."""
        if self.goal is not None:
            self.goal.canceled = True
            self._end(self.goal, 5, 0, "canceled")

    def stop(self, code: int, reason: str, *, estop: bool = False) -> ActiveGoal | None:
        """A protective stop (robot error) or an e-stop: motion stops, the gun closes, the goal aborts."""
        if estop:
            self.e_stopped = True
        else:
            self.in_error = True
            self.error_code = code
        goal = self.goal
        if goal is not None:
            self._end(goal, 6, -4, f"PATH_TOLERANCE_VIOLATED: {reason}")
        return goal

    def _end(self, goal: ActiveGoal, status: int, code: int, reason: str) -> None:
        goal.status, goal.error_code, goal.error_string = status, code, reason
        self.qd = np.zeros(6)
        if self.gun_on:
            self.gun_on = False
            goal.switches.append((math.nan, goal.tau, False))
        if self.goal is goal:
            self.goal = None

    def step(self, dt: float) -> ActiveGoal | None:
        """Advance ``dt`` seconds of controller time; returns the goal that finished in this step, if any."""
        goal = self.goal
        if goal is None or dt <= 0:
            return None
        cfg = self.cfg
        self._carry += dt  # whole ticks only; the remainder carries over, so the clock does not drift
        n = int(self._carry / cfg.tick_s + 1e-9)
        if n == 0:
            return None
        self._carry -= n * cfg.tick_s
        taus = goal.tau + cfg.tick_s * np.arange(1, n + 1)
        taus = taus[taus <= goal.traj.duration + cfg.tick_s]
        if len(taus) == 0:
            taus = np.array([goal.traj.duration])
        taus = np.minimum(taus, goal.traj.duration)
        q_act = self._actual(goal.traj, taus)
        if goal.traj.path_tol is not None:
            err = np.abs(goal.traj.at(taus) - q_act) > goal.traj.path_tol
            if np.any(err):  # stop at the first violating tick
                k = int(np.argmax(np.any(err, axis=1)))
                taus, q_act = taus[: k + 1], q_act[: k + 1]
                self._switch_gun(goal, taus, q_act)
                self.q, goal.tau = q_act[-1], float(taus[-1])
                j = cfg.joint_names[int(np.argmax(err[k]))]
                self._end(goal, 6, -4, f"PATH_TOLERANCE_VIOLATED: {j} off its path beyond the path tolerance")
                return goal
        self._switch_gun(goal, taus, q_act)
        self.qd = (q_act[-1] - self.q) / max(cfg.tick_s * len(taus), 1e-9)
        self.q = q_act[-1]
        goal.tau = float(taus[-1])
        self.ticks += len(taus)
        if goal.tau >= goal.traj.duration - 1e-12:
            tol = goal.traj.goal_tol
            if tol is not None and np.any(np.abs(self.q - goal.traj.q[-1]) > tol):
                self._end(goal, 6, -5, "GOAL_TOLERANCE_VIOLATED: the arm ended beyond the goal tolerance")
            else:
                self._end(goal, 4, 0, "")
            return goal
        return None

    def _actual(self, traj: Trajectory, taus: np.ndarray) -> np.ndarray:
        q = traj.at(taus - self.cfg.tracking_lag_s)
        return q + self.rng.normal(0.0, self.cfg.noise_rad, q.shape)

    def _switch_gun(self, goal: ActiveGoal, taus: np.ndarray, q_act: np.ndarray) -> None:
        """Switch at the first tick at or after each event; log gun-on samples for the world's spray."""
        on = np.empty(len(taus), dtype=bool)
        state, start = self.gun_on, 0
        while goal.next_event < len(goal.events):
            t_ev, s_ev = goal.events[goal.next_event]
            k = int(np.searchsorted(taus, t_ev - 1e-9))
            if k >= len(taus):
                break
            on[start:k] = state
            if s_ev != state:
                jitter = float(self.rng.uniform(0.0, self.cfg.valve_jitter_s))
                goal.switches.append((t_ev, float(taus[k]) + jitter, s_ev))
            state, start = s_ev, k
            goal.next_event += 1
        on[start:] = state
        self.gun_on = state
        last_on = np.maximum(np.maximum.accumulate(np.where(on, taus, -np.inf)), goal.last_on_tau)
        after = ~on & (taus - last_on <= EXEC_PAD_S)
        if np.any(on):
            goal.gun_on_tau.append(taus[on])
            goal.gun_on_q.append(q_act[on])
            goal.last_on_tau = float(taus[on][-1])
        if np.any(after):
            goal.gun_after_tau.append(taus[after])
            goal.gun_after_q.append(q_act[after])
