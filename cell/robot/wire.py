"""ROS message dicts of the robot link, shared by the client (``rosbridge``) and the simulated cell.

Plain dicts as rosbridge carries them (no roslibpy here): ``trajectory_msgs/JointTrajectory``,
``builtin_interfaces/Duration`` and the digest that ties an armed gun schedule to its trajectory.
"""

from __future__ import annotations

import hashlib
import math
import struct
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
    """``trajectory_msgs/JointTrajectory`` with a zero stamp (start now), as the UR driver expects."""
    points = []
    for k in range(len(t)):
        p: dict[str, Any] = {"positions": [float(x) for x in q[k]], "time_from_start": duration(t[k])}
        if qd is not None:
            p["velocities"] = [float(x) for x in qd[k]]
        points.append(p)
    return {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""}, "joint_names": list(joint_names),
            "points": points}  # fmt: skip


def trajectory_digest(traj: dict[str, Any]) -> str:
    """16 hex digits identifying a trajectory message (joint names, positions, times), bit-exact after JSON."""
    h = hashlib.sha256()
    h.update("\0".join(str(n) for n in traj.get("joint_names", [])).encode())
    for p in traj.get("points", []):
        pos = [float(x) if isinstance(x, int | float) else math.nan for x in p.get("positions", [])]
        h.update(struct.pack(f"<{len(pos)}d", *pos))
        tfs = p.get("time_from_start", {})
        h.update(struct.pack("<qq", int(tfs.get("sec", 0) or 0), int(tfs.get("nanosec", 0) or 0)))
    return h.hexdigest()[:16]


def gun_schedule_request(goal_id: str, events: tuple[tuple[float, bool], ...], pin: int,
                         traj: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Arguments of the gun-schedule service: the goal it belongs to, the pin, the events, the digest."""
    return {"goal_id": goal_id, "pin": int(pin), "times": [float(t) for t, _ in events],
            "states": [bool(s) for _, s in events], "trajectory_digest": trajectory_digest(traj)}  # fmt: skip
