"""Kinematics of a Universal Robots UR10e / UR10: forward, analytic inverse, and IK along a spray path.

DH parameters are the manufacturer's published values ("DH parameters for calculations of kinematics
and dynamics", Universal Robots); the closed-form inverse is the standard one for this geometry
(Hawkins 2013, "Analytic inverse kinematics for the Universal Robots UR-5/UR-10 arms"): up to eight
solutions, indexed by shoulder (left/right), wrist (flip) and elbow (up/down).

Along a path the branch is fixed (no configuration flips), each joint is unwrapped for continuity
and checked against its limits, and the roll about the nozzle axis (free for a spray nozzle) is
chosen by dynamic programming to stay away from the wrist singularity (sin q5 -> 0) with smooth
changes. Joint speed limits: UR10e datasheet (base/shoulder 120 deg/s, elbow/wrists 180 deg/s).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .errors import UnreachableError
from .rollsearch import motion_costs, roll_dp

__all__ = ["DH", "RobotConfig", "fk", "ik", "pose_matrix", "PathIK", "solve_path", "JOINT_NAMES"]

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint",
)  # fmt: skip

#: (d, a, alpha) per joint, metres/radians; Universal Robots' published DH tables.
DH: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "ur10e": ((0.1807, 0.0, 0.0, 0.17415, 0.11985, 0.11655), (0.0, -0.6127, -0.57155, 0.0, 0.0, 0.0),
              (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)),
    "ur10": ((0.1273, 0.0, 0.0, 0.163941, 0.1157, 0.0922), (0.0, -0.612, -0.5723, 0.0, 0.0, 0.0),
             (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)),
}  # fmt: skip


@dataclass(frozen=True)
class RobotConfig:
    """The arm, where it stands and what it holds (``[pathplan.robot]`` in cell.toml).

    Attributes:
        model: "ur10e" or "ur10".
        base_xyz / base_rpy_deg: robot base in ``base_link`` (default: at the origin, DESIGN.md).
        tool_xyz / tool_rpy_deg: nozzle tip frame in the flange frame; the nozzle's +z is the spray
            direction. Default: tip 150 mm out, axis bent 90 deg from the flange axis (a bent nozzle lets
            the roll about the spray axis move the wrist away from its singularity).
        joint_limits_deg: (6, 2) lower/upper (UR10e: +-360 deg each).
        max_speed_deg_s: UR10e datasheet: 120, 120, 180, 180, 180, 180.
        max_accel_deg_s2: chosen (not in the datasheet): 600 deg/s^2 (~10 rad/s^2), gentle for a gun with hoses.
        min_sin_q5: wrist-singularity margin (|sin q5| >= 0.1, about 6 deg).
        min_sin_q3: elbow-singularity margin (arm not stretched).
        min_shoulder_m: wrist centre at least this far from the shoulder's singular cylinder.
        roll_step_deg / max_roll_rate_deg: roll candidates and the largest roll change between waypoints.
        branch: "auto" or a fixed branch index 0-7.
        max_jump_deg: a joint moving more than this between waypoints < 5 mm apart is a configuration flip.
        max_roll_deg / roll_weight: roll candidates span +-max_roll_deg about the reference frame
            (:func:`reference_frames`), with a cost pulling them back to it (no winding up); the chosen
            roll is smoothed over ``roll_smooth`` waypoints and the IK solved again at it. ``max_roll_deg`` >= 180:
            the whole circle of rolls, wrapping round (the default: a round nozzle's roll is free).
        motion_weight / motion_speed_mm_s: the roll search also pays motion_weight x r^2 per step, r = the time the
            slowest joint needs for the step over the time the nozzle takes at motion_speed_mm_s (the spray
            speed): rolls and a branch that keep every joint within its speed limit (0: off, the old search).
    """

    model: Literal["ur10e", "ur10"] = "ur10e"
    base_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    base_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tool_xyz: tuple[float, float, float] = (0.0, 0.0, 0.15)
    tool_rpy_deg: tuple[float, float, float] = (0.0, 90.0, 0.0)
    joint_limits_deg: tuple[tuple[float, float], ...] = field(default_factory=lambda: ((-360.0, 360.0),) * 6)
    max_speed_deg_s: tuple[float, ...] = (120.0, 120.0, 180.0, 180.0, 180.0, 180.0)
    max_accel_deg_s2: tuple[float, ...] = (600.0,) * 6
    min_sin_q5: float = 0.1
    min_sin_q3: float = 0.05
    min_shoulder_m: float = 0.05
    roll_step_deg: float = 15.0
    max_roll_rate_deg: float = 5.0
    branch: str = "auto"
    max_jump_deg: float = 45.0
    max_roll_deg: float = 180.0
    roll_weight: float = 0.0
    roll_smooth: int = 21
    motion_weight: float = 2.0
    motion_speed_mm_s: float = 460.0

    def __post_init__(self) -> None:
        if len(self.joint_limits_deg) != 6 or len(self.max_speed_deg_s) != 6 or len(self.max_accel_deg_s2) != 6:
            raise ValueError("joint_limits_deg, max_speed_deg_s and max_accel_deg_s2 need one entry per joint (6)")
        if self.branch != "auto" and self.branch not in {str(i) for i in range(8)}:
            raise ValueError("branch must be 'auto' or 0-7")

    @property
    def T_base_link_robot(self) -> np.ndarray:
        """(4, 4) robot base in base_link."""
        return pose_matrix(self.base_xyz, self.base_rpy_deg)

    @property
    def T_flange_tool(self) -> np.ndarray:
        """(4, 4) nozzle tip frame in the flange frame."""
        return pose_matrix(self.tool_xyz, self.tool_rpy_deg)


def pose_matrix(xyz: tuple[float, ...], rpy_deg: tuple[float, ...]) -> np.ndarray:
    """(4, 4) transform from a translation (m) and roll/pitch/yaw (deg, fixed axes x, y, z)."""
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", rpy_deg, degrees=True).as_matrix()
    T[:3, 3] = xyz
    return T


def _dh(theta: np.ndarray, d: float, a: float, alpha: float) -> np.ndarray:
    """(..., 4, 4) standard DH transforms for joint angles ``theta`` (...)."""
    ct, st = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    T = np.zeros((*np.shape(theta), 4, 4))
    T[..., 0, 0], T[..., 0, 1], T[..., 0, 2], T[..., 0, 3] = ct, -st * ca, st * sa, a * ct
    T[..., 1, 0], T[..., 1, 1], T[..., 1, 2], T[..., 1, 3] = st, ct * ca, -ct * sa, a * st
    T[..., 2, 1], T[..., 2, 2], T[..., 2, 3] = sa, ca, d
    T[..., 3, 3] = 1.0
    return T


def fk(q: np.ndarray, model: str = "ur10e") -> np.ndarray:
    """Flange poses (..., 4, 4) in the robot base frame for joint angles ``q`` (..., 6) radians."""
    d, a, al = DH[model]
    q = np.asarray(q, dtype=np.float64)
    T = _dh(q[..., 0], d[0], a[0], al[0])
    for i in range(1, 6):
        T = T @ _dh(q[..., i], d[i], a[i], al[i])
    return T


def _inv(T: np.ndarray) -> np.ndarray:
    R = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = R
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", R, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def ik(T: np.ndarray, model: str = "ur10e", branches: tuple[int, ...] | None = None) -> np.ndarray:
    """All eight analytic solutions (n, 8, 6) radians for flange poses ``T`` (n, 4, 4); NaN where none exists.

    Branch index b = 4 * shoulder + 2 * wrist + elbow. ``branches``: solve only these (the others stay NaN;
    one branch costs about a quarter of all eight).
    """
    from . import ikkernel

    want = set(range(8) if branches is None else branches)
    d, a, _ = DH[model]
    T = np.asarray(T, dtype=np.float64).reshape(-1, 4, 4)
    if ikkernel.available():  # the same closed form, compiled (~1e-15 rad from the arrays below)
        return ikkernel.ik_compiled(T, d, a, np.isin(np.arange(8), list(want)))
    return _ik_arrays(T, d, a, want)


def _ik_arrays(T: np.ndarray, d: tuple[float, ...], a: tuple[float, ...], want: set[int]) -> np.ndarray:
    """:func:`ik` in whole-array passes (the reference of the compiled :mod:`~gluecell.pathplan.ikkernel`)."""
    n = len(T)
    out = np.full((n, 8, 6), np.nan)
    p05 = T[:, :3, 3] - d[5] * T[:, :3, 2]
    rxy = np.hypot(p05[:, 0], p05[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.arccos(d[3] / rxy)
        psi = np.arctan2(p05[:, 1], p05[:, 0])
        for s, sgn1 in enumerate((1.0, -1.0)):
            if not want & {4 * s + k for k in range(4)}:
                continue
            q1 = psi + sgn1 * phi + np.pi / 2
            s1, c1 = np.sin(q1), np.cos(q1)
            c5 = (T[:, 0, 3] * s1 - T[:, 1, 3] * c1 - d[3]) / d[5]
            for w, sgn5 in enumerate((1.0, -1.0)):
                if not want & {4 * s + 2 * w, 4 * s + 2 * w + 1}:
                    continue
                q5 = sgn5 * np.arccos(c5)
                s5 = np.sin(q5)
                q6 = np.arctan2(-(T[:, 0, 1] * s1 - T[:, 1, 1] * c1) / s5, (T[:, 0, 0] * s1 - T[:, 1, 0] * c1) / s5)
                x14, p13 = _wrist1_frame(T, s1, c1, s5, np.cos(q5), q6, d)
                L = np.hypot(p13[:, 0], p13[:, 1])
                c3 = (L**2 - a[1] ** 2 - a[2] ** 2) / (2 * a[1] * a[2])
                # joints 2 and 3 turn about parallel axes (alpha = 0): T13 is a rotation by q2 + q3 about z, so
                # q4 is the angle of T14's x axis in that plane less q2 + q3 (no T13 product, no inverse)
                q234 = np.arctan2(x14[:, 1], x14[:, 0])
                for e, sgn3 in enumerate((1.0, -1.0)):
                    if 4 * s + 2 * w + e not in want:
                        continue
                    q3 = sgn3 * np.arccos(c3)
                    q2 = -np.arctan2(p13[:, 1], -p13[:, 0]) + np.arcsin(a[2] * np.sin(q3) / L)
                    q4 = q234 - q2 - q3
                    out[:, 4 * s + 2 * w + e] = np.stack([q1, q2, q3, q4, q5, q6], axis=1)
    out = (out + np.pi) % (2 * np.pi) - np.pi
    return out


def _wrist1_frame(T: np.ndarray, s1: np.ndarray, c1: np.ndarray, s5: np.ndarray, c5: np.ndarray, q6: np.ndarray,
                  d: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The parts of T14 = T01^-1 T06 (T45 T56)^-1 the inverse needs, in closed form for the UR geometry
    (a4 = a5 = 0, alpha4 = -pi/2, alpha5 = 0, alpha0 = pi/2): T14's x axis (n, 2) in the plane of joints 2-4 and
    p13 (n, 2), the wrist-1 origin less d4 along T14's y axis. The same numbers as the 4x4 products, without them.
    """
    s6, c6 = np.sin(q6), np.cos(q6)
    R, p = T[:, :3, :3], T[:, :3, 3]
    # (T45 T56)^-1: x and y axes and origin of frame 4 seen from frame 6
    x64 = np.stack([c5 * c6, -c5 * s6, -s5], axis=1)
    y64 = np.stack([s5 * c6, -s5 * s6, c5], axis=1)
    p64 = np.stack([s6 * d[4], c6 * d[4], np.full_like(s6, -d[5])], axis=1)
    x04 = np.einsum("nij,nj->ni", R, x64)
    y04 = np.einsum("nij,nj->ni", R, y64)
    p04 = np.einsum("nij,nj->ni", R, p64) + p
    # T01^-1: rows (c1, s1, 0) and (0, 0, 1) of R01^T, origin (0, 0, d1)
    x14 = np.stack([c1 * x04[:, 0] + s1 * x04[:, 1], x04[:, 2]], axis=1)
    y14 = np.stack([c1 * y04[:, 0] + s1 * y04[:, 1], y04[:, 2]], axis=1)
    o14 = np.stack([c1 * p04[:, 0] + s1 * p04[:, 1], p04[:, 2] - d[0]], axis=1)
    return x14, o14 - d[3] * y14


@dataclass(frozen=True)
class PathIK:
    """Joint solution along a path.

    Attributes:
        q: (n, 6) float64 radians, continuous, within limits.
        roll: (n,) float64 radians, rotation applied about each nozzle axis.
        quat_xyzw: (n, 4) nozzle orientations after the roll (base_link).
        branch: IK branch used for the whole path (4 * shoulder + 2 * wrist + elbow).
        min_sin_q5: smallest |sin q5| along the path (wrist-singularity margin).
    """

    q: np.ndarray
    roll: np.ndarray
    quat_xyzw: np.ndarray
    branch: int
    min_sin_q5: float


def _costs(sol: np.ndarray, flange: np.ndarray, cfg: RobotConfig) -> tuple[np.ndarray, np.ndarray]:
    """Node costs (n, K, 8) (inf = infeasible) and a reason code per node (0 ok, 1 no IK, 2 singular)."""
    from . import ikkernel

    d = DH[cfg.model][0]
    if ikkernel.available():
        return ikkernel.node_costs(sol, flange, d, cfg)
    bad_ik = np.isnan(sol).any(axis=-1)
    s5 = np.abs(np.sin(sol[..., 4]))
    s3 = np.abs(np.sin(sol[..., 2]))
    p05 = flange[..., :3, 3] - d[5] * flange[..., :3, 2]
    shoulder = (np.hypot(p05[..., 0], p05[..., 1]) - d[3])[..., None]
    sing = (s5 < cfg.min_sin_q5) | (s3 < cfg.min_sin_q3) | (shoulder < cfg.min_shoulder_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = 1.0 / s5 + 0.2 / s3
    cost = np.where(bad_ik | sing, np.inf, cost)
    reason = np.where(bad_ik, 1, np.where(sing, 2, 0))
    return cost, reason


def _fit_limits(q: np.ndarray, lim: np.ndarray) -> np.ndarray | None:
    """Unwrapped joints shifted by whole turns into the limits, or None if a joint's range does not fit."""
    q = np.unwrap(q, axis=0)
    for j in range(q.shape[1]):
        lo, hi = q[:, j].min(), q[:, j].max()
        turns = [k * 2 * np.pi for k in range(-2, 3)]
        shifts = [s for s in turns if lo + s >= lim[j, 0] and hi + s <= lim[j, 1]]
        if not shifts:
            return None
        q[:, j] += min(shifts, key=lambda s: abs(q[:, j].mean() + s))
    return q


def reference_frames(xyz: np.ndarray, axis: np.ndarray, cfg: RobotConfig) -> np.ndarray:
    """Nozzle frames (n, 3, 3) with +z = ``axis``: the frame of a nozzle pointing straight down with +x
    towards the robot, carried to ``axis`` by the smallest rotation. The field is smooth over every
    direction except straight up (which no bond surface needs), so the roll about the nozzle never jumps."""
    from .geom import frames_from_axis, unit

    d = unit(axis)
    down = np.array([0.0, 0.0, -1.0])
    w = -cfg.T_base_link_robot[:3, 3] + np.r_[np.mean(xyz[:, :2], axis=0), 0.0]
    w = -unit(np.r_[w[:2], 0.0][None])[0] if np.linalg.norm(w[:2]) > 1e-6 else np.array([-1.0, 0.0, 0.0])
    k = np.cross(down, d)
    s = np.linalg.norm(k, axis=1)
    c = d @ down
    k = np.divide(k, s[:, None], out=np.zeros_like(k), where=s[:, None] > 1e-12)
    # Rodrigues: rotate w about k by the angle between down and d
    x = w * c[:, None] + np.cross(k, w) * s[:, None] + k * (k @ w)[:, None] * (1 - c)[:, None]
    return frames_from_axis(d, x)


#: The roll search runs on every COARSE-th waypoint first (~8 mm apart on a 2 mm path).
COARSE = 4


def solve_path(xyz: np.ndarray, quat_xyzw: np.ndarray, cfg: RobotConfig | None = None,
               prefer: int | None = None) -> PathIK:  # fmt: skip
    """IK along nozzle poses (base_link) with one branch, continuous joints and a roll chosen for conditioning.

    Args:
        xyz: (n, 3) nozzle tips, metres. quat_xyzw: (n, 4) nozzle orientations (+z = spray direction).
        prefer: a branch to try alone first (with ``cfg.branch`` "auto"), e.g. the one a nearly equal path
            used in the previous tuning round: a quarter of the work when it still fits, else the full search.
    Raises:
        UnreachableError: no branch reaches every waypoint within the joint limits and singularity margins;
            the message names the first waypoint that fails and why.
    """
    from .geom import matrix_from_quat, quat_from_matrix

    cfg = cfg or RobotConfig()
    if prefer is not None and cfg.branch == "auto" and 0 <= int(prefer) < 8:
        try:
            return solve_path(xyz, quat_xyzw, replace(cfg, branch=str(int(prefer))))
        except UnreachableError:
            pass  # the preferred branch no longer fits: search them all
    n = len(xyz)
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = reference_frames(xyz, matrix_from_quat(quat_xyzw)[:, :, 2], cfg)
    T[:, :3, 3] = xyz
    notes: list[str] = []
    # The roll search (rolls x 8 branches per waypoint) runs on every COARSE-th waypoint first; the chosen roll,
    # interpolated, is then checked at every waypoint (_check_branch). If that fails, the search is refined at
    # the waypoints the interpolated roll left singular (and their neighbours), and only then run everywhere.
    coarse = np.unique(np.r_[np.arange(0, n, COARSE), n - 1])
    todo: list[np.ndarray | None] = [coarse, None] if n > 2 * COARSE else [None]
    bad: list[np.ndarray] = []
    while todo:
        idx = todo.pop(0)
        found, reason, cost = _search(T, xyz, quat_xyzw, cfg, idx, notes, bad)
        if found is not None:
            b, roll, q = found
            quat = quat_from_matrix((T @ _rz(roll))[:, :3, :3])
            return PathIK(q, roll, quat, b, float(np.abs(np.sin(q[:, 4])).min()))
        if idx is coarse and bad:
            near = (np.concatenate(bad)[:, None] + np.arange(-COARSE, COARSE + 1)[None]).ravel()
            todo.insert(0, np.unique(np.r_[coarse, near[(near >= 0) & (near < n)]]))
            bad.clear()
    raise UnreachableError(_explain(reason, cost) + f" (branches: {'; '.join(notes)})", stage="kinematics")


def _search(T: np.ndarray, xyz: np.ndarray, quat_xyzw: np.ndarray, cfg: RobotConfig, idx: np.ndarray | None,
            notes: list[str], bad: list[np.ndarray] | None = None,
            ) -> tuple[tuple[int, np.ndarray, np.ndarray] | None, np.ndarray, np.ndarray]:  # fmt: skip
    """Roll dynamic programme over the waypoints ``idx`` (None: all), then the full check of each branch.

    Returns ((branch, roll (n,), joints (n, 6)) or None, reason and cost of the searched waypoints); ``bad``
    collects the waypoints where a branch's roll, as searched, was singular.
    """
    n = len(xyz)
    sel = np.arange(n) if idx is None else idx
    full = cfg.max_roll_deg >= 180.0  # the whole circle of rolls, wrapping round
    half = int(np.floor(cfg.max_roll_deg / cfg.roll_step_deg))
    rolls = np.deg2rad(np.arange(-half, half + (0 if full else 1)) * cfg.roll_step_deg)
    K = len(rolls)
    noz = T[sel, None] @ _rz(rolls)[None]  # (m, K, 4, 4)
    flange = _inv(cfg.T_base_link_robot) @ noz @ _inv(cfg.T_flange_tool)
    branches = list(range(8)) if cfg.branch == "auto" else [int(cfg.branch)]
    sol = ik(flange.reshape(-1, 4, 4), cfg.model, tuple(branches)).reshape(len(sel), K, 8, 6)
    cost, reason = _costs(sol, flange, cfg)
    cost = cost + cfg.roll_weight * (rolls / np.pi)[None, :, None] ** 2
    max_step = max(int(np.floor(cfg.max_roll_rate_deg / cfg.roll_step_deg)), 1)
    totals, paths = _roll_search(cost[:, :, branches], sol[:, :, branches], xyz[sel], max_step, cfg, full)
    for bi in np.argsort(totals):  # cheapest branch first; the first that passes every check is used
        b = branches[bi]
        roll = np.unwrap(rolls[paths[:, bi]]) if full else rolls[paths[:, bi]]
        if idx is not None:
            roll = np.interp(np.arange(n), sel, roll)
        found = _check_branch(b, totals[bi], roll, T, xyz, quat_xyzw, cfg, notes, bad)
        if found is not None:
            return (b, *found), reason, cost
    return None, reason, cost


def _roll_search(cost: np.ndarray, sol: np.ndarray, xyz: np.ndarray, max_step: int, cfg: RobotConfig,
                 full: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The roll DP (totals (B,), indices (m, B)) over node costs (m, K, B) with the joint-motion costs of ``sol``
    (m, K, B, 6): compiled (:func:`~gluecell.pathplan.ikkernel.roll_search`) or in arrays, the same result."""
    from . import ikkernel

    moving = cfg.motion_weight > 0 and len(xyz) > 1
    if ikkernel.available():
        return ikkernel.roll_search(cost, max_step, 0.05, sol if moving else None, xyz, cfg, full)
    trans = None
    if moving:
        shifts = np.arange(-max_step, max_step + 1)
        trans = motion_costs(sol, xyz, shifts, cfg)
        if not full:  # shifts past the ends are not moves (the DP leaves them inf)
            trans[:, :, :, :] = np.where(np.isfinite(trans), trans, 0.0)
    return roll_dp(cost, max_step, 0.05, trans, wrap=full)


def _check_branch(b: int, total: float, roll_dp: np.ndarray, T: np.ndarray, xyz: np.ndarray, quat_xyzw: np.ndarray,
                  cfg: RobotConfig, notes: list[str],
                  bad: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """(roll, joints) of branch ``b`` if it is feasible along the whole path; else a note says why (and ``bad``
    gets the waypoints where even the unsmoothed roll is singular)."""
    if not np.isfinite(total):
        notes.append(f"{b}: singular/unreachable")
        return None
    q_b, raw = None, None
    # the smoothest roll that stays feasible; when even the searched roll itself (window 1) is singular, the
    # windows between are not tried (a refined search follows)
    for win in (cfg.roll_smooth, 1, cfg.roll_smooth // 2, 5):
        roll = _smooth(roll_dp, win | 1)
        q_b, ok = _solve_at(T, roll, b, cfg)
        if win == 1:
            raw = (roll, q_b)
            if q_b is None:
                break
        elif q_b is not None:
            break
    if q_b is None and raw is not None and raw[1] is not None:
        roll, q_b = raw
    if q_b is None:
        notes.append(f"{b}: singular after roll smoothing")
        if bad is not None:
            bad.append(np.flatnonzero(~ok))
        return None
    q = _fit_limits(q_b, np.deg2rad(np.asarray(cfg.joint_limits_deg, dtype=float)))
    if q is None:
        notes.append(f"{b}: joint limits")
        return None
    qq = np.asarray(quat_xyzw, dtype=float)
    turn = 2 * np.arccos(np.clip(np.abs(np.einsum("ij,ij->i", qq[1:], qq[:-1])), 0, 1))
    # neighbouring poses (< 5 mm, < 5 deg apart): a big joint move between them is a flip, not a transit
    short = (np.linalg.norm(np.diff(xyz, axis=0), axis=1) < 5e-3) & (turn < np.deg2rad(5.0))
    jump = np.abs(np.diff(q, axis=0))[short].max(initial=0.0)
    if jump > np.deg2rad(cfg.max_jump_deg):
        notes.append(f"{b}: {np.degrees(jump):.0f} deg jump")
        return None
    return roll, q


def _rz(a: np.ndarray) -> np.ndarray:
    R = np.tile(np.eye(4), (len(a), 1, 1))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    return R


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Moving average with edge padding (window waypoints, odd)."""
    if window < 3 or len(x) < window:
        return x
    h = window // 2
    ext = np.r_[np.full(h, x[0]), x, np.full(h, x[-1])]
    return np.convolve(ext, np.ones(window) / window, "valid")


def _solve_at(T: np.ndarray, roll: np.ndarray, b: int, cfg: RobotConfig) -> tuple[np.ndarray | None, np.ndarray]:
    """Joints (n, 6) of branch ``b`` at nozzle poses ``T`` rolled by ``roll`` (None if any is infeasible) and
    which waypoints (n,) bool are feasible."""
    flange = _inv(cfg.T_base_link_robot) @ T @ _rz(roll) @ _inv(cfg.T_flange_tool)
    sol = ik(flange, cfg.model, (b,))
    cost, _ = _costs(sol[:, None], flange[:, None], cfg)
    ok = np.isfinite(cost[:, 0, b])
    return (sol[:, b] if ok.all() else None), ok


def _explain(reason: np.ndarray, cost: np.ndarray) -> str:
    """Why no branch works: the first waypoint with no feasible (roll, branch), and the dominant cause."""
    ok_any = np.isfinite(cost).any(axis=(1, 2))
    if ok_any.all():
        return "no IK branch reaches every waypoint without a configuration flip or leaving the joint limits"
    i = int(np.argmin(ok_any))
    r = reason[i]
    why = "outside the arm's reach" if np.all(r == 1) else "too close to a singularity (wrist, elbow or shoulder)"
    return f"waypoint {i} of {len(cost)} is {why} for every nozzle roll and IK branch"
