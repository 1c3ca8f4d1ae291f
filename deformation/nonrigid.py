"""Non-rigid registration of the free sole's scan onto the scan of the attached pair (measured deformation).

After pressing, the pair stands at the upper station with the sole on top (tread up). The cameras there see
the sole's *outer* wall and its tread; the footbed and inner wall are pressed against the upper and hidden.
The free sole's scan (footbed up, sole station) sees the footbed, the inner wall, the rim and part of the
outer wall. The two share the outer wall (and its edges), so the registration is fitted on the free scan's
outer-wall points only and the motion is carried to every other point by a smooth field:

1. **Rigid init** (``sole_registration.rigid_init``): the half turn about the sole's long axis (the attach
   flip of :mod:`.attach_pose`), the outline centres and toe directions matched in plan; the tray plane the
   free sole lay on is put onto the plane touching the attached pair's tread from above
   (``sole_registration.tread_plane``: tilt and height); then trimmed point-to-plane ICP of the outer wall
   for the rest (turn about the tread's normal, slide along it). Near-vertical walls alone hold tilt and
   height weakly (measured up to 10 mm at the toe).
2. **CPD** (:func:`cpd_nonrigid`, Myronenko & Song 2010, "Point set registration: coherent point drift",
   IEEE TPAMI 32(12)): the moved sole points are Gaussian-mixture centroids, the attached scan is the data,
   a uniform outlier term (weight ``w``) absorbs the tread and the upper. The displacement field is a sum of
   Gaussian kernels of width ``beta`` on ``n_ctrl`` control points (farthest-point samples of the fitted
   points) rather than on every point: the M-step is a ``K x K`` solve (the low-rank variant of the paper's
   section 4.2 uses the kernel's eigenvectors; control points do the same job and evaluate the field
   anywhere). Iterations stop when the variance ``sigma^2`` changes by less than ``tol`` (relative), at a
   floor set by the sensor noise, or at ``max_iter`` / ``max_seconds`` (reported as not converged).

This module holds the CPD; :mod:`.sole_registration` the rigid stage and :func:`register_sole`, which runs
both. All geometry is metres, ``base_link``; the free sole at the sole station, the result at the upper station.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import NonFiniteScanError, TooFewPointsError

__all__ = [
    "CPDConfig",
    "CPDResult",
    "MIN_CLOUD_POINTS",
    "check_cloud",
    "cpd_nonrigid",
    "farthest_point_sample",
]

#: Fewest points a cloud given to the registration may have (the outer wall alone of a small sole has ~1 k).
MIN_CLOUD_POINTS = 200


@dataclass(frozen=True)
class CPDConfig:
    """Parameters of :func:`cpd_nonrigid` (lengths in metres; ``lam`` in the normalised units of the paper).

    Attributes:
        beta_m: width of the Gaussian motion kernel. Pressing bends and stretches the sole over tens of
            millimetres (the world's non-rigid part is smooth along the outline); 50 mm measured better than
            25 mm (the field followed the two scans' different coverage of the wall).
        lam: smoothness weight lambda on data scaled to unit RMS radius (~90 mm for a sole). In the paper's
            Bayesian reading ``1/lam`` is the prior variance of the field: the paper's 2-3 allows ~60 mm of
            motion and, as sigma shrinks to the noise, let the kernel weights blow up (the unfitted footbed
            moved 8-20 mm on a world pair); 2e4 is a ~0.6 mm prior, the size of the world's non-rigid part.
        w: outlier weight of the uniform component (the tread and the upper are seen only in the attached
            scan, the footbed only in the free one: a large share of each cloud has no partner).
        n_ctrl: number of kernel centres (control points).
        max_points_y, max_points_x: clouds are thinned (farthest points) to at most this many.
        max_iter: iteration bound; max_seconds: wall-time bound.
        tol: relative change of ``sigma^2`` below which it has converged.
        sigma_floor_m: ``sigma`` is not driven below this (0.2 mm: D405 noise at 150-250 mm, FACTS.md).
        sigma_init_m: starting ``sigma``; None starts from the paper's global value (all pairs). After a
            rigid init good to a few mm, a global start (~100 mm here) lets partly overlapping clouds pull
            their centroids together before the shape is resolved.
        tangent_weight: weight of the residual's component along the surface against the one along the
            moving point's normal (1 = the paper's CPD; needs ``normals``). Two scans that see different
            parts of the same surface pull points along it (the mixture spreads over what the data
            covers); a small weight keeps the fit to the surface's normal offset, which both scans share.
    """

    beta_m: float = 0.05
    lam: float = 2.0e4
    w: float = 0.5
    n_ctrl: int = 160
    max_points_y: int = 1500
    max_points_x: int = 3000
    max_iter: int = 100
    max_seconds: float = 20.0
    tol: float = 1e-4
    sigma_floor_m: float = 2e-4
    sigma_init_m: float | None = 0.003
    tangent_weight: float = 1.0


@dataclass(frozen=True)
class CPDResult:
    """A fitted CPD displacement field ``v(y) = sum_k g(y, c_k) W_k`` (metres).

    Attributes:
        ctrl: (K, 3) control points, metres (in the frame of the moving points).
        W: (K, 3) kernel weights, metres.
        beta_m: kernel width, metres.
        sigma_m: final mixture standard deviation, metres.
        iterations: iterations run.
        converged: True when it stopped on ``tol`` or the sigma floor (not on a bound).
        p1: (M,) responsibility sum of each fitted point (how much data it explains; 0 = unseen).
        seconds: wall time.
        points: (M, 3) the (thinned) moving points that were fitted, metres, before displacement.
    """

    ctrl: np.ndarray
    W: np.ndarray
    beta_m: float
    sigma_m: float
    iterations: int
    converged: bool
    p1: np.ndarray
    seconds: float
    points: np.ndarray

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) displacement of (n, 3) points (same frame as the fitted moving points), metres."""
        return _kernel(np.asarray(points, dtype=np.float64), self.ctrl, self.beta_m) @ self.W


def check_cloud(name: str, points: np.ndarray, min_points: int = MIN_CLOUD_POINTS) -> np.ndarray:
    """``points`` as (n, 3) float64; :class:`NonFiniteScanError` for NaN/inf, :class:`TooFewPointsError` if short."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise TooFewPointsError(f"{name}: points must be (n, 3), got {p.shape}", stage="deformation")
    if not np.all(np.isfinite(p)):
        raise NonFiniteScanError(f"{name}: points contain NaN or inf", stage="deformation")
    if len(p) < min_points:
        raise TooFewPointsError(
            f"{name}: {len(p)} points, at least {min_points} are needed for a registration: rescan",
            stage="deformation",
            n_points=len(p),
        )
    return p


def farthest_point_sample(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(min(k, n),) int64 indices of a farthest-point sample of (n, 3) points (even cover, deterministic)."""
    n = len(points)
    if k >= n:
        return np.arange(n)
    idx = np.empty(k, dtype=np.int64)
    idx[0] = np.random.default_rng(seed).integers(n)
    d = np.linalg.norm(points - points[idx[0]], axis=1)
    for i in range(1, k):
        idx[i] = int(np.argmax(d))
        d = np.minimum(d, np.linalg.norm(points - points[idx[i]], axis=1))
    return idx


def _kernel(a: np.ndarray, b: np.ndarray, beta: float) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(d2, 0.0) / (2.0 * beta * beta))


