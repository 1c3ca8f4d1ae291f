"""Rigid registration of a scan to a reference (a style's nominal model or a previous scan).

Coarse then fine:

1. Coarse. Every candidate guess is refined by a short point-to-plane ICP on
   ``coarse_voxel_m`` clouds; the one with the best fitness wins. Where the guesses come from:

   - ``"auto"`` (default): the station prior when ``init`` is given (see :func:`station_init`:
     uppers bottom-up, soles footbed-up, toe to +x within ±15 deg, so ``init`` swept in yaw by
     ±20 deg), otherwise FPFH + RANSAC.
   - ``"fpfh"``: FPFH features matched by RANSAC (open3d), plus that pose turned 180 deg about
     each principal axis of the seen surface, since what a camera sees of a shoe part is nearly
     symmetric toe-to-heel and side-to-side. It needs outward normals (the fused surface has
     them; otherwise they are estimated and turned away from the scan's centroid). ``init``
     candidates are added when given.
   - ``"pca"``: principal axes matched up to sign, rolled about the long axis: for complete
     scans (e.g. a previous full scan); a partial scan biases its axes (23 deg on the boot).
   - ``"init"``: only the ``init`` sweep.

   Why the prior is the default: on 16 parts of the synthetic world (3 D405 views, fused),
   FPFH + RANSAC with half-turns registered 15 (one sole slid 8 mm along its smooth footbed;
   fitness 0.65, so it was rejected; without the half-turns 2 uppers also came out turned
   180 deg), the station prior all 16 (fitness >= 0.95). FPFH remains the fallback with no
   prior; it also aligned the real boot (within 4 mm before ICP, 0.02 mm after). Open3d's RANSAC
   is multi-threaded and then not bit-for-bit repeatable; the prior path is deterministic.
2. Fine: robust (Tukey) point-to-plane ICP from the scan to the reference, shrinking the
   correspondence distance, on ``fine_voxel_m`` clouds.

The result maps reference coordinates into ``base_link``: ``T_base_ref @ p_ref = p_base``. A poor
fit (fitness or RMSE outside the frozen :class:`RegistrationConfig` thresholds) raises
:class:`RegistrationRejected` with a message an operator can act on. Registration is optional:
:func:`register_optional` returns None when no reference is given.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from gluecell.core.validate import as_array, as_points, as_pose

from .errors import PerceptionError

__all__ = [
    "Reference",
    "RegistrationConfig",
    "RegistrationResult",
    "RegistrationError",
    "RegistrationRejected",
    "reference_from_mesh",
    "register",
    "register_optional",
    "pose_error",
    "station_init",
]

COARSE_METHODS: tuple[str, ...] = ("auto", "fpfh", "pca", "init")


class RegistrationError(PerceptionError):
    """Registration could not run (too few points, bad reference)."""


class RegistrationRejected(RegistrationError):
    """The best alignment found is too poor to trust; the scan must not be used."""


@dataclass(frozen=True)
class RegistrationConfig:
    """Frozen parameters and acceptance thresholds of :func:`register`.

    Attributes:
        coarse: "auto" (default: the ``init`` sweep when given, else FPFH), "fpfh", "pca" or "init".
        coarse_voxel_m: voxel size of the clouds the coarse stage works on, metres.
        roll_candidates: turns about the long axis tried per axis-sign combination ("pca").
        yaw_range_deg, yaw_step_deg: when ``init`` is given, it is also tried turned about the
            vertical (base z) axis through the scan's centroid by -range..+range in these steps
            (the station holds the toe within ±15 deg of +x, DESIGN.md).
        fine_voxel_m: voxel size of the scan cloud for the fine ICP, metres.
        fine_max_dist_m: correspondence distances of the fine ICP stages, metres (shrinking).
        icp_iterations: iterations per ICP stage.
        inlier_dist_m: a scan point within this distance of the reference counts for fitness.
        min_fitness: reject below this fraction of scan points having a reference point within
            ``inlier_dist_m``. The scan sees only part of the reference, so fitness is
            measured over scan points (what was seen must be on the model). Correct fits of
            world parts measured >= 0.95; a sole slid 8 mm along its footbed 0.65.
        max_rmse_m: reject above this RMS point-to-plane distance of the inliers, metres
            (correct fits of world parts: 0.5-1.0 mm, the fused D405 noise).
        min_points: fewer scan points than this is an error.
    """

    coarse: str = "auto"
    coarse_voxel_m: float = 0.005
    roll_candidates: int = 4
    yaw_range_deg: float = 20.0
    yaw_step_deg: float = 5.0
    fine_voxel_m: float = 0.0015
    fine_max_dist_m: tuple[float, ...] = (0.004, 0.0015)
    icp_iterations: int = 30
    inlier_dist_m: float = 0.0025
    min_fitness: float = 0.90
    max_rmse_m: float = 0.0015
    min_points: int = 200

    def __post_init__(self) -> None:
        if self.coarse not in COARSE_METHODS:
            raise ValueError(f"coarse must be one of {', '.join(COARSE_METHODS)}, got {self.coarse!r}")
        if not (0 < self.min_fitness <= 1) or self.max_rmse_m <= 0 or self.inlier_dist_m <= 0:
            raise ValueError("min_fitness must be in (0, 1]; max_rmse_m and inlier_dist_m must be > 0")
        if self.roll_candidates < 1 or not self.fine_max_dist_m:
            raise ValueError("roll_candidates must be >= 1 and fine_max_dist_m non-empty")


@dataclass(frozen=True)
class Reference:
    """What a scan is registered to.

    Attributes:
        points: (m, 3) float64, metres, the reference's own frame.
        normals: (m, 3) float64 unit normals (outward).
        name: e.g. the style, for messages.
    """

    points: np.ndarray
    normals: np.ndarray
    name: str = "reference"

    def __post_init__(self) -> None:
        pts = as_points("reference points", self.points, min_rows=10)
        nrm = as_points("reference normals", self.normals, min_rows=10)
        if nrm.shape != pts.shape:
            raise RegistrationError(f"reference normals {nrm.shape} do not match points {pts.shape}")
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "normals", nrm)


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of :func:`register`.

    Attributes:
        T_base_ref: (4, 4) float64, maps reference coordinates into ``base_link``.
        fitness: fraction of scan points within ``inlier_dist_m`` of the reference surface.
        rmse_m: RMS point-to-plane distance of those inliers, metres.
        coarse_fitness: fitness of the best coarse candidate (at the coarse scale).
        method: where the winning coarse guess came from: "init", "fpfh" or "pca".
        diagnostics: timings (ms) and counts.
    """

    T_base_ref: np.ndarray
    fitness: float
    rmse_m: float
    coarse_fitness: float
    method: str
    diagnostics: dict = field(default_factory=dict)


