"""The reference attach solver: the sole's rim as a linear-elastic ring on the upper (scipy.sparse FE).

Model (see deformation/README.md for the justification):

1. *Hoop problem.* The sole's wall is a closed ring of 2-node bar elements (plane, two displacement DOF
   per node) lying on the upper's feather-edge outline. Element ``e`` has rest length ``l0_e`` (the sole's
   free footbed outline between the matched stations), axial stiffness ``E * t_e * h_e / l0_e`` (wall
   thickness x height) and must span the upper's outline segment of length ``L_e``. The upper is a
   Winkler foundation of stiffness ``k_f * h * ds`` normal to its outline, compression only (the ring
   lifts off where the outline is concave and bridges it); contact is frictionless (no tangential
   spring). Linear statics ``K u = f`` by ``scipy.sparse.linalg.spsolve`` inside an active-set loop.
   On a circle of radius R the exact solution has one tension ``T = dL / (sum l0/EA + 2 pi / (R k_f h))``;
   the tests check the FE against it.
2. *Meridional problem.* The footbed conforms to the upper's bottom and the wall lies on the side; the
   wall's meridional length is kept except for the Poisson contraction of the hoop stretch (plane stress,
   free rim): ``L' = L_wall (1 - nu * eps_hoop)``. The bite line is where the rim lands: arc length ``L'``
   down the upper's side profile from its virtual feather-edge corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .errors import SolverError
from .material import UpperContact
from .profiles import DEPTH_BIN, N_DEPTH_BINS, UPPER_SIDE_FIT

__all__ = ["RingResult", "solve_ring", "analytic_ring_tension", "walk_side", "side_at_depth", "sides_at_depth",
           "station_sides", "outline_normals"]

MAX_ACTIVE_SET_ITERATIONS = 30
#: Tangential regularisation relative to the foundation stiffness (removes the rigid sliding mode of a circle).
TANGENT_REG = 1e-9


@dataclass(frozen=True)
class RingResult:
    """Hoop solution at the K ring nodes.

    Attributes:
        strain: (K,) hoop strain at each node (mean of its two elements), dimensionless.
        tension: (K,) element tensions, newtons (element k joins node k and k+1).
        indent: (K,) compression of the upper under each node, metres (0 where lifted off).
        contact: (K,) bool, node in contact.
        displacement: (K, 2) node displacements from the upper outline, metres.
    """

    strain: np.ndarray
    tension: np.ndarray
    indent: np.ndarray
    contact: np.ndarray
    displacement: np.ndarray


def outline_normals(X: np.ndarray) -> np.ndarray:
    """(K, 2) outward unit normals of a closed plan polyline (either orientation)."""
    t = np.roll(X, -1, axis=0) - np.roll(X, 1, axis=0)
    n = np.column_stack([t[:, 1], -t[:, 0]])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    if np.sum(n * (X - X.mean(axis=0))) < 0:
        n = -n
    return n


def solve_ring(
    X: np.ndarray, rest: np.ndarray, EA: np.ndarray, height: np.ndarray, contact: UpperContact
) -> RingResult:
    """Solve the hoop problem.

    Args:
        X: (K, 2) float64, metres, the upper's outline nodes (plan), closed, ordered.
        rest: (K,) float64, metres, rest length of the sole element from node k to node k+1.
        EA: (K,) float64, newtons, axial stiffness of each element.
        height: (K,) float64, metres, contact height of the wall at each node.
        contact: the upper's foundation.
    """
    K = len(X)
    d = np.roll(X, -1, axis=0) - X
    L = np.linalg.norm(d, axis=1)
    a = d / L[:, None]
    ke = EA / rest
    delta = L - rest
    nrm = outline_normals(X)
    kn = contact.k_f * height * 0.5 * (L + np.roll(L, 1))
    i = np.arange(K)
    j = (i + 1) % K
    dofs = np.stack([2 * i, 2 * i + 1, 2 * j, 2 * j + 1], axis=1)
    aa = np.einsum("ki,kj->kij", a, a)
    blk = np.zeros((K, 4, 4))
    blk[:, :2, :2], blk[:, 2:, 2:], blk[:, :2, 2:], blk[:, 2:, :2] = aa, aa, -aa, -aa
    blk *= ke[:, None, None]
    rows = np.repeat(dofs, 4, axis=1).ravel()
    cols = np.tile(dofs, (1, 4)).ravel()
    Kbar = sp.csr_matrix((blk.ravel(), (rows, cols)), shape=(2 * K, 2 * K))
    f = np.zeros(2 * K)
    np.add.at(f, 2 * i, ke * delta * a[:, 0])
    np.add.at(f, 2 * i + 1, ke * delta * a[:, 1])
    np.add.at(f, 2 * j, -ke * delta * a[:, 0])
    np.add.at(f, 2 * j + 1, -ke * delta * a[:, 1])
    tang = np.column_stack([-nrm[:, 1], nrm[:, 0]])
    rows_n = np.stack([2 * i, 2 * i, 2 * i + 1, 2 * i + 1], axis=1).ravel()
    cols_n = np.stack([2 * i, 2 * i + 1, 2 * i, 2 * i + 1], axis=1).ravel()
    perp = np.eye(2)[None] - aa
    active = np.ones(K, dtype=bool)
    T = np.full(K, max(float(np.mean(ke * delta)), 0.0))
    for _ in range(MAX_ACTIVE_SET_ITERATIONS):
        # Geometric (tension) stiffness T/L (I - a a^T): what holds a lifted-off span straight.
        geo = np.zeros((K, 4, 4))
        g = (np.maximum(T, 0.0) / L)[:, None, None] * perp
        geo[:, :2, :2], geo[:, 2:, 2:], geo[:, :2, 2:], geo[:, 2:, :2] = g, g, -g, -g
        Kgeo = sp.csr_matrix((geo.ravel(), (rows, cols)), shape=(2 * K, 2 * K))
        node = (kn * active)[:, None, None] * np.einsum("ki,kj->kij", nrm, nrm)
        node += (kn * TANGENT_REG)[:, None, None] * np.einsum("ki,kj->kij", tang, tang)
        Kn = sp.csr_matrix((node.reshape(K, 4).ravel(), (rows_n, cols_n)), shape=(2 * K, 2 * K))
        try:
            u = spla.spsolve((Kbar + Kgeo + Kn).tocsc(), f).reshape(K, 2)
        except (RuntimeError, ValueError) as exc:
            raise SolverError(f"ring solve failed: {exc}", stage="deformation") from exc
        if not np.all(np.isfinite(u)):
            raise SolverError("ring solve gave non-finite displacements (singular system)", stage="deformation")
        T_new = ke * (delta + np.sum(a * (u[j] - u[i]), axis=1))
        un = np.sum(u * nrm, axis=1)
        tol = 1e-3 * max(float(np.abs(u).max()), 1e-12)
        new = (active & (un <= tol)) | (~active & (un < -tol))
        converged = np.array_equal(new, active) and np.allclose(T_new, T, rtol=1e-4, atol=1e-9)
        active, T = new, T_new
        if converged:
            break
    eps_e = T / EA
    strain = 0.5 * (eps_e + np.roll(eps_e, 1))
    indent = np.where(active, -np.minimum(np.sum(u * nrm, axis=1), 0.0), 0.0)
    return RingResult(strain=strain, tension=T, indent=indent, contact=active, displacement=u)


def analytic_ring_tension(
    rest_total: float, L_total: float, EA: float, height: float, contact: UpperContact, radius: float
) -> float:
    """Closed-form tension of a uniform ring on a circle of ``radius`` (frictionless, full contact), newtons.

    Compatibility ``rest (1 + T/EA) = L - oint kappa w ds`` with the indentation ``w = T kappa / (k_f h)``
    gives ``T = (L - rest) / (rest / EA + oint kappa^2 ds / (k_f h))``, and ``oint kappa^2 ds = 2 pi / R``.
    """
    return (L_total - rest_total) / (rest_total / EA + 2 * np.pi / radius / (contact.k_f * height))


def walk_side(profile: np.ndarray, length: float) -> tuple[float, float]:
    """Walk ``length`` metres of arc down one station's side profile from its virtual corner.

    Args:
        profile: (N_DEPTH_BINS,) outward offset s (metres) from the corner line per 1 mm depth bin, NaN = no data.
        length: meridional length to walk, metres.

    Returns:
        (depth, s): depth below the bottom plane and outward offset of the landing point, metres.
    """
    depth = (np.arange(N_DEPTH_BINS) + 0.5) * DEPTH_BIN
    ok = np.isfinite(profile) & (depth >= UPPER_SIDE_FIT[0])
    if ok.sum() < 2:
        raise SolverError("side profile too short to place the bite line", stage="deformation")
    # The wedge's raw profile is noisy bin to bin; arc length would add that noise up, so walk a cubic fit.
    coef = np.polyfit(depth[ok], profile[ok], deg=min(3, int(ok.sum()) - 1))
    dq = np.concatenate([[0.0], depth[depth >= UPPER_SIDE_FIT[0]]])
    sq = np.polyval(coef, dq)
    sq[0] = 0.0
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(dq), np.diff(sq)))])
    if length > arc[-1]:
        raise SolverError(
            f"side profile ({arc[-1] * 1e3:.1f} mm) shorter than the sole wall ({length * 1e3:.1f} mm)",
            stage="deformation",
        )
    return float(np.interp(length, arc, dq)), float(np.interp(length, arc, sq))


def side_at_depth(profile: np.ndarray, depth: float, half_window: float = 6e-3) -> float:
    """Outward offset s (metres) of one station's side at ``depth`` below the bottom plane.

    A quadratic fitted to the profile bins within ``half_window`` of ``depth`` (local, so the shape of the
    side far above or below does not pull it).
    """
    d = (np.arange(N_DEPTH_BINS) + 0.5) * DEPTH_BIN
    ok = np.isfinite(profile) & (d >= UPPER_SIDE_FIT[0] / 2) & (np.abs(d - depth) <= half_window)
    if ok.sum() < 4 or not (d[ok].min() <= depth + DEPTH_BIN and d[ok].max() >= depth - DEPTH_BIN):
        raise SolverError(
            f"side profile does not reach {depth * 1e3:.1f} mm below the bottom: rescan", stage="deformation"
        )
    coef = np.polyfit(d[ok] - depth, profile[ok], deg=2)
    return float(coef[-1])


def sides_at_depth(profiles: np.ndarray, depths: np.ndarray, half_window: float = 6e-3) -> np.ndarray:
    """:func:`side_at_depth` of every row of ``profiles`` (K, N_DEPTH_BINS) at ``depths`` (K,) at once: (K,)
    offsets, NaN where :func:`side_at_depth` raises. The same local quadratics, fitted by their 3x3 normal
    equations in ``(d - depth) / half_window`` (well conditioned) instead of one ``np.polyfit`` a station: equal
    to ~1e-16 m, ~10x less time."""
    K = len(depths)
    d = (np.arange(N_DEPTH_BINS) + 0.5) * DEPTH_BIN
    x = (d[None, :] - depths[:, None]) / half_window
    ok = np.isfinite(profiles) & (d >= UPPER_SIDE_FIT[0] / 2)[None, :] & (np.abs(d - depths[:, None]) <= half_window)
    dd = np.where(ok, d[None, :], np.nan)
    with np.errstate(invalid="ignore"):
        reach = (np.nanmin(dd, axis=1, initial=np.inf) <= depths + DEPTH_BIN) & (
            np.nanmax(dd, axis=1, initial=-np.inf) >= depths - DEPTH_BIN)  # fmt: skip
    good = (ok.sum(axis=1) >= 4) & reach
    out = np.full(K, np.nan)
    if not good.any():
        return out
    w, xg, y = ok[good], x[good], np.where(ok[good], profiles[good], 0.0)
    V = np.stack([np.ones_like(xg), xg, xg**2], axis=2) * w[:, :, None]  # (k, N, 3): 1, x, x^2
    AtA = np.einsum("kna,knb->kab", V, V)
    Atb = np.einsum("kna,kn->ka", V, y)
    out[good] = np.linalg.solve(AtA, Atb[:, :, None])[:, 0, 0]
    return out


def station_sides(profiles: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """(K,) :func:`side_at_depth` of each row, NaN where it raises: :func:`sides_at_depth` (``BATCHED``) or the
    per-station fits."""
    if BATCHED:
        return sides_at_depth(profiles, depths)
    out = np.full(len(depths), np.nan)
    for k in range(len(depths)):
        try:
            out[k] = side_at_depth(profiles[k], float(depths[k]))
        except SolverError:
            pass
    return out


#: :func:`station_sides` fits every station at once (False: one ``np.polyfit`` a station, the reference).
BATCHED = True
