"""Radial sections of a scanned part: the outline frame and per-station wedges of points.

A part's outline is parametrised by the angle ``theta`` in *normalised* outline coordinates
(long axis scaled by the half-length, short axis by the half-width), so station ``k`` of a sole and of
an upper of similar shape sit at the same fraction of the outline. Each station is a wedge of points
around the vertical half-plane from the outline centre; geometry inside a wedge is read in the wedge's
own 2-D frame (``e1`` outward, ``e2`` = local surface normal of the bottom / footbed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OutlineFrame", "outline_frame", "periodic_interp", "fit_line"]


@dataclass(frozen=True)
class OutlineFrame:
    """Plan-view frame of a part's outline.

    Attributes:
        centre: (2,) float64, metres, middle of the outline's extent in ``base_link`` x/y.
        u: (2,) unit long axis pointing to the toe (+x within the station tolerance).
        v: (2,) unit short axis, ``v = rot90(u)``.
        half_length: metres along ``u``.
        half_width: metres along ``v``.
    """

    centre: np.ndarray
    u: np.ndarray
    v: np.ndarray
    half_length: float
    half_width: float

    def polar(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised angle ``theta`` (n,) in [-pi, pi) and plan radius ``r`` (n,) metres of (n, 3) points."""
        d = points[:, :2] - self.centre
        xi = d @ self.u / self.half_length
        eta = d @ self.v / self.half_width
        return np.arctan2(eta, xi), np.hypot(d[:, 0], d[:, 1])

    def direction(self, theta: np.ndarray) -> np.ndarray:
        """(k, 2) unit plan directions of the outline point at normalised angles ``theta`` (k,)."""
        th = np.atleast_1d(theta)
        d = np.outer(self.half_length * np.cos(th), self.u) + np.outer(self.half_width * np.sin(th), self.v)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def normal(self, theta: np.ndarray) -> np.ndarray:
        """(k, 2) unit outward normals of the frame's ellipse at normalised angles ``theta`` (k,).

        A section is read along this direction: along the ray from the centre it would cross the sides of
        an elongated outline at a grazing angle (near the waist and the heel) and stretch every offset.
        """
        th = np.atleast_1d(theta)
        d = np.outer(np.cos(th) / self.half_length, self.u) + np.outer(np.sin(th) / self.half_width, self.v)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    @property
    def yaw(self) -> float:
        """Angle of ``u`` from +x, radians."""
        return float(np.arctan2(self.u[1], self.u[0]))


def outline_frame(points: np.ndarray) -> OutlineFrame:
    """PCA outline frame of (n, 3) points seen in plan; the long axis is made to point towards +x."""
    xy = points[:, :2]
    mean = xy.mean(axis=0)
    cov = np.cov((xy - mean).T)
    w, vecs = np.linalg.eigh(cov)
    u = vecs[:, int(np.argmax(w))]
    if u[0] < 0:
        u = -u
    v = np.array([-u[1], u[0]])
    xi = (xy - mean) @ u
    eta = (xy - mean) @ v
    lo_u, hi_u = np.percentile(xi, [0.2, 99.8])
    lo_v, hi_v = np.percentile(eta, [0.2, 99.8])
    centre = mean + u * (lo_u + hi_u) / 2 + v * (lo_v + hi_v) / 2
    return OutlineFrame(centre=centre, u=u, v=v, half_length=float(hi_u - lo_u) / 2, half_width=float(hi_v - lo_v) / 2)