def reference_from_mesh(
    vertices: np.ndarray, faces: np.ndarray, *, spacing_m: float = 0.002, seed: int = 0, name: str = "reference"
) -> Reference:
    """Sample a mesh uniformly by area into a :class:`Reference` (deterministic for ``seed``).

    Args:
        vertices: (v, 3) float64, metres. faces: (f, 3) int64.
        spacing_m: mean point spacing, metres (about ``area / spacing**2`` points). 2 mm is enough
            for point-to-plane ICP (the planes carry the surface between samples) and keeps the
            KD-tree small.
    """
    v = as_points("mesh vertices", vertices, min_rows=3)
    f = as_array("mesh faces", faces, ndim=2, cols=3, dtype=np.int64, min_rows=1)
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1)
    if area2.sum() <= 0:
        raise RegistrationError("reference mesh has zero area")
    n = int(np.clip(0.5 * area2.sum() / spacing_m**2, 1000, 400_000))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(f), size=n, p=area2 / area2.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    pts = np.einsum("ni,nij->nj", w, tri[idx])
    nrm = cross[idx] / np.maximum(area2[idx, None], 1e-300)
    return Reference(points=pts, normals=nrm, name=name)


def _cloud(points: np.ndarray, normals: np.ndarray | None = None):
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.array(points, dtype=np.float64)))
    if normals is not None:
        pc.normals = o3d.utility.Vector3dVector(np.array(normals, dtype=np.float64))
    return pc


def _icp(src, dst, T0: np.ndarray, dists: tuple[float, ...], iters: int, tukey_k: float | None):
    import open3d as o3d

    reg = o3d.pipelines.registration
    est = (
        reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=tukey_k))
        if tukey_k
        else (reg.TransformationEstimationPointToPlane())
    )
    T = T0
    res = None
    for d in dists:
        res = reg.registration_icp(src, dst, d, T, est, reg.ICPConvergenceCriteria(1e-5, 1e-5, iters))
        T = res.transformation
    return np.asarray(T), res


