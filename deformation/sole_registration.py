"""Registration of the free sole's scan onto the attached pair's scan: rigid pose, then CPD (:mod:`.nonrigid`).

See :mod:`.nonrigid` for the method; this module holds the rigid stage (flip, tread plane, outer-wall ICP) and
:func:`register_sole`. All geometry is metres, ``base_link``; the free sole at the sole station, the result
at the upper station.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from .attach_pose import umeyama
from .errors import NonFiniteScanError, RegistrationError, TooFewPointsError
from .nonrigid import MIN_CLOUD_POINTS, CPDConfig, CPDResult, check_cloud, cpd_nonrigid
from .reference import apply_T
from .sections import outline_frame

__all__ = ["RegistrationConfig", "SoleRegistration", "outer_wall_mask", "register_sole", "rigid_init", "tread_plane"]


@dataclass(frozen=True)
class RegistrationConfig:
    """Parameters of :func:`register_sole` (metres).

    Attributes:
        cpd: the non-rigid stage.
        icp_iterations: rigid point-to-plane ICP iterations after the coarse flip.
        icp_trim_m: (start, end) correspondence distance of the ICP, shrinking linearly (the coarse flip is
            within ~10 mm; the scans' noise is ~0.3 mm).
        crop_m: attached-scan points farther than this from the rigidly placed sole are not data (the upper).
        wall_normal_min: a free-sole point is on the outer wall when its normal's outward plan component is
            at least this and ``|n_z| < wall_nz_max``.
        wall_nz_max: see ``wall_normal_min``.
        max_rms_m: rigid fit worse than this (rms of the trimmed correspondences) is a :class:`RegistrationError`.
        tread_plane: put the free sole's tray plane onto the attached pair's tread plane (:func:`tread_plane`)
            and let the ICP only turn about its normal and slide along it. The outer walls are near vertical,
            so point-to-plane ICP alone holds tilt and height weakly (measured: up to ~2 degrees, 10 mm at the toe).
        tread_height: also take the height from the tread (else the ICP slides along ``n_up`` too).
        tray_gap_m: without a measured tray plane, the tray is taken this far under the free scan's lowest
            point (perception's cleaning drops points within ``CleanConfig.plane_dist_m`` = 3 mm of it).
    """

    cpd: CPDConfig = field(default_factory=lambda: CPDConfig(tangent_weight=0.1))
    icp_iterations: int = 30
    icp_trim_m: tuple[float, float] = (0.010, 0.002)
    crop_m: float = 0.003
    wall_normal_min: float = 0.3
    wall_nz_max: float = 0.8
    max_rms_m: float = 0.0015
    tread_plane: bool = True
    tread_height: bool = True
    tray_gap_m: float = 0.003


@dataclass(frozen=True)
class SoleRegistration:
    """The free sole's scan registered onto the attached pair (upper station, ``base_link``, metres).

    Attributes:
        T_rigid: (4, 4) rigid pose sole station -> upper station: flip + ICP, then the best rigid motion of
            the CPD result (its rigid share), so that ``displacement`` has no rigid part.
        rigid_points: (n, 3) free-sole points moved by ``T_rigid``.
        displacement: (n, 3) non-rigid displacement of each free-sole point (after the rigid pose).
        rigid_icp_points: (n, 3) free-sole points moved by the ICP pose alone (before CPD).
        T_icp: (4, 4) the ICP pose; ``cpd.displacement`` applies to points moved by it (see :meth:`apply`).
        deformed: (n, 3) ``rigid_points + displacement``: the measured pressed sole.
        fitted: (n,) bool, the points the fit used (outer wall).
        residual_m: (n,) distance of each deformed point to the attached scan (large where it is hidden).
        cpd: the fitted field (in the upper station frame).
        rigid_rms_m: rms of the rigid fit over its trimmed correspondences.
    """

    T_rigid: np.ndarray
    rigid_points: np.ndarray
    displacement: np.ndarray
    rigid_icp_points: np.ndarray
    T_icp: np.ndarray
    deformed: np.ndarray
    fitted: np.ndarray
    residual_m: np.ndarray
    cpd: CPDResult
    rigid_rms_m: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Carry (n, 3) free-sole-station points through the registration (ICP pose, then the CPD field)."""
        moved = apply_T(self.T_icp, np.asarray(points, dtype=np.float64))
        return moved + self.cpd.displacement(moved)


def outer_wall_mask(points: np.ndarray, normals: np.ndarray, cfg: RegistrationConfig | None = None) -> np.ndarray:
    """(n,) bool: free-sole points on its outer wall (normal facing out of the outline, not up or down)."""
    cfg = cfg or RegistrationConfig()
    frame = outline_frame(points)
    theta, _ = frame.polar(points)
    out = frame.normal(theta)
    return (np.abs(normals[:, 2]) < cfg.wall_nz_max) & ((normals[:, :2] * out).sum(1) >= cfg.wall_normal_min)


def _coarse(free: np.ndarray, attached: np.ndarray) -> np.ndarray:
    """Flip about the free sole's long axis, plan centres and toe axes matched, tread to the attached top."""
    ff = outline_frame(free)
    height = float(np.ptp(free[:, 2]))
    top = attached[attached[:, 2] > attached[:, 2].max() - height]
    fa = outline_frame(top)
    ax = np.array([ff.u[0], ff.u[1], 0.0])
    R_flip = 2.0 * np.outer(ax, ax) - np.eye(3)
    yaw = fa.yaw - ff.yaw
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R_flip
    c_f = np.array([*ff.centre, 0.0])
    moved_z = ((free - c_f) @ R.T)[:, 2]
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.array([*fa.centre, attached[:, 2].max() - moved_z.max()]) - R @ c_f
    return T


def rigid_init(
    free: np.ndarray,
    wall: np.ndarray,
    attached: np.ndarray,
    attached_normals: np.ndarray,
    cfg: RegistrationConfig,
    tray: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Rigid pose of the free sole on the attached pair: coarse flip, tray onto tread, trimmed point-to-plane ICP.

    Args:
        free: (n, 3) free-sole points (sole station). wall: (n,) bool, the outer-wall points used by the ICP.
        attached, attached_normals: (N, 3) attached-pair points and unit normals (upper station).
        cfg: ICP settings.
        tray: (4,) ``[nx, ny, nz, d]`` the plane the free sole rested on; None: all six degrees by ICP.

    Returns:
        ((4, 4) rigid pose, rms of the final trimmed correspondences in metres).
    """
    T = _coarse(free, attached)
    tread = tread_plane(attached, attached_normals, float(np.ptp(free[:, 2]))) if tray is not None else None
    basis = None
    if tread is not None:
        T = _onto_tread(T, free, tray, tread)
        n_up = tread[0]
        e1 = np.cross(n_up, [1.0, 0.0, 0.0] if abs(n_up[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        basis = (n_up, e1, np.cross(n_up, e1)) + (() if cfg.tread_height else (n_up,))
    src = free[wall]
    tree = cKDTree(attached)
    rms = np.inf
    for i in range(cfg.icp_iterations):
        trim = np.interp(i, [0, max(cfg.icp_iterations - 1, 1)], cfg.icp_trim_m)
        p = apply_T(T, src)
        d, j = tree.query(p, distance_upper_bound=trim)
        ok = np.isfinite(d)
        if ok.sum() < 6:
            raise RegistrationError(
                "the free sole's outer wall found no partner in the attached scan: is it the same pair?",
                stage="deformation",
            )
        p, q, n = p[ok], attached[j[ok]], attached_normals[j[ok]]
        r = ((p - q) * n).sum(1)
        J = np.column_stack([np.cross(p, n), n])
        if basis is not None:  # tilt and height held by the tread: turn about n_up, slide along the plane
            J = np.column_stack([J[:, :3] @ basis[0], *(J[:, 3:] @ e for e in basis[1:])])
        x = np.linalg.lstsq(J.T @ J + 1e-9 * np.eye(J.shape[1]), -J.T @ r, rcond=None)[0]
        if basis is not None:
            x = np.concatenate([x[0] * basis[0], sum(xi * e for xi, e in zip(x[1:], basis[1:]))])
        dT = np.eye(4)
        dT[:3, :3] = _rodrigues(x[:3])
        dT[:3, 3] = x[3:]
        T = dT @ T
        rms = float(np.sqrt(np.mean(r**2)))
    return T, rms


def tread_plane(
    attached: np.ndarray, normals: np.ndarray, height: float, smooth_m: float = 0.003
) -> tuple[np.ndarray, np.ndarray] | None:
    """The plane touching the attached pair's tread from above: ((3,) unit upward normal, (3,) point), or None.

    The free sole rests on its level tray; turned over onto the upper, that tray plane becomes the plane
    that touches the tread from above (the sole's shape changes by ~1 mm, under 0.5 degrees of tilt). It is
    the upper hull plane of the top-facing points: a small linear programme (minimise the plane's mean height
    over them, never below one of them).

    Args:
        attached, normals: (N, 3) attached-pair points and unit normals. height: the sole's height, metres.
        smooth_m: plan radius of the local mean height taken before the hull (0: raw points). The hull of
            raw points touches their noise peaks (measured 0-0.7 mm above the true tread); 3 mm is about
            two scan voxels.
    """
    from scipy.optimize import linprog

    top = (normals[:, 2] > 0.7) & (attached[:, 2] > attached[:, 2].max() - height)
    if top.sum() < MIN_CLOUD_POINTS:
        return None
    P = attached[top]
    if smooth_m > 0:  # the hull of noisy points sits on their noise peaks: hull the local means instead
        nb = cKDTree(P[:, :2]).query_ball_point(P[:, :2], smooth_m)
        P = np.column_stack([P[:, :2], [P[i, 2].mean() for i in nb]])
    c = P.mean(axis=0)
    x, y, z = (P - c).T
    A = -np.column_stack([x, y, np.ones(len(P))])
    res = linprog([x.sum(), y.sum(), float(len(P))], A_ub=A, b_ub=-z, bounds=[(None, None)] * 3, method="highs")
    if not res.success:
        return None
    n = np.array([-res.x[0], -res.x[1], 1.0])
    return n / np.linalg.norm(n), c + np.array([0.0, 0.0, res.x[2]])


def _onto_tread(T: np.ndarray, free: np.ndarray, tray: np.ndarray, tread: tuple) -> np.ndarray:
    """Turn and lift the pose so that the free sole's tray plane lands on the attached pair's tread plane.

    Args:
        T: (4, 4) pose. free: (n, 3) free-sole points. tray: (4,) ``[nx, ny, nz, d]`` tray plane, nz > 0.
        tread: (normal, point) of the tread plane (:func:`tread_plane`).
    """
    n_up, q = tread
    n_t = tray[:3] / np.linalg.norm(tray[:3])
    d = T[:3, :3] @ -n_t  # the tread faces down onto the tray; turned over it must face n_up
    axis = np.cross(d, n_up)
    ang = float(np.arctan2(np.linalg.norm(axis), d @ n_up))
    m = apply_T(T, free).mean(axis=0)
    L = np.eye(4)
    if ang > 1e-9:
        R = _rodrigues(axis / np.linalg.norm(axis) * ang)
        L[:3, :3], L[:3, 3] = R, m - R @ m
    T = L @ T
    c = free.mean(axis=0)
    p0 = apply_T(T, c - (n_t @ c + tray[3]) / (n_t @ n_t) * n_t)  # the free centroid's foot on the tray
    T = T.copy()
    T[:3, 3] += n_up * float(n_up @ (q - p0))
    return T


def _rodrigues(w: np.ndarray) -> np.ndarray:
    th = float(np.linalg.norm(w))
    if th < 1e-12:
        return np.eye(3)
    k = w / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def register_sole(
    free_points: np.ndarray,
    free_normals: np.ndarray,
    attached_points: np.ndarray,
    attached_normals: np.ndarray,
    cfg: RegistrationConfig | None = None,
    *,
    tray_plane: np.ndarray | None = None,
) -> SoleRegistration:
    """Register the free sole's scan onto the attached pair's scan: rigid flip + ICP, then CPD.

    Args:
        free_points, free_normals: (n, 3) float64 free sole scan (footbed up, sole station), metres, unit normals.
        attached_points, attached_normals: (N, 3) float64 attached pair scan (upper station).
        cfg: settings.
        tray_plane: (4,) ``[nx, ny, nz, d]`` (``n . p + d = 0``, nz > 0) the free sole's tray as perception
            fitted it (``PartScan.diagnostics["support_planes"][-1]``); None: level, under the lowest point.

    Returns:
        the registration (per-point displacement, deformed sole, residual).

    Raises:
        NonFiniteScanError, TooFewPointsError: bad inputs. RegistrationError: no rigid fit.
    """
    cfg = cfg or RegistrationConfig()
    free = check_cloud("free sole scan", free_points)
    att = check_cloud("attached pair scan", attached_points)
    fn = check_cloud("free sole normals", free_normals, 1)
    an = check_cloud("attached pair normals", attached_normals, 1)
    if fn.shape != free.shape or an.shape != att.shape:
        raise TooFewPointsError("normals must match their points one to one", stage="deformation")
    wall = outer_wall_mask(free, fn, cfg)
    if wall.sum() < MIN_CLOUD_POINTS:
        raise TooFewPointsError(
            f"free sole scan: only {int(wall.sum())} outer-wall points (>= {MIN_CLOUD_POINTS} needed)",
            stage="deformation",
        )
    tray = None
    if cfg.tread_plane:
        tray = np.array([0.0, 0.0, 1.0, cfg.tray_gap_m - free[:, 2].min()])
        if tray_plane is not None:
            tray = np.asarray(tray_plane, dtype=np.float64).reshape(4)
            if not np.all(np.isfinite(tray)) or tray[2] <= 0.5 * np.linalg.norm(tray[:3]):
                raise NonFiniteScanError(f"tray_plane: need a finite, near-horizontal [nx, ny, nz, d], got {tray}")
    T, rms = rigid_init(free, wall, att, an, cfg, tray)
    if rms > cfg.max_rms_m:
        raise RegistrationError(
            f"rigid fit of the sole's outer wall is {rms * 1e3:.2f} mm rms (> {cfg.max_rms_m * 1e3:.2f} mm)",
            stage="deformation",
            rms_m=rms,
        )
    rigid = icp_points = apply_T(T, free)
    near = cKDTree(rigid[wall]).query(att, distance_upper_bound=cfg.crop_m)[0]
    data = att[np.isfinite(near)]
    fn_rigid = fn @ T[:3, :3].T
    data = check_cloud("attached points near the sole", data)
    res = cpd_nonrigid(rigid[wall], data, cfg.cpd, normals=fn_rigid[wall])
    deformed = rigid + res.displacement(rigid)
    # the field also corrects what the rigid fit left (its weakly held tilt): move that part into the pose, so
    # that ``displacement`` is the non-rigid part only
    R, t, _ = umeyama(rigid, deformed, with_scale=False)
    dT = np.eye(4)
    dT[:3, :3], dT[:3, 3] = R, t
    T_icp, T = T, dT @ T
    rigid = apply_T(T, free)
    disp = deformed - rigid
    resid = cKDTree(att).query(deformed)[0]
    return SoleRegistration(
        T_rigid=T,
        rigid_points=rigid,
        displacement=disp,
        rigid_icp_points=icp_points,
        T_icp=T_icp,
        deformed=deformed,
        fitted=wall,
        residual_m=resid,
        cpd=res,
        rigid_rms_m=rms,
    )
