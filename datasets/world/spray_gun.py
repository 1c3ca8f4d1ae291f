"""The true spray gun's fan: an elliptic double-beta footprint and stratified droplet rays.

The fan lives in the nozzle frame (+z = spray axis). A droplet leaves the tip along ``(u, w, 1)``
(tangent-plane coordinates: ``u = tan`` of the angle in the nozzle's x-z plane, ``w`` likewise in y-z),
so on a plate perpendicular to the axis at standoff ``h`` it lands at ``(h u, h w)``. The footprint
is the elliptic double-beta of Balkan & Arikan (1999) with support inside the ellipse
``(u/U)^2 + (w/W)^2 <= 1`` (``U = tan(alpha_x)``, ``W = tan(alpha_y)``, the fan half angles):

    f(s, r) ∝ (1 - s^2)^(b1 - 1) · (1 - r^2 / (1 - s^2))^(b2 - 1),   s = u / U,  r = w / W.

Substituting ``r = sqrt(1 - s^2) q`` makes it separable: ``s`` and ``q`` are independent, with
``(s + 1)/2 ~ Beta(b1 + 1/2, b1 + 1/2)`` and ``(q + 1)/2 ~ Beta(b2, b2)``. Rays are drawn by inverse
CDF from a stratified n x n grid, shifted from shot to shot along a low-discrepancy sequence, so every
ray of one shot carries the same volume and the film of the many shots passing a spot has little noise.
The across-axis variance is ``U^2 / (2 b1 + 2)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["beta_ppf_table", "fan_directions", "shot_offsets", "footprint_sigma", "PPF_TABLE_SIZE"]

#: The plastic number, root of x^3 = x + 1 (generator of the R2 low-discrepancy sequence).
_PLASTIC = 1.324717957244746

#: Resolution of the inverse-CDF lookup tables (linear interpolation between 4097 quantiles).
PPF_TABLE_SIZE = 4097


@lru_cache(maxsize=16)
def beta_ppf_table(a: float) -> np.ndarray:
    """Quantiles of the symmetric ``Beta(a, a)`` at ``linspace(0, 1, PPF_TABLE_SIZE)``: (PPF_TABLE_SIZE,) float64."""
    from scipy.stats import beta

    q = np.linspace(0.0, 1.0, PPF_TABLE_SIZE)
    table = beta.ppf(q, a, a)
    table[0], table[-1] = 0.0, 1.0
    table.setflags(write=False)
    return table


def shot_offsets(shot: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Grid offsets (k, 2) in [0, 1) of shots with global indices ``shot`` (k,): the R2 sequence.

    Successive shots shift the stratified grid by the additive recurrence of the plastic number
    (Roberts' R2), so the shots that pass over a spot place their droplets evenly between each
    other's (a quasi-Monte Carlo rank-1 lattice); ``start`` (2,) is the run's random origin.
    """
    g = 1.0 / np.array([_PLASTIC, _PLASTIC**2])
    return np.mod(start[None, :] + shot[:, None] * g[None, :], 1.0)


def _stratified(offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n x n grid in the unit square shifted by ``offsets`` (k, 2): two (k, n*n) float64 arrays."""
    i = np.repeat(np.arange(n), n)
    j = np.tile(np.arange(n), n)
    return (i[None, :] + offsets[:, :1]) / n, (j[None, :] + offsets[:, 1:]) / n


def fan_directions(
    offsets: np.ndarray,
    n: int,
    half_tan: tuple[float, float],
    beta: tuple[float, float],
) -> np.ndarray:
    """Ray directions (nozzle frame) of ``k`` shots of ``n * n`` equal-volume droplet rays each.

    Args:
        offsets: (k, 2) grid offsets in [0, 1) of ``k`` shots (:func:`shot_offsets`).
        n: rays per grid axis.
        half_tan: (U, W) tangents of the fan half angles about the nozzle x and y axes.
        beta: (b1, b2) double-beta exponents (larger: more peaked); both > 0.

    Returns:
        (k, n*n, 3) float64 unit vectors, +z the nozzle axis.
    """
    x, y = _stratified(offsets, n)
    grid = np.linspace(0.0, 1.0, PPF_TABLE_SIZE)
    s = 2.0 * np.interp(x, grid, beta_ppf_table(float(beta[0]) + 0.5)) - 1.0
    q = 2.0 * np.interp(y, grid, beta_ppf_table(float(beta[1]))) - 1.0
    u = half_tan[0] * s
    w = half_tan[1] * np.sqrt(np.clip(1.0 - s * s, 0.0, 1.0)) * q
    d = np.stack([u, w, np.ones_like(u)], axis=-1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def footprint_sigma(standoff_m: float, half_tan: tuple[float, float], beta: tuple[float, float]) -> np.ndarray:
    """Standard deviations (2,) metres of the footprint on a perpendicular plate at ``standoff_m``.

    ``Var(s) = 1 / (2 b1 + 2)``; for the second axis ``Var(w / W) = E[1 - s^2] · Var(q)`` with
    ``E[s^2] = Var(s)`` and ``Var(q) = 1 / (2 b2 + 1)``.
    """
    b1, b2 = float(beta[0]), float(beta[1])
    var_s = 1.0 / (2.0 * b1 + 2.0)
    var_r = (1.0 - var_s) / (2.0 * b2 + 1.0)
    return standoff_m * np.array([half_tan[0] * np.sqrt(var_s), half_tan[1] * np.sqrt(var_r)])