def _axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = points.mean(axis=0)
    _, vec = np.linalg.eigh(np.cov((points - c).T))
    vec = vec[:, ::-1].copy()  # columns: long, middle, short axis
    if np.linalg.det(vec) < 0:
        vec[:, 2] *= -1  # right-handed, so that matched axes give a proper rotation
    return c, vec


def _pca_candidates(scan: np.ndarray, ref: np.ndarray, rolls: int) -> list[np.ndarray]:
    """Initial T_ref_scan guesses: principal axes matched up to sign, turned about the long axis."""
    cs, As = _axes(scan)
    cr, Ar = _axes(ref)
    out = []
    for sx, sy in itertools.product((1.0, -1.0), repeat=2):
        S = np.diag([sx, sy, sx * sy])  # det(S) = 1 keeps the result a proper rotation
        for k in range(rolls):
            a = 2 * np.pi * k / rolls
            roll = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
            R = Ar @ roll @ S @ As.T
            T = np.eye(4)
            T[:3, :3] = R
            T[:3, 3] = cr - R @ cs
            out.append(T)
    return out


def _fpfh_candidate(src, dst, voxel: float, seed: int = 0) -> np.ndarray:
    import open3d as o3d

    reg = o3d.pipelines.registration
    o3d.utility.random.seed(seed)
    param = o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100)
    fs, fd = reg.compute_fpfh_feature(src, param), reg.compute_fpfh_feature(dst, param)
    # no mutual filter: with a partial scan few matches are mutual (measured: 174 of 1800)
    res = reg.registration_ransac_based_on_feature_matching(
        src,
        dst,
        fs,
        fd,
        False,
        1.5 * voxel,
        reg.TransformationEstimationPointToPoint(False),
        3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(1.5 * voxel)],
        reg.RANSACConvergenceCriteria(20000, 0.999),
    )
    return np.asarray(res.transformation)


def _with_flips(T_ref_scan: np.ndarray, scan_points: np.ndarray) -> list[np.ndarray]:
    """``T`` and ``T`` turned 180 deg about each principal axis of the mapped scan (through its centroid).

    What a camera sees of a shoe part is nearly symmetric end to end (toe vs heel) and side to
    side, so feature matching can land on a half-turned pose; trying the three half-turns of the
    seen surface about itself catches that.
    """
    mapped = scan_points @ T_ref_scan[:3, :3].T + T_ref_scan[:3, 3]
    c, A = _axes(mapped)
    out = [T_ref_scan]
    for k in range(3):
        F = np.eye(4)
        F[:3, :3] = A @ np.diag([1.0 if i == k else -1.0 for i in range(3)]) @ A.T
        F[:3, 3] = c - F[:3, :3] @ c
        out.append(F @ T_ref_scan)
    return out