def _estep(X: np.ndarray, T: np.ndarray, sigma2: float, w: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior of the mixture: (P1 (M,), Pt1 (N,), PX (M, 3))."""
    M, N = len(T), len(X)
    d2 = (T * T).sum(1)[:, None] + (X * X).sum(1)[None, :] - 2.0 * T @ X.T
    P = np.exp(-np.maximum(d2, 0.0) / (2.0 * sigma2))
    c = (2.0 * np.pi * sigma2) ** 1.5 * w / (1.0 - w) * M / N
    P /= P.sum(axis=0, keepdims=True) + c
    return P.sum(axis=1), P.sum(axis=0), P @ X


def _mstep(
    G: np.ndarray, reg: np.ndarray, p1: np.ndarray, rhs3: np.ndarray, n: np.ndarray | None, a: float
) -> np.ndarray:
    """Solve for the (K, 3) kernel weights; ``rhs3 = PX - d(P1) Y`` (M, 3); ``n`` (M, 3) normals or None."""
    K = G.shape[1]
    if n is None or a >= 1.0:
        A = G.T @ (p1[:, None] * G) + reg + 1e-9 * np.eye(K)
        return np.linalg.solve(A, G.T @ rhs3)
    H = np.zeros((K, 3, K, 3))
    base = G.T @ (p1[:, None] * G)
    for d in range(3):
        H[:, d, :, d] += a * base + reg
        for e in range(3):
            H[:, d, :, e] += (1.0 - a) * (G.T @ ((p1 * n[:, d] * n[:, e])[:, None] * G))
    rhs = a * G.T @ rhs3 + (1.0 - a) * G.T @ ((rhs3 * n).sum(1)[:, None] * n)
    sol = np.linalg.solve(H.reshape(3 * K, 3 * K) + 1e-9 * np.eye(3 * K), rhs.reshape(-1))
    return sol.reshape(K, 3)


def cpd_nonrigid(
    Y: np.ndarray, X: np.ndarray, cfg: CPDConfig | None = None, *, normals: np.ndarray | None = None, seed: int = 0
) -> CPDResult:
    """Coherent point drift of the moving points ``Y`` onto the data ``X`` with a control-point kernel.

    Args:
        Y: (M, 3) float64 moving points (mixture centroids), metres.
        X: (N, 3) float64 data points, metres, same frame.
        cfg: parameters (thinning, kernel, bounds).
        normals: (M, 3) unit normals of ``Y`` (used when ``cfg.tangent_weight < 1``).
        seed: seeds the farthest-point sampling.

    Returns:
        the fitted field (evaluate it anywhere with :meth:`CPDResult.displacement`).

    Raises:
        NonFiniteScanError, TooFewPointsError: bad inputs.
    """
    cfg = cfg or CPDConfig()
    Y = check_cloud("moving points", Y)
    X = check_cloud("data points", X)
    t0 = time.perf_counter()
    keep = farthest_point_sample(Y, cfg.max_points_y, seed)
    Y = Y[keep]
    nY = None if normals is None else np.asarray(normals, dtype=np.float64)[keep]
    X = X[farthest_point_sample(X, cfg.max_points_x, seed)]
    centre = Y.mean(axis=0)
    scale = float(np.sqrt(((Y - centre) ** 2).sum(1).mean()))
    Yn, Xn = (Y - centre) / scale, (X - centre) / scale
    C = Yn[farthest_point_sample(Yn, cfg.n_ctrl, seed)]
    beta = cfg.beta_m / scale
    G = _kernel(Yn, C, beta)
    Gcc = _kernel(C, C, beta)
    if cfg.sigma_init_m is None:
        sigma2 = float(((Xn[None, :, :] - Yn[:: max(1, len(Yn) // 300), None, :]) ** 2).sum(-1).mean() / 3.0)
    else:
        sigma2 = (cfg.sigma_init_m / scale) ** 2
    floor2 = (cfg.sigma_floor_m / scale) ** 2
    W = np.zeros((len(C), 3))
    T = Yn.copy()
    converged, iterations, p1 = False, 0, np.zeros(len(Yn))
    for it in range(1, cfg.max_iter + 1):
        iterations = it
        p1, pt1, px = _estep(Xn, T, sigma2, cfg.w)
        W = _mstep(G, cfg.lam * sigma2 * Gcc, p1, px - p1[:, None] * Yn, nY, cfg.tangent_weight)
        T = Yn + G @ W
        npts = max(float(p1.sum()), 1e-12)
        new = (pt1 @ (Xn * Xn).sum(1) - 2.0 * (px * T).sum() + p1 @ (T * T).sum(1)) / (3.0 * npts)
        new = max(float(new), floor2)
        change = abs(sigma2 - new) / sigma2
        sigma2 = new
        if change < cfg.tol or sigma2 <= floor2:
            converged = True
            break
        if time.perf_counter() - t0 > cfg.max_seconds:
            break
    return CPDResult(
        ctrl=C * scale + centre,
        W=W * scale,
        beta_m=cfg.beta_m,
        sigma_m=float(np.sqrt(sigma2)) * scale,
        iterations=iterations,
        converged=converged,
        p1=p1,
        seconds=time.perf_counter() - t0,
        points=Y,
    )
