"""Time parametrisation: the process speed of a spray path under joint speed and acceleration limits.

The path's own times (from the surface spray speed) are the fastest allowed; segments are stretched
where a joint would exceed its speed limit, then pairs of segments are stretched until every joint's
acceleration at every waypoint (from and to rest at the ends) is within its limit. A small,
dependency-free relative of TOPP along a fixed waypoint sequence: stretching only ever slows the
nozzle, which adds film and never removes coverage; the caller re-checks the bite-line margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gluecell.core.types import RobotProgram

from .errors import KinematicsError
from .kinematics import JOINT_NAMES, RobotConfig

__all__ = ["Timing", "retime", "robot_program", "motion_metrics", "program_report", "time_budget"]


@dataclass(frozen=True)
class Timing:
    """Waypoint times (n,) s from 0, segment durations (n-1,), and the fraction of spraying time at process speed."""

    t: np.ndarray
    dt: np.ndarray
    process_speed_fraction: float


def retime(
    t_path: np.ndarray, q: np.ndarray, spray: np.ndarray, cfg: RobotConfig, *, iterations: int = 400,
    window: int = 9,
) -> Timing:  # fmt: skip
    """Stretch the path's times so that joint speeds and accelerations stay within ``cfg``'s limits.

    Args:
        t_path: (n,) s, the process-speed timing. q: (n, 6) rad. spray: (n,) bool.
        window: segments over which velocities are averaged before differencing (controller blending;
            9 segments of 2 mm are 18 mm of path, ~60 ms at the spray speed).
    Raises:
        KinematicsError: the acceleration limits cannot be met (does not converge).
    """
    vmax = np.deg2rad(np.asarray(cfg.max_speed_deg_s, dtype=float))
    amax = np.deg2rad(np.asarray(cfg.max_accel_deg_s2, dtype=float))
    dq = np.diff(q, axis=0)
    dt0 = np.maximum(np.diff(t_path), 1e-3)
    dt = np.maximum(dt0, (np.abs(dq) / vmax).max(axis=1))
    w = max(int(window), 1)
    kern = np.ones(w)
    for _ in range(iterations):
        # velocities averaged over ``window`` segments: the controller blends through the dense waypoints,
        # so scan noise (tiny, fast joint wiggles) is not read as acceleration
        vel = dq / dt[:, None]
        num = np.stack([np.convolve(vel[:, j] * dt, kern, "same") for j in range(q.shape[1])], axis=1)
        den = np.convolve(dt, kern, "same")[:, None]
        v = np.vstack([np.zeros((1, q.shape[1])), num / den, np.zeros((1, q.shape[1]))])
        span = 0.5 * (np.r_[dt[:1], dt] + np.r_[dt, dt[-1:]]) * w
        span[[0, -1]] = 0.5 * np.array([dt[0], dt[-1]]) * w
        r = (np.abs(np.diff(v, axis=0)) / span[:, None] / amax).max(axis=1)  # per waypoint, (n,)
        if r.max() <= 1.0 + 1e-6:
            break
        f = np.sqrt(np.clip(r, 1.0, 4.0)) * np.where(r > 1.0, 1.0 + 1e-3, 1.0)
        grow = np.maximum(f[:-1], f[1:])  # a segment grows with the worse of its two ends
        dt = dt * grow
    else:
        raise KinematicsError(f"time parametrisation did not meet the acceleration limits ({r.max():.2f} x limit)")
    held = spray[:-1]
    at_speed = np.isclose(dt, dt0, rtol=1e-3) & held
    frac = float(dt[at_speed].sum() / dt[held].sum()) if np.any(held) else 1.0
    return Timing(np.r_[0.0, np.cumsum(dt)], dt, frac)


def robot_program(timing: Timing, q: np.ndarray, spray: np.ndarray) -> RobotProgram:
    """The joint trajectory with velocities (central differences) and gun on/off events at waypoint times."""
    t = timing.t
    v_seg = np.diff(q, axis=0) / timing.dt[:, None]
    qd = np.vstack([np.zeros((1, q.shape[1])), 0.5 * (v_seg[:-1] + v_seg[1:]), np.zeros((1, q.shape[1]))])
    events: list[tuple[float, bool]] = []
    prev = False
    for ti, s in zip(t, spray):
        if bool(s) != prev:
            events.append((float(ti), bool(s)))
            prev = bool(s)
    if prev:
        events.append((float(t[-1]), False))
    return RobotProgram(joint_names=JOINT_NAMES, t=t, q=q, qd=qd, gun_events=tuple(events))


def motion_metrics(program: RobotProgram, spray: np.ndarray, cfg: RobotConfig,
                   at_limit: float = 0.98) -> dict[str, float]:  # fmt: skip
    """How hard a program drives the arm while spraying: the largest joint step between neighbouring spraying
    waypoints (deg, any joint), the share of spraying time some joint runs at ``at_limit`` of its speed limit,
    the peak joint speed as a fraction of its limit (all segments), and the spraying time (s).

    Args:
        program: the timed joint program; spray: (n,) bool per waypoint (gun on).
    """
    q, t = np.asarray(program.q), np.asarray(program.t)
    dt = np.maximum(np.diff(t), 1e-9)
    on = np.asarray(spray[:-1], bool) & np.asarray(spray[1:], bool)
    dq = np.abs(np.diff(q, axis=0))
    frac = (dq / dt[:, None] / np.deg2rad(np.asarray(cfg.max_speed_deg_s, dtype=float))).max(axis=1)
    spray_s = float(dt[on].sum())
    return {
        "joint_step_max_deg": float(np.rad2deg(dq[on].max())) if on.any() else 0.0,
        "at_limit_share": float(dt[on & (frac >= at_limit)].sum() / spray_s) if spray_s > 0 else 0.0,
        "joint_speed_peak_fraction": float(frac.max()) if len(frac) else 0.0,
        "spray_time_s": spray_s,
    }


def program_report(program: RobotProgram, path_xyz: np.ndarray, spray: np.ndarray, cfg: RobotConfig,
                   window: int = 9) -> dict[str, float]:  # fmt: skip
    """Everything the motion bench reports about one part's program: its duration, the sprayed tip path (m),
    the median tip speed while spraying (m/s, per segment), :func:`motion_metrics`, and the peak joint
    acceleration as a fraction of its limit, measured as :func:`retime` bounds it (velocities averaged over
    ``window`` segments: the controller blends through the dense waypoints).

    Args:
        path_xyz: (n, 3) nozzle tips of the program's waypoints; spray: (n,) bool gun on.
    """
    t, q = np.asarray(program.t), np.asarray(program.q)
    dt = np.maximum(np.diff(t), 1e-9)
    on = np.asarray(spray[:-1], bool) & np.asarray(spray[1:], bool)
    seg = np.linalg.norm(np.diff(np.asarray(path_xyz), axis=0), axis=1)
    vel = np.diff(q, axis=0) / dt[:, None]
    kern = np.ones(max(int(window), 1))
    num = np.stack([np.convolve(vel[:, j] * dt, kern, "same") for j in range(q.shape[1])], axis=1)
    v = np.vstack([np.zeros((1, q.shape[1])), num / np.convolve(dt, kern, "same")[:, None], np.zeros((1, q.shape[1]))])
    span = 0.5 * (np.r_[dt[:1], dt] + np.r_[dt, dt[-1:]]) * len(kern)
    acc = np.abs(np.diff(v, axis=0)) / span[:, None]
    amax = np.deg2rad(np.asarray(cfg.max_accel_deg_s2, dtype=float))
    return {
        "robot_time_s": float(program.duration),
        "spray_path_m": float(seg[on].sum()),
        "spray_speed_median_mm_s": float(np.median(seg[on] / dt[on]) * 1e3) if on.any() else 0.0,
        "joint_accel_peak_fraction": float((acc / amax).max()) if len(acc) else 0.0,
        **motion_metrics(program, spray, cfg),
    }


def time_budget(program: RobotProgram, path_xyz: np.ndarray, spray: np.ndarray, process_speed: np.ndarray,
                pass_id: np.ndarray) -> dict[str, float]:  # fmt: skip
    """Where a part's robot time goes: spraying at the process speed, the extra spraying time where a joint limit
    stretched it, and everything with the gun off (leads, links between passes, retracts), seconds; and the
    number of spray passes.

    Args:
        path_xyz: (n, 3) nozzle tips of the program's waypoints; spray: (n,) bool gun on;
            process_speed: (n,) m/s, the tip speed the path was planned at towards the next waypoint;
            pass_id: (n,) int, the pass of each waypoint (< 0: transit).
    """
    t = np.asarray(program.t)
    dt = np.diff(t)
    on = np.asarray(spray[:-1], bool) & np.asarray(spray[1:], bool)
    seg = np.linalg.norm(np.diff(np.asarray(path_xyz), axis=0), axis=1)
    proc = np.minimum(seg / np.maximum(np.asarray(process_speed, dtype=float)[:-1], 1e-6), dt)
    pid = np.asarray(pass_id)
    return {
        "spray_process_s": float(proc[on].sum()),
        "spray_stretch_s": float((dt[on] - proc[on]).sum()),
        "gun_off_s": float(dt[~on].sum()),
        "passes": float(len(np.unique(pid[pid >= 0]))),
    }