def _yaw_sweep(init_ref_scan: np.ndarray, scan_points: np.ndarray, cfg: RegistrationConfig) -> list[np.ndarray]:
    """``init`` turned about the vertical axis through the scan centroid (as T_ref_scan guesses)."""
    c = scan_points.mean(axis=0)
    n = int(np.floor(cfg.yaw_range_deg / cfg.yaw_step_deg)) if cfg.yaw_step_deg > 0 else 0
    out = []
    for k in sorted(range(-n, n + 1), key=abs):
        a = np.radians(k * cfg.yaw_step_deg)
        Rz = np.eye(4)
        Rz[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        Rz[:3, 3] = c - Rz[:3, :3] @ c
        out.append(init_ref_scan @ np.linalg.inv(Rz))
    return out


def _coarse(src, dst, cfg: RegistrationConfig, init_ref_scan: np.ndarray | None) -> tuple[np.ndarray, float, int, str]:
    """Best coarse T_ref_scan over all candidates, by fitness at ``0.6 * coarse_voxel_m`` (then RMSE)."""
    v = cfg.coarse_voxel_m
    # (guess, ICP distances): a prior is good to a few mm, so its ICP starts narrow and cannot
    # pair the seen top with the unseen underside; global guesses start wide.
    cands: list[tuple[np.ndarray, tuple[float, ...], str]] = []
    pts = np.asarray(src.points)
    if init_ref_scan is not None:
        cands += [(T, (3 * v, 1.5 * v, 0.6 * v), "init") for T in _yaw_sweep(init_ref_scan, pts, cfg)]
    wide = (8 * v, 3 * v, 1.5 * v, 0.6 * v)
    if cfg.coarse == "pca":
        cands += [(T, wide, "pca") for T in _pca_candidates(pts, np.asarray(dst.points), cfg.roll_candidates)]
    elif cfg.coarse == "fpfh" or (cfg.coarse == "auto" and not cands):
        cands += [(T, wide, "fpfh") for T in _with_flips(_fpfh_candidate(src, dst, v), pts)]
    if not cands:
        raise RegistrationError(f"coarse method {cfg.coarse!r} needs an initial transform (init=...)")
    best = (np.eye(4), -1.0, np.inf, "")
    for T0, dists, kind in cands:
        T, res = _icp(src, dst, T0, dists, 15, None)
        if (res.fitness, -res.inlier_rmse) > (best[1], -best[2]):
            best = (T, res.fitness, res.inlier_rmse, kind)
    return best[0], best[1], len(cands), best[3]


def register(
    scan_points: np.ndarray,
    reference: Reference,
    cfg: RegistrationConfig | None = None,
    *,
    scan_normals: np.ndarray | None = None,
    init: np.ndarray | None = None,
) -> RegistrationResult:
    """Register a scan to a reference: coarse global alignment, then fine point-to-plane ICP.

    Args:
        scan_points: (n, 3) float64, metres, ``base_link`` (a fused or cleaned scan).
        reference: the nominal model or previous scan, in its own frame.
        scan_normals: optional (n, 3) outward unit normals of the scan (e.g. from fusion);
            estimated (and turned away from the scan's centroid) when None.
        cfg: method and thresholds.
        init: optional (4, 4) guess of ``T_base_ref`` (e.g. :func:`station_init`); it is tried
            with a sweep of turns about the vertical axis, beside the coarse method's candidates.

    Returns:
        The accepted registration.

    Raises:
        RegistrationRejected: fitness below ``min_fitness`` or RMSE above ``max_rmse_m``.
        RegistrationError: too few scan points.
    """
    cfg = cfg or RegistrationConfig()
    pts = as_points("scan_points", scan_points)
    if len(pts) < cfg.min_points:
        raise RegistrationError(f"scan has {len(pts)} points, registration needs >= {cfg.min_points}")
    init_rs = None if init is None else np.linalg.inv(as_pose("init", init))
    t0 = time.perf_counter()
    scan = _scan_cloud(pts, scan_normals, cfg.coarse_voxel_m)
    ref = _cloud(reference.points, reference.normals)
    src_c, dst_c = scan.voxel_down_sample(cfg.coarse_voxel_m), ref.voxel_down_sample(cfg.coarse_voxel_m)
    src_c.normalize_normals()
    dst_c.normalize_normals()
    T_c, coarse_fit, n_cand, kind = _coarse(src_c, dst_c, cfg, init_rs)
    t1 = time.perf_counter()
    src_f = scan.voxel_down_sample(cfg.fine_voxel_m)
    T_rs, _ = _icp(src_f, ref, T_c, cfg.fine_max_dist_m, cfg.icp_iterations, cfg.fine_max_dist_m[-1])
    fitness, rmse = _score(np.asarray(src_f.points), reference, T_rs, cfg.inlier_dist_m)
    t2 = time.perf_counter()
    result = RegistrationResult(
        T_base_ref=np.linalg.inv(T_rs),
        fitness=fitness,
        rmse_m=rmse,
        coarse_fitness=float(coarse_fit),
        method=kind,
        diagnostics={
            "candidates": n_cand,
            "scan_points": len(src_f.points),
            "coarse_ms": (t1 - t0) * 1e3,
            "fine_ms": (t2 - t1) * 1e3,
            "total_ms": (t2 - t0) * 1e3,
        },
    )
    _accept(result, cfg, reference.name)
    return result


def _scan_cloud(pts: np.ndarray, normals: np.ndarray | None, voxel: float):
    import open3d as o3d

    if normals is not None:
        nrm = as_points("scan_normals", normals)
        if nrm.shape != pts.shape:
            raise RegistrationError(f"scan_normals {nrm.shape} do not match scan points {pts.shape}")
        return _cloud(pts, nrm)
    pc = _cloud(pts)
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=3 * voxel, max_nn=30))
    n = np.asarray(pc.normals)
    flip = np.sum((pts - pts.mean(axis=0)) * n, axis=1) < 0
    n[flip] *= -1
    pc.normals = o3d.utility.Vector3dVector(n)
    return pc


