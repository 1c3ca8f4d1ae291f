"""All stations of a part measured at once: the per-wedge rules of :mod:`.profiles` on segmented arrays.

:func:`.profiles.upper_sections` and :func:`.profiles.sole_sections` measured 128 overlapping wedges one by one,
each with ~60 numpy calls on a few hundred points: on the 40 000-point style references that Python loop was
most of the deformation step's time. Here every wedge's points are laid end to end (``seg``: the station of each
entry) and each rule is one masked numpy pass over all of them: counts and means by ``np.bincount``, medians and
percentiles by sorting one padded row per station (:meth:`Segments.pct`, the same linear interpolation as
``profiles._pct``). The rules, thresholds and order of the checks are those of ``_upper_station`` /
``_sole_station`` (kept as the reference implementation; ``tests/deformation/test_deform_sections_vec.py``
checks that both give the same sections); only the summation order of means differs (~1e-16 relative).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Segments", "upper_stations", "sole_stations", "trimmed_sole", "DOWN_NZ"]

#: :func:`trimmed_sole` leaves out the points whose normal's z is below this (facing down; |n_xy| < 0.49).
DOWN_NZ = -0.87
#: ... when at least this share of the points face down (a scan seen from above has next to none, and its few,
#: noisy ones near the rim made the check fail: the points were then measured twice).
DOWN_SHARE = 0.05


class Segments:
    """Entries grouped by station: ``seg`` (m,) int station of each entry, ``n`` stations."""

    def __init__(self, seg: np.ndarray, n: int) -> None:
        self.seg, self.n = seg, n

    def count(self, mask: np.ndarray) -> np.ndarray:
        """(n,) number of entries per station where ``mask``."""
        return np.bincount(self.seg[mask], minlength=self.n)

    def mean(self, vals: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(n,) or (n, d) mean of ``vals`` (m,) or (m, d) over the masked entries of each station (NaN: none)."""
        s = self.seg[mask]
        cnt = np.bincount(s, minlength=self.n).astype(np.float64)
        v = vals[mask]
        with np.errstate(invalid="ignore", divide="ignore"):
            if v.ndim == 1:
                return np.bincount(s, weights=v, minlength=self.n) / cnt
            cols = [np.bincount(s, weights=v[:, c], minlength=self.n) for c in range(v.shape[1])]
            return np.stack(cols, axis=1) / cnt[:, None]

    def _rows(self, vals: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The masked entries as one sorted row per station, padded with +inf: ((n, max count), (n,) counts).

        Entries are laid out station by station (``seg`` non-decreasing), so each lands at its place in its row;
        sorting short rows is several times faster than one ``np.lexsort`` over all entries."""
        s = self.seg[mask]
        cnt = np.bincount(s, minlength=self.n)
        start = np.cumsum(cnt) - cnt
        M = np.full((self.n, max(int(cnt.max(initial=0)), 1)), np.inf)
        M[s, np.arange(len(s)) - start[s]] = vals[mask]
        M.sort(axis=1)
        return M, cnt

    def pct(self, vals: np.ndarray, mask: np.ndarray, q: float) -> np.ndarray:
        """(n,) percentile ``q`` (0-100, linear interpolation as ``profiles._pct``) of the masked entries of each
        station (NaN: none)."""
        M, cnt = self._rows(vals, mask)
        out = np.full(self.n, np.nan)
        has = np.flatnonzero(cnt > 0)
        c = cnt[has]
        x = (c - 1) * q / 100.0
        i = x.astype(np.int64)
        lo = M[has, i]
        hi = M[has, np.minimum(i + 1, c - 1)]
        out[has] = np.where(i + 1 >= c, lo, lo + (x - i) * (hi - lo))
        return out

    def col_median(self, vals: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(n, d) column-wise median (the upper one for even counts) of the masked rows of each station."""
        out = np.full((self.n, vals.shape[1]), np.nan)
        for c in range(vals.shape[1]):
            M, cnt = self._rows(vals[:, c], mask)
            has = np.flatnonzero(cnt > 0)
            out[has, c] = M[has, cnt[has] // 2]
        return out


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _patch_normals(S: Segments, N: np.ndarray, mask: np.ndarray, alive: np.ndarray, cos_keep: float) -> tuple:
    """Per station: mean normal of the masked patch after dropping normals more than ``cos_keep`` off its median
    (``profiles._patch_normal``); returns ((n, 3) normals, (m,) bool kept entries)."""
    n0 = S.col_median(N, mask)
    n0[alive] = _unit_rows(n0[alive])
    keep = mask & (_dot(N, n0[S.seg]) > cos_keep)
    few = S.count(keep) < 3
    keep = np.where(few[S.seg], mask, keep)
    nrm = S.mean(N, keep)
    nrm[alive] = _unit_rows(nrm[alive])
    return nrm, keep


def _in_plane(e1: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``e1`` made orthogonal to ``n`` and unit, row by row."""
    return _unit_rows(e1 - np.sum(e1 * n, axis=1, keepdims=True) * n)


def upper_stations(P: np.ndarray, N: np.ndarray, r: np.ndarray, E1: np.ndarray, S: Segments, z_top: float,
                   ok: np.ndarray, c: dict) -> tuple[dict, np.ndarray]:  # fmt: skip
    """The upper's stations (``profiles._upper_station`` on every wedge at once).

    Args:
        P, N, r: (m, 3), (m, 3), (m,) points, normals and plan radii of the wedges' entries laid end to end.
        E1: (n, 3) each station's outward plan direction. S: the entries' stations. ok: (n,) stations with
            enough points. c: the constants of :mod:`.profiles` (``_constants``).

    Returns:
        ({key: (n, ...) values, NaN where not measured}, (n,) bool measured).
    """
    n = S.n
    # The bottom's rules on the bottom's entries only, then the side's on the entries within its depth range:
    # the same values as the masks over every entry (each subset keeps the entries' order), far fewer passes.
    bi = np.flatnonzero((N[:, 2] > c["UP_COS"]) & (P[:, 2] > z_top - 0.06) & ok[S.seg])
    Sb, Pb, Nb, rb = Segments(S.seg[bi], n), P[bi], N[bi], r[bi]
    every = np.ones(len(bi), dtype=bool)
    alive = ok & (Sb.count(every) >= c["MIN"])
    r_edge = Sb.pct(rb, alive[Sb.seg], 98)
    re = r_edge[Sb.seg]
    lo, hi = c["EDGE_BAND"]
    near = alive[Sb.seg] & (rb > re - hi) & (rb < re - lo) & (Nb[:, 2] > c["BOTTOM_COS"])
    alive &= Sb.count(near) >= c["MIN"]
    near &= alive[Sb.seg]
    n_b, flat = _patch_normals(Sb, Nb, near, alive, c["PLANE_COS"])
    d_b = Sb.pct(_dot(Pb, n_b[Sb.seg]), flat, 50)
    e1p = np.full((n, 3), np.nan)
    e1p[alive] = _in_plane(E1[alive], n_b[alive])
    O = Sb.mean(Pb, near)
    li = np.flatnonzero(alive[S.seg])
    depth = d_b[S.seg[li]] - _dot(P[li], n_b[S.seg[li]])
    ci = li[(depth > -1e-3) & (depth < c["NBINS"] * c["BIN"])]  # every side, level and fit entry is in here
    S = Segments(S.seg[ci], n)
    seg = S.seg
    P, N = P[ci], N[ci]
    nb, e1s = n_b[seg], e1p[seg]
    depth = d_b[seg] - _dot(P, nb)
    s = _dot(P - O[seg], e1s)
    side = (_dot(N, e1s) > 0.3) & (_dot(N, nb) < 0.6) & (depth > 0) & (depth < c["NBINS"] * c["BIN"])
    fit = side & (depth > c["SIDE_FIT"][0]) & (depth < c["SIDE_FIT"][1])
    level = (depth > -1e-3) & (depth < c["EDGE_DEPTH"]) & (s > 0)
    s_e = S.pct(s, level, 95)
    On = np.sum(O * n_b, axis=1)
    edge = O + s_e[:, None] * e1p + (d_b - c["EDGE_DEPTH"] / 2 - On)[:, None] * n_b
    few = alive & (S.count(level) < c["MIN"])
    if few.any():  # the outermost bottom point
        idx = np.flatnonzero(few[Sb.seg])
        o = idx[np.lexsort((rb[idx], Sb.seg[idx]))]
        last = np.flatnonzero(np.r_[Sb.seg[o][1:] != Sb.seg[o][:-1], True])
        edge[Sb.seg[o[last]]] = Pb[o[last]]
    full = alive & (S.count(fit) >= c["MIN"])
    fit &= full[seg]
    # least-squares line s = a + b depth on the fit band (fit_line)
    xm, ym = S.mean(depth, fit), S.mean(s, fit)
    dx, dy = depth - xm[seg], s - ym[seg]
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.bincount(seg[fit], weights=(dx * dy)[fit], minlength=n) / np.bincount(
            seg[fit], weights=(dx * dx)[fit], minlength=n)  # fmt: skip
    a = ym - b * xm
    resid = s - a[seg] - b[seg] * depth
    rm = S.mean(resid, fit)
    res = np.sqrt(S.mean((resid - rm[seg]) ** 2, fit))
    side &= full[seg]
    bins = np.minimum(np.floor(depth[side] / c["BIN"]).astype(np.int64), c["NBINS"] - 1)
    flat_bin = seg[side] * c["NBINS"] + bins
    sums = np.bincount(flat_bin, weights=s[side], minlength=n * c["NBINS"]).reshape(n, c["NBINS"])
    cnt = np.bincount(flat_bin, minlength=n * c["NBINS"]).reshape(n, c["NBINS"])
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(cnt > 0, sums / cnt, np.nan) - a[:, None]
    corner = O + a[:, None] * e1p + (d_b - On)[:, None] * n_b
    out = {"edge": edge, "n_b": n_b, "e1": e1p, "corner": corner, "profile": prof, "resid": res}
    for key in ("corner", "profile", "resid"):
        out[key][~full] = np.nan
    for key in ("edge", "n_b", "e1"):
        out[key][~alive] = np.nan
    return out, alive


def sole_stations(P: np.ndarray, N: np.ndarray, r: np.ndarray, E1: np.ndarray, S: Segments, z_tray: float,
                  ok: np.ndarray, c: dict, dropped: tuple | None = None) -> tuple[dict, np.ndarray] | None:  # fmt: skip
    """The sole's stations (``profiles._sole_station`` and ``_rim_top`` on every wedge at once); arguments and
    result as :func:`upper_stations`. ``dropped``: (P, N, r, station) of wedge entries left out of ``P``...
    (:func:`trimmed_sole`); None is returned when one of them would have entered a rule (the sections would
    differ), else the stations are those of all the entries."""
    seg = S.seg
    e1 = E1[seg]
    inward = ok[seg] & (_dot(N, e1) < -0.25) & (np.abs(N[:, 2]) < 0.8)
    alive = ok & (S.count(inward) >= c["MIN"])
    inward &= alive[seg]
    r_wk = S.pct(r, inward, 50)
    r_w, z_w = r_wk[seg], S.pct(P[:, 2], inward, 50)[seg]
    below = alive[seg] & (P[:, 2] < z_w)
    fb = np.zeros(len(seg), dtype=bool)
    use_next = np.ones(S.n, dtype=bool)
    for cos_up, band in c["FOOTBED"]:  # the first patch with enough points, station by station
        m = below & (N[:, 2] > cos_up) & (r > r_w - band[1]) & (r < r_w - band[0])
        fb = np.where(use_next[seg], m, fb)
        use_next = S.count(fb) < c["MIN"]
    alive &= ~use_next
    fb &= alive[seg]
    n_f, flat = _patch_normals(S, N, fb, alive, c["PLANE_COS"])
    nf = n_f[seg]
    Pn = _dot(P, nf)
    d_f = S.pct(Pn, flat, 50)
    height = Pn - d_f[seg]
    live = alive[seg]
    if dropped is not None and _dropped_count(dropped, alive, r_wk, n_f, d_f, c):
        return None
    rim = live & _rim_band(r, r_w, height)
    alive &= S.count(rim) >= c["MIN"]
    rim &= alive[seg]
    top = rim & (height > S.pct(height, rim, 95)[seg] - c["RIM_CLUSTER"])
    up = top & (_dot(N, nf) > 0.5)
    alive &= S.count(up) >= c["MIN"]
    h = S.pct(height, up & alive[seg], 50)
    e1p = np.full((S.n, 3), np.nan)
    e1p[alive] = _in_plane(E1[alive], n_f[alive])
    O = S.mean(P, fb)
    e1s = e1p[seg]
    s = _dot(P - O[seg], e1s)
    hs = h[seg]
    band = (height > 0.25 * hs) & (height < 0.75 * hs)
    wall = inward & band & alive[seg]
    outer = (_dot(N, e1s) > 0.5) & band & alive[seg]
    alive &= S.count(wall) >= c["MIN"]
    a = S.pct(s, wall & alive[seg], 50)
    sa = s - a[seg]
    wm = S.mean(s, wall)
    res = np.sqrt(S.mean((s - wm[seg]) ** 2, wall))
    t = np.where(S.count(outer) >= c["MIN"], S.pct(s, outer, 50) - a, np.nan)
    base = O + (d_f - np.sum(O * n_f, axis=1))[:, None] * n_f
    corner = base + a[:, None] * e1p
    near = np.linalg.norm(P[:, :2] - corner[seg, :2], axis=1) < c["RIM_RADIUS"]
    face = alive[seg] & near & (_dot(N, nf) > c["RIM_FACE_COS"]) & (sa > -c["RIM_INSIDE"]) & (height > 0.4 * hs)
    h = np.where(S.count(face) >= c["MIN"] - 1, S.pct(height, face, 50), h)
    out = {"corner": corner, "rim": base + a[:, None] * e1p + h[:, None] * n_f, "n_f": n_f, "height": h,
           "wall_len": h.copy(), "thickness": t, "resid": res, "body": corner[:, 2] - z_tray}  # fmt: skip
    for val in out.values():
        val[~alive] = np.nan
    return out, alive


def _rim_band(r: np.ndarray, r_w: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Entries in a station's rim band: plan radius -3..+10 mm from the inner wall's, over 2 mm above the footbed."""
    return (r > r_w - 3e-3) & (r < r_w + 10e-3) & (height > 2e-3)


def _dropped_count(dropped: tuple, alive: np.ndarray, r_wk: np.ndarray, n_f: np.ndarray, d_f: np.ndarray,
                   c: dict) -> bool:  # fmt: skip
    """Whether a dropped entry (:func:`trimmed_sole`: its points face down, ``|n_xy| < 0.5``, so no wall or
    footbed rule takes them) could pass a rule of :func:`sole_stations`: face up off a footbed (the rim top and
    face rules, checked per station on the steepest footbed), or lie in the rim band of a station alive there."""
    P, r, sd, nz_max, nxy_max = dropped
    nf = n_f[alive]
    bound = nxy_max * np.hypot(nf[:, 0], nf[:, 1]) + nz_max * nf[:, 2]  # n . n_f of the dropped, at most
    if len(nf) and (np.min(nf[:, 2]) < 0 or np.max(bound) > min(0.5, c["RIM_FACE_COS"])):
        return True
    live = alive[sd]
    sd = sd[live]
    height = np.einsum("ij,ij->i", P[live], n_f[sd]) - d_f[sd]
    return bool(np.any(_rim_band(r[live], r_wk[sd], height)))


def trimmed_sole(frame: Any, P: np.ndarray, N: np.ndarray, n_stations: int, z_tray: float,
                 c: dict) -> tuple[np.ndarray, dict, np.ndarray] | None:  # fmt: skip
    """``profiles._all_stations(..., "sole", z_tray)`` without the points facing down (``N_z <`` :data:`DOWN_NZ`:
    a sole's tread and the underside of its walls, ~30 % of a style reference sampled all round, which no rule
    of a sole station takes: they face neither the wall nor up, and lie under the footbed). Their entries are
    only checked against the rules (:func:`_dropped_count`); None when one of them would enter one (then the
    caller measures all the points). The same sections, a third less work on a reference."""
    from .sections import station_angles, wedge_index

    down = N[:, 2] < DOWN_NZ
    nxy = np.hypot(N[down, 0], N[down, 1])
    if down.mean() < DOWN_SHARE or nxy.max() >= 0.5 or min(cos for cos, _ in c["FOOTBED"]) < DOWN_NZ:
        return None  # little to leave out (a scan seen from above), or a wall or footbed rule could take one
    theta, r = frame.polar(P)
    th_k = station_angles(n_stations)
    E1 = np.column_stack([frame.direction(th_k), np.zeros(n_stations)])
    keep = np.flatnonzero(~down)
    gone = np.flatnonzero(down)
    idx, lens = wedge_index(theta[keep], n_stations, c["OVERLAP"])
    idx_d, lens_d = wedge_index(theta[gone], n_stations, c["OVERLAP"])
    ok = lens + lens_d >= 3 * c["MIN"]  # the wedges' sizes with every point, as before
    idx, idx_d = keep[idx], gone[idx_d]
    S = Segments(np.repeat(np.arange(n_stations), lens), n_stations)
    dropped = (P[idx_d], r[idx_d], np.repeat(np.arange(n_stations), lens_d), N[down, 2].max(), nxy.max())
    got = sole_stations(P[idx], N[idx], r[idx], E1, S, z_tray, ok, c, dropped)
    return None if got is None else (th_k, got[0], got[1])
