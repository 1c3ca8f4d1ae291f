"""The UR analytic inverse (:func:`gluecell.pathplan.kinematics.ik`), compiled: one pose at a time in registers.

Why (issue 15, fast planning): the roll search solves the inverse for every (waypoint, roll) of a path, ~50 k
poses x 8 branches per search on an upper; the array version makes ~60 whole-array passes (temporaries of
(n, 3) and (n, 2) per branch), which was the largest single item of a plan's CPU time (a third of it on a
bench-w1 pair). The same closed form, step for step (the same operations in the same order; only the 3x3
products are summed left to right instead of by einsum), so the joints agree with the array version to ~1e-15
rad and the NaNs (no solution) fall on the same entries (tests/pathplan/test_planlat_kernels.py).
Where numba is missing :func:`available` is False and the array version is used.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["available", "ik_compiled", "node_costs", "roll_search", "warm_up"]

#: Smallest pose batch split over two threads (:mod:`~gluecell.pathplan.kernelsplit`).
SPLIT_MIN_POSES = 2000


@functools.lru_cache(maxsize=1)
def _kernel() -> Any:
    """The compiled loop, or None where numba cannot be imported (compiled once, cached on disk)."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    global _row, _wrap
    jit = numba.njit(nogil=True, cache=True, error_model="numpy")
    _row, _wrap = jit(_row_py), jit(_wrap_py)  # compiled globals before the loop that calls them compiles
    return jit(_ik_py), jit(_roll_dp_py), jit(_costs_py)


def available() -> bool:
    """Whether the compiled inverse can be used."""
    return _kernel() is not None


def warm_up() -> None:
    """Load the compiled loops (from numba's disk cache; compiled the first time) on tiny inputs."""
    if not available():
        return
    from .kinematics import DH, RobotConfig, fk

    d, a, _ = DH["ur10e"]
    sol = ik_compiled(fk(np.array([[0.1, -1.0, 1.0, -1.5, -1.5, 0.2]])), d, a, np.ones(8, bool))
    node_costs(sol[:, None], fk(np.zeros((1, 6)))[:, None], d, RobotConfig())
    roll_search(
        np.ones((2, 3, 8)),
        1,
        0.05,
        np.nan_to_num(np.repeat(sol[:, None], 3, axis=1).repeat(2, axis=0)),
        np.array([[0.0, 0.0, 0.0], [2e-3, 0.0, 0.0]]),
        RobotConfig(),
        True,
    )


def ik_compiled(T: np.ndarray, d: tuple[float, ...], a: tuple[float, ...], want: np.ndarray) -> np.ndarray:
    """(n, 8, 6) radians for flange poses ``T`` (n, 4, 4) float64, branches where ``want`` (8,) bool is set
    (the others NaN), wrapped into [-pi, pi) as :func:`gluecell.pathplan.kinematics.ik` does."""
    from . import kernelsplit

    T = np.ascontiguousarray(T, dtype=np.float64)
    out = np.full((len(T), 8, 6), np.nan)
    k, dd, aa, ww = _kernel()[0], np.asarray(d, np.float64), np.asarray(a, np.float64), np.asarray(want, np.bool_)

    def rows(lo: int, hi: int) -> None:  # each pose on its own: rows lo..hi, the same values as the whole loop
        k(T[lo:hi], dd, aa, ww, out[lo:hi])

    if kernelsplit.enabled(len(T), SPLIT_MIN_POSES):
        kernelsplit.run_halves(rows, len(T))
    else:
        rows(0, len(T))
    return out


_row: Any = None
_wrap: Any = None


def _wrap_py(x: float) -> float:
    return (x + np.pi) % (2 * np.pi) - np.pi


def _row_py(T, n, i, v):  # fmt: skip
    """Row ``i`` of pose ``n``'s rotation times ``v`` (3,), summed left to right."""
    return T[n, i, 0] * v[0] + T[n, i, 1] * v[1] + T[n, i, 2] * v[2]


