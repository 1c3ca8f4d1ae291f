"""ROS message dicts of the robot link, shared by the client (``rosbridge``) and the simulated cell.

Plain dicts as rosbridge carries them (no roslibpy here): ``trajectory_msgs/JointTrajectory``,
``builtin_interfaces/Duration`` and the digest that ties an armed gun schedule to its trajectory.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

__all__ = ["duration", "seconds", "trajectory_msg", "trajectory_digest", "gun_schedule_request"]


def duration(t: float) -> dict[str, int]:
    """``builtin_interfaces/Duration`` of ``t`` seconds (nanoseconds rounded)."""
    ns = round(float(t) * 1e9)
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def seconds(d: Any) -> float:
    """Seconds of a ``{sec, nanosec}`` (or ROS 1 ``{secs, nsecs}``) dict; NaN when malformed."""
    if not isinstance(d, dict):
        return math.nan
    sec = d.get("sec", d.get("secs"))
    nsec = d.get("nanosec", d.get("nsecs", 0))
    if not isinstance(sec, int) or not isinstance(nsec, int) or isinstance(sec, bool) or not 0 <= nsec < 10**9:
        return math.nan
    return sec + nsec * 1e-9


def trajectory_msg(joint_names: tuple[str, ...], t: np.ndarray, q: np.ndarray, qd: np.ndarray | None) -> dict[str, Any]:
    """``trajectory_msgs/JointTrajectory`` with a zero stamp (start now), as the UR driver expects.

    Positions and velocities are rounded to 1e-9 (a nanometre at the UR10e's reach): shorter JSON, the same motion.
    """
    ns = np.round(np.asarray(t, dtype=np.float64) * 1e9).astype(np.int64)
    secs, nsecs = (ns // 1_000_000_000).tolist(), (ns % 1_000_000_000).tolist()
    pos = np.round(np.asarray(q, dtype=np.float64), 9).tolist()
    vel = None if qd is None else np.round(np.asarray(qd, dtype=np.float64), 9).tolist()
    points = []
    for k in range(len(pos)):
        p: dict[str, Any] = {"positions": pos[k], "time_from_start": {"sec": secs[k], "nanosec": nsecs[k]}}
        if vel is not None:
            p["velocities"] = vel[k]
        points.append(p)
    return {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""}, "joint_names": list(joint_names),
            "points": points}  # fmt: skip


def _number(x: Any) -> float:
    return float(x) if type(x) in (int, float) else math.nan


def trajectory_digest(traj: dict[str, Any]) -> str:
    """16 hex digits identifying a trajectory message (joint names, positions, times), bit-exact after JSON."""
    h = hashlib.sha256()
    names = traj.get("joint_names", [])
    h.update("\0".join(str(n) for n in names).encode())
    points = traj.get("points", [])
    pos = [p.get("positions", []) if isinstance(p, dict) else [] for p in points]
    lens = [len(row) if isinstance(row, list) else -1 for row in pos]  # so [1, 2][3] and [1][2, 3] differ
    h.update(np.asarray(lens, dtype="<i8").tobytes())
    try:  # the common case: a rectangular table of numbers
        table = np.asarray(pos, dtype="<f8")
    except (ValueError, TypeError):
        table = np.asarray([_number(x) for row in pos if isinstance(row, list) for x in row], dtype="<f8")
    h.update(table.tobytes())
    times = []
    for p in points:
        tfs = p.get("time_from_start", {}) if isinstance(p, dict) else {}
        tfs = tfs if isinstance(tfs, dict) else {}
        times += [tfs.get("sec", 0), tfs.get("nanosec", 0)]
    h.update(np.asarray([x if type(x) is int else -1 for x in times], dtype="<i8").tobytes())
    return h.hexdigest()[:16]


def gun_schedule_request(goal_id: str, events: tuple[tuple[float, bool], ...], pin: int,
                         traj: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Arguments of the gun-schedule service: the goal it belongs to, the pin, the events, the digest."""
    return {"goal_id": goal_id, "pin": int(pin), "times": [float(t) for t, _ in events],
            "states": [bool(s) for _, s in events], "trajectory_digest": trajectory_digest(traj)}  # fmt: skip