def _score(src: np.ndarray, ref: Reference, T_ref_scan: np.ndarray, dist: float) -> tuple[float, float]:
    """Fitness and inlier RMS, both on point-to-plane distances, so the reference's sampling
    density does not count: a scan point is an inlier when its nearest reference point lies
    within ``2 * dist`` and its distance to that point's tangent plane is below ``dist``.

    Returns:
        (fraction of scan points that are inliers, RMS plane distance of the inliers in metres).
    """
    from scipy.spatial import cKDTree

    p = src @ T_ref_scan[:3, :3].T + T_ref_scan[:3, 3]
    d, idx = cKDTree(ref.points).query(p, k=1, distance_upper_bound=2 * dist)
    near = np.isfinite(d)
    plane = np.full(len(p), np.inf)
    plane[near] = np.abs(np.sum((p[near] - ref.points[idx[near]]) * ref.normals[idx[near]], axis=1))
    ok = plane < dist
    if not ok.any():
        return 0.0, float("inf")
    return float(ok.mean()), float(np.sqrt(np.mean(plane[ok] ** 2)))


def _accept(res: RegistrationResult, cfg: RegistrationConfig, name: str) -> None:
    problems = []
    if res.fitness < cfg.min_fitness:
        problems.append(f"fitness {res.fitness:.2f} < {cfg.min_fitness:.2f}")
    if res.rmse_m > cfg.max_rmse_m:
        problems.append(f"RMSE {res.rmse_m * 1e3:.2f} mm > {cfg.max_rmse_m * 1e3:.2f} mm")
    if problems:
        raise RegistrationRejected(
            f"scan does not match {name}: {'; '.join(problems)}. Wrong style on the fixture, the part moved "
            "during the scan, or a camera is out of calibration; check the part and rescan",
            stage="registration",
            fitness=res.fitness,
            rmse_m=res.rmse_m,
            partial=res,
        )


def register_optional(
    scan_points: np.ndarray, reference: Reference | None, cfg: RegistrationConfig | None = None, **kw: object
) -> RegistrationResult | None:
    """:func:`register` when a reference is given; None when there is none (new styles have no CAD)."""
    if reference is None:
        return None
    return register(scan_points, reference, cfg, **kw)  # type: ignore[arg-type]


def pose_error(T_est: np.ndarray, T_true: np.ndarray, points: np.ndarray | None = None) -> tuple[float, float]:
    """Difference of two poses: (translation in mm, rotation angle in degrees).

    Args:
        T_est, T_true: (4, 4) poses mapping the same source frame into the same target frame.
        points: optional (n, 3) points of the source frame; when given, the translation error
            is the RMS displacement of these points (mm) instead of the origin's displacement.
    """
    A, B = as_pose("T_est", T_est), as_pose("T_true", T_true)
    dR = A[:3, :3] @ B[:3, :3].T
    ang = float(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1.0, 1.0))))
    if points is None:
        return float(np.linalg.norm(A[:3, 3] - B[:3, 3]) * 1e3), ang
    p = as_points("points", points)
    d = (p @ A[:3, :3].T + A[:3, 3]) - (p @ B[:3, :3].T + B[:3, 3])
    return float(np.sqrt(np.mean(np.sum(d**2, axis=1))) * 1e3), ang


def station_init(part: str, scan_points: np.ndarray, reference: Reference) -> np.ndarray:
    """Nominal ``T_base_ref`` of a part on its station, for :func:`register`'s ``init``.

    Convention for nominal models (the part frame): x towards the toe, z out of the bottom of the
    last (uppers) or out of the footbed (soles). On the stations (DESIGN.md) the upper lies
    bottom-up, so its frame is turned 180 deg about x; the sole lies footbed-up, so its frame is
    upright. The reference is then shifted so that its bounding-box centre (x, y) and its top
    (the highest point, which every camera above the station sees) meet the scan's. The toe
    points to +x within ±15 deg, which the yaw sweep of :func:`register` covers.

    Args:
        part: "upper" or "sole".
        scan_points: (n, 3) float64 scan of the part, metres, ``base_link``.
        reference: the part's nominal model in the part frame.
    """
    p = as_points("scan_points", scan_points)
    T = np.eye(4)
    if part == "upper":
        T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    elif part != "sole":
        raise RegistrationError(f"part must be 'upper' or 'sole', got {part!r}")
    q = reference.points @ T[:3, :3].T
    plo, phi, qlo, qhi = p.min(axis=0), p.max(axis=0), q.min(axis=0), q.max(axis=0)
    T[:2, 3] = (plo[:2] + phi[:2]) / 2 - (qlo[:2] + qhi[:2]) / 2
    T[2, 3] = phi[2] - qhi[2]
    return T