def _ik_py(T, d, a, want, out):  # fmt: skip
    """The loop numba compiles (see :func:`ik_compiled`)."""
    for n in range(T.shape[0]):
        p0 = T[n, 0, 3] - d[5] * T[n, 0, 2]
        p1 = T[n, 1, 3] - d[5] * T[n, 1, 2]
        rxy = np.hypot(p0, p1)
        phi = np.arccos(d[3] / rxy)
        psi = np.arctan2(p1, p0)
        for s in range(2):
            if not (want[4 * s] or want[4 * s + 1] or want[4 * s + 2] or want[4 * s + 3]):
                continue
            q1 = psi + (1.0 - 2.0 * s) * phi + np.pi / 2
            s1, c1 = np.sin(q1), np.cos(q1)
            c5a = (T[n, 0, 3] * s1 - T[n, 1, 3] * c1 - d[3]) / d[5]
            for w in range(2):
                b0 = 4 * s + 2 * w
                if not (want[b0] or want[b0 + 1]):
                    continue
                q5 = (1.0 - 2.0 * w) * np.arccos(c5a)
                s5 = np.sin(q5)
                c5 = np.cos(q5)
                q6 = np.arctan2(-(T[n, 0, 1] * s1 - T[n, 1, 1] * c1) / s5, (T[n, 0, 0] * s1 - T[n, 1, 0] * c1) / s5)
                s6, c6 = np.sin(q6), np.cos(q6)
                x64 = (c5 * c6, -c5 * s6, -s5)
                y64 = (s5 * c6, -s5 * s6, c5)
                p64 = (s6 * d[4], c6 * d[4], -d[5])
                x04 = (_row(T, n, 0, x64), _row(T, n, 1, x64), _row(T, n, 2, x64))
                y04 = (_row(T, n, 0, y64), _row(T, n, 1, y64), _row(T, n, 2, y64))
                p04 = (_row(T, n, 0, p64) + T[n, 0, 3], _row(T, n, 1, p64) + T[n, 1, 3],
                       _row(T, n, 2, p64) + T[n, 2, 3])  # fmt: skip
                x14_0, x14_1 = c1 * x04[0] + s1 * x04[1], x04[2]
                y14_0, y14_1 = c1 * y04[0] + s1 * y04[1], y04[2]
                p13_0 = c1 * p04[0] + s1 * p04[1] - d[3] * y14_0
                p13_1 = p04[2] - d[0] - d[3] * y14_1
                L = np.hypot(p13_0, p13_1)
                c3 = (L * L - a[1] * a[1] - a[2] * a[2]) / (2 * a[1] * a[2])
                q234 = np.arctan2(x14_1, x14_0)
                for e in range(2):
                    b = b0 + e
                    if not want[b]:
                        continue
                    q3 = (1.0 - 2.0 * e) * np.arccos(c3)
                    q2 = -np.arctan2(p13_1, -p13_0) + np.arcsin(a[2] * np.sin(q3) / L)
                    q4 = q234 - q2 - q3
                    # NaN (no solution) stays NaN, entry by entry, as in the array version
                    out[n, b, 0] = _wrap(q1)
                    out[n, b, 1] = _wrap(q2)
                    out[n, b, 2] = _wrap(q3)
                    out[n, b, 3] = _wrap(q4)
                    out[n, b, 4] = _wrap(q5)
                    out[n, b, 5] = _wrap(q6)


