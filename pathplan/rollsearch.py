"""The roll search of :func:`gluecell.pathplan.kinematics.solve_path`: a dynamic programme over the rolls about the
nozzle axis (free for a round nozzle) at every waypoint and each IK branch, with node costs (singularity margins)
and, optionally, transition costs from the joint motion between neighbouring waypoints."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["roll_dp", "motion_costs"]


def roll_dp(cost: np.ndarray, max_step: int, step_penalty: float, trans: np.ndarray | None = None,
        wrap: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Cheapest roll-index sequences through node costs (n, K, B), moving at most ``max_step`` per step.

    Args:
        trans: (n - 1, 2 * max_step + 1, K, B) cost of arriving at roll k of waypoint i + 1 from roll k - s of
            waypoint i (shift index j for s = shifts[j]); None: only the step penalty.
        wrap: roll indices are a full circle (index K is index 0).
    Returns the total cost per branch (B,) and the index sequences (n, B).
    """
    n, K, B = cost.shape
    acc = cost[0].copy()
    back = np.zeros((n, K, B), dtype=np.int64)
    shifts = np.arange(-max_step, max_step + 1)
    ar = np.arange(K)[:, None]
    pen = (step_penalty * np.abs(shifts))[:, None, None]
    cand = np.full((len(shifts), K, B), np.inf)
    src = (ar[:, 0][None] - shifts[:, None]) % K  # (S, K): cand[j, k] = acc[k - s_j], wrapped
    for i in range(1, n):
        if wrap:
            cand = acc[src]
        else:
            for j, s in enumerate(shifts):  # cand[j, k]: arrive at k from k - s (edges stay inf)
                lo, hi = max(s, 0), K + min(s, 0)
                cand[j, lo:hi] = acc[lo - s : hi - s]
        tot = cand + pen if trans is None else cand + pen + trans[i - 1]
        j = tot.argmin(axis=0)
        back[i] = (ar - shifts[j]) % K if wrap else ar - shifts[j]
        acc = tot.min(axis=0) + cost[i]
    np.clip(back, 0, K - 1, out=back)
    k = np.argmin(acc, axis=0)
    total = acc[k, np.arange(B)]
    path = np.empty((n, B), dtype=np.int64)
    for i in range(n - 1, -1, -1):
        path[i] = k
        k = back[i, k, np.arange(B)]
    return total, path


def motion_costs(sol: np.ndarray, xyz: np.ndarray, shifts: np.ndarray, cfg: Any) -> np.ndarray:
    """Transition costs (m - 1, S, K, B) of the roll DP: ``motion_weight`` x r^2, r = the time the slowest joint
    needs between neighbouring waypoints (roll k - s to roll k, same branch) over the time the nozzle takes at
    ``motion_speed_mm_s``: a roll sequence that keeps every joint within its speed limit costs little."""
    inv_v = 1.0 / np.deg2rad(np.asarray(cfg.max_speed_deg_s, dtype=float))
    ds = np.maximum(np.linalg.norm(np.diff(xyz, axis=0), axis=1), 1e-3)
    scale = (cfg.motion_speed_mm_s * 1e-3 / ds)[:, None, None]  # 1 / the nozzle's time per step
    out = np.empty((len(sol) - 1, len(shifts), sol.shape[1], sol.shape[2]))
    two_pi = 2 * np.pi
    sol = np.nan_to_num(sol * inv_v, nan=0.0)  # a missing solution is an infeasible node (inf) anyway
    lim = two_pi * inv_v
    for j, s in enumerate(shifts):
        d = np.abs(sol[1:] - np.roll(sol[:-1], s, axis=1))  # roll k of waypoint i + 1 from roll k - s of i
        np.minimum(d, lim - d, out=d)  # angles in (-pi, pi]: the wrapped difference (in seconds at the limit)
        r = d.max(axis=-1) * scale
        out[:, j] = cfg.motion_weight * r**2
    return out