def wedge_members(theta: np.ndarray, n_stations: int, overlap: float) -> list[np.ndarray]:
    """Point indices of each station's wedge, widened to ``overlap`` station spacings (>= 1) in total.

    Scans are ~1 mm apart; a wedge 2-3 stations wide keeps enough points near the sides of the outline.
    """
    order = np.argsort(theta, kind="stable")
    ts = theta[order]
    half = overlap * np.pi / n_stations
    out = []
    for tk in station_angles(n_stations):
        lo, hi = tk - half, tk + half
        idx = [np.arange(np.searchsorted(ts, max(lo, -np.pi)), np.searchsorted(ts, min(hi, np.pi)))]
        if lo < -np.pi:
            idx.append(np.arange(np.searchsorted(ts, lo + 2 * np.pi), len(ts)))
        if hi > np.pi:
            idx.append(np.arange(0, np.searchsorted(ts, hi - 2 * np.pi)))
        out.append(order[np.concatenate(idx)])
    return out


def wedge_index(theta: np.ndarray, n_stations: int, overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wedge_members` laid end to end without a loop per station: (indices (m,), wedge sizes (K,)).

    ``indices[sum(sizes[:k]):sum(sizes[:k + 1])]`` is ``wedge_members(...)[k]``, element for element.
    """
    order = np.argsort(theta, kind="stable")
    ts = theta[order]
    half = overlap * np.pi / n_stations
    tk = station_angles(n_stations)
    lo, hi = tk - half, tk + half
    n = len(ts)
    # per station up to three runs of the sorted angles: the main one, then the wrap past -pi, then past +pi
    starts = np.stack([np.searchsorted(ts, np.maximum(lo, -np.pi)),
                       np.where(lo < -np.pi, np.searchsorted(ts, lo + 2 * np.pi), n),
                       np.zeros(n_stations, dtype=np.int64)], axis=1)  # fmt: skip
    stops = np.stack([np.searchsorted(ts, np.minimum(hi, np.pi)), np.full(n_stations, n),
                      np.where(hi > np.pi, np.searchsorted(ts, hi - 2 * np.pi), 0)], axis=1)  # fmt: skip
    runs = np.maximum(stops - starts, 0).ravel()
    first = np.repeat(starts.ravel() - (np.cumsum(runs) - runs), runs)
    return order[np.arange(int(runs.sum())) + first], runs.reshape(n_stations, 3).sum(axis=1)


def station_angles(n_stations: int) -> np.ndarray:
    """(n_stations,) normalised angle of each wedge's centre, radians."""
    return -np.pi + (np.arange(n_stations) + 0.5) * 2 * np.pi / n_stations


def periodic_interp(theta: np.ndarray, theta_k: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Interpolate per-station ``values`` (k, ...) at angles ``theta`` on the closed outline (NaN-free input)."""
    th = np.asarray(theta)
    vals = np.asarray(values)
    flat = vals.reshape(len(theta_k), -1)
    out = np.stack([np.interp(th, theta_k, flat[:, j], period=2 * np.pi) for j in range(flat.shape[1])], axis=-1)
    return out.reshape(th.shape + vals.shape[1:])


def fill_invalid(theta_k: np.ndarray, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace the rows of ``values`` at invalid stations by periodic interpolation from valid ones."""
    if valid.all():
        return values
    out = np.array(values, dtype=np.float64, copy=True)
    out[~valid] = periodic_interp(theta_k[~valid], theta_k[valid], values[valid])
    return out


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = a + b x``; returns (a, b, residual std). Needs at least 3 points."""
    A = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ coef
    return float(coef[0]), float(coef[1]), float(np.std(res))


def smooth_closed(ring: np.ndarray, n_harmonics: int = 24) -> np.ndarray:
    """Low-pass a closed (K, d) ring sampled round the outline: keep the first ``n_harmonics`` Fourier terms.

    Scanned outlines carry ~0.1 mm noise per station; the physical outline of a last or sole is smooth
    at that scale (24 harmonics resolve features of 1/48 of the perimeter, ~14 mm on an EU 42 outline).
    """
    F = np.fft.rfft(ring, axis=0)
    F[n_harmonics + 1 :] = 0.0
    return np.fft.irfft(F, n=len(ring), axis=0)


__all__ += ["station_angles", "fill_invalid", "smooth_closed", "wedge_members", "wedge_index"]