def roll_search(cost: np.ndarray, max_step: int, step_penalty: float, sol: np.ndarray | None, xyz: np.ndarray,
                cfg: Any, wrap: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`gluecell.pathplan.rollsearch.roll_dp` with the transition costs of
    :func:`~gluecell.pathplan.rollsearch.motion_costs` (``sol`` (m, K, B, 6) joints; None: none) computed where
    the programme needs them, never stored ((m - 1) x shifts x K x B of them otherwise). The same sums in the same
    order, the same first-of-equals choice: the same roll sequences. Returns totals (B,) and indices (m, B)."""
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    n, _, B = cost.shape
    use = sol is not None and n > 1
    if use:
        inv_v = 1.0 / np.deg2rad(np.asarray(cfg.max_speed_deg_s, dtype=float))
        ds = np.maximum(np.linalg.norm(np.diff(xyz, axis=0), axis=1), 1e-3)
        scale = cfg.motion_speed_mm_s * 1e-3 / ds
        solv = np.ascontiguousarray(sol, dtype=np.float64)
    else:
        inv_v, scale, solv = np.ones(6), np.ones(max(n - 1, 1)), np.zeros((1, 1, 1, 6))
    weight = float(cfg.motion_weight) if use else 0.0
    shifts = np.arange(-max_step, max_step + 1).astype(np.int64)
    pen = step_penalty * np.abs(shifts)
    total, path = np.empty(B), np.empty((n, B), dtype=np.int64)
    _kernel()[1](cost, shifts, pen.astype(np.float64), solv, inv_v, scale, weight, use, wrap, total, path)
    return total, path


def _roll_dp_py(cost, shifts, pen, sol, inv_v, scale, weight, use, wrap, total, path):  # fmt: skip
    """The loop numba compiles (see :func:`roll_search`)."""
    n, K, B = cost.shape
    S = shifts.shape[0]
    lim = 2 * np.pi * inv_v
    acc = cost[0].copy()
    nxt = np.empty((K, B))
    back = np.zeros((n, K, B), dtype=np.int64)
    for i in range(1, n):
        for k in range(K):
            for b in range(B):
                best, bj = np.inf, 0
                for j in range(S):
                    src = k - shifts[j]
                    if wrap:
                        src = src % K
                    elif src < 0 or src >= K:
                        continue  # an edge: inf in the array version, never below best
                    tot = acc[src, b] + pen[j]
                    if use:
                        r = 0.0
                        for q in range(6):
                            a0 = sol[i, k, b, q] * inv_v[q]
                            a1 = sol[i - 1, src, b, q] * inv_v[q]
                            a0 = 0.0 if np.isnan(a0) else a0
                            a1 = 0.0 if np.isnan(a1) else a1
                            dd = abs(a0 - a1)
                            dd = min(dd, lim[q] - dd)
                            r = max(r, dd)
                        r = r * scale[i - 1]
                        tot = tot + weight * (r * r)
                    if tot < best:
                        best, bj = tot, j
                nxt[k, b] = best + cost[i, k, b]
                bk = (k - shifts[bj]) % K if wrap else k - shifts[bj]
                back[i, k, b] = min(max(bk, 0), K - 1)
        acc[:, :] = nxt
    for b in range(B):
        k = 0
        for kk in range(1, K):
            if acc[kk, b] < acc[k, b]:
                k = kk
        total[b] = acc[k, b]
        for i in range(n - 1, -1, -1):
            path[i, b] = k
            k = back[i, k, b]


def node_costs(sol: np.ndarray, flange: np.ndarray, d: tuple[float, ...], cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gluecell.pathplan.kinematics._costs` in one pass: node costs (n, K, 8) (inf = infeasible) and the
    reason per node (0 ok, 1 no IK, 2 singular) from joints ``sol`` (n, K, 8, 6) at flange poses (n, K, 4, 4)."""
    n, K = sol.shape[:2]
    cost = np.empty(sol.shape[:3])
    reason = np.empty(sol.shape[:3], dtype=np.int64)
    lim = np.array([cfg.min_sin_q5, cfg.min_sin_q3, cfg.min_shoulder_m], dtype=np.float64)
    _kernel()[2](np.ascontiguousarray(sol, dtype=np.float64).reshape(n * K, sol.shape[2], 6),
                 np.ascontiguousarray(flange, dtype=np.float64).reshape(n * K, 4, 4), float(d[5]), float(d[3]), lim,
                 cost.reshape(n * K, -1), reason.reshape(n * K, -1))  # fmt: skip
    return cost, reason


def _costs_py(sol, flange, d5, d3, lim, cost, reason):  # fmt: skip
    """The loop numba compiles (see :func:`node_costs`)."""
    for i in range(sol.shape[0]):
        p0 = flange[i, 0, 3] - d5 * flange[i, 0, 2]
        p1 = flange[i, 1, 3] - d5 * flange[i, 1, 2]
        shoulder = np.hypot(p0, p1) - d3
        for b in range(sol.shape[1]):
            bad = False
            for j in range(6):
                if np.isnan(sol[i, b, j]):
                    bad = True
            s5 = abs(np.sin(sol[i, b, 4]))
            s3 = abs(np.sin(sol[i, b, 2]))
            if bad:
                cost[i, b], reason[i, b] = np.inf, 1
            elif s5 < lim[0] or s3 < lim[1] or shoulder < lim[2]:
                cost[i, b], reason[i, b] = np.inf, 2
            else:
                cost[i, b], reason[i, b] = 1.0 / s5 + 0.2 / s3, 0
