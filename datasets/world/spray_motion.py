"""How the real robot and gun move along a planned path: gun delays, time samples, pose errors.

A path is a list of timed waypoints; the robot moves linearly between them (position linear in time,
the nozzle frame's axes blended linearly and re-orthonormalised, which is exact to far below the
0.1 deg level for the ~1 mm waypoint spacing of a spray path). ``spray[i]`` commands the gun on from
``t[i]`` to ``t[i+1]``; the actual gun opens ``on_delay`` after an "on" command and closes
``off_delay`` after an "off" command (a gun still on at the last waypoint is switched off there).
Before the first and after the last waypoint the robot stands still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Shots", "gun_intervals", "sample_shots", "interpolate_pose", "smooth_offset", "nozzle_quaternions"]


@dataclass(frozen=True)
class Shots:
    """Time samples of the open gun.

    Attributes:
        t: (k,) float64 seconds, the midpoint of each sample's time slice.
        dwell: (k,) float64 seconds the gun is open in each slice.
    """

    t: np.ndarray
    dwell: np.ndarray


def gun_intervals(t: np.ndarray, spray: np.ndarray, on_delay: float, off_delay: float) -> list[tuple[float, float]]:
    """Actual open intervals ``[(start_s, end_s), ...]`` of the gun, sorted and disjoint.

    Args:
        t: (n,) float64 waypoint times, non-decreasing.
        spray: (n,) bool, gun commanded on while moving to the next waypoint.
        on_delay, off_delay: seconds from command to actual open / close.
    """
    cmd = np.asarray(spray, dtype=bool).copy()
    cmd[-1] = False  # nothing after the last waypoint: the program ends with the gun off
    edges = np.diff(np.concatenate([[0], cmd.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out: list[tuple[float, float]] = []
    for a, b in zip(starts, ends):
        lo, hi = float(t[a]) + on_delay, float(t[b]) + off_delay
        if hi <= lo:
            continue  # the gun never opened: the "on" pulse was shorter than the valve's delays
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def sample_shots(
    t: np.ndarray, xyz: np.ndarray, intervals: list[tuple[float, float]], step_m: float, max_dt_s: float
) -> Shots:
    """Cut every open interval into slices of at most ``step_m`` of tip travel and ``max_dt_s``.

    The slices are uniform in the measure ``arc length + dt · step_m / max_dt_s``, so a fast move is
    cut by distance and a slow or stationary one by time.

    Args:
        t: (n,) float64 waypoint times; xyz: (n, 3) float64 planned tip positions, metres.
        intervals: actual open intervals (:func:`gun_intervals`).
        step_m, max_dt_s: slice limits (> 0).
    """
    ts, dw = [], []
    rate = step_m / max_dt_s
    for lo, hi in intervals:
        inner = t[(t > lo) & (t < hi)]
        knots = np.unique(np.concatenate([[lo], inner, [hi]]))
        pos = np.stack([np.interp(knots, t, xyz[:, c]) for c in range(3)], axis=1)
        m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pos, axis=0), axis=1) + np.diff(knots) * rate)])
        n = max(1, int(np.ceil(m[-1] / step_m)))
        cuts = np.interp(np.linspace(0.0, m[-1], n + 1), m, knots)
        mids = np.interp((np.arange(n) + 0.5) * m[-1] / n, m, knots)
        ts.append(mids)
        dw.append(np.diff(cuts))
    if not ts:
        return Shots(np.zeros(0), np.zeros(0))
    return Shots(np.concatenate(ts), np.concatenate(dw))


def interpolate_pose(t: np.ndarray, xyz: np.ndarray, rot: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planned tip position and nozzle frame at times ``at``.

    Args:
        t: (n,) float64 waypoint times; xyz: (n, 3) float64 metres; rot: (n, 3, 3) float64 nozzle frames
            (columns x y z).
        at: (k,) float64 query times (clamped to the path's span).

    Returns:
        (k, 3) float64 tip positions and (k, 3, 3) float64 rotation matrices.
    """
    n = len(t)
    i = np.clip(np.searchsorted(t, at, side="right") - 1, 0, n - 2)
    span = t[i + 1] - t[i]
    f = np.where(span > 0, np.clip((at - t[i]) / np.where(span > 0, span, 1.0), 0.0, 1.0), 1.0)[:, None]
    f = np.where(at[:, None] < t[0], 0.0, f)
    p = xyz[i] * (1.0 - f) + xyz[i + 1] * f
    z = rot[i, :, 2] * (1.0 - f) + rot[i + 1, :, 2] * f
    x = rot[i, :, 0] * (1.0 - f) + rot[i + 1, :, 0] * f
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    x -= np.einsum("ij,ij->i", x, z)[:, None] * z
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return p, np.stack([x, np.cross(z, x), z], axis=2)


def smooth_offset(at: np.ndarray, amp: np.ndarray, freq: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """A smooth random 3-D offset (k, 3) metres: per axis a sum of sinusoids.

    Args:
        at: (k,) float64 seconds.
        amp, freq, phase: (3, m) float64 amplitude (m), frequency (Hz) and phase (rad) of each mode.
    """
    arg = 2.0 * np.pi * freq[None, :, :] * at[:, None, None] + phase[None, :, :]
    return np.sum(amp[None, :, :] * np.sin(arg), axis=2)


def nozzle_quaternions(axis: np.ndarray, x_hint: np.ndarray | None = None) -> np.ndarray:
    """Unit quaternions (n, 4) x y z w of nozzle frames with +z along ``axis`` (n, 3) and +x as close as
    possible to ``x_hint`` (3,) (default base_link +z; +x is used where the hint is parallel to the axis)."""
    from scipy.spatial.transform import Rotation

    z = np.asarray(axis, dtype=np.float64).reshape(-1, 3)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    hint = np.array([0.0, 0.0, 1.0]) if x_hint is None else np.asarray(x_hint, dtype=np.float64)
    x = hint[None, :] - (z @ hint)[:, None] * z
    bad = np.linalg.norm(x, axis=1) < 1e-6
    x[bad] = np.array([1.0, 0.0, 0.0]) - z[bad, :1] * z[bad]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return Rotation.from_matrix(np.stack([x, np.cross(z, x), z], axis=2)).as_quat()
