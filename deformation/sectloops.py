"""The loops of :mod:`.sectkernel` (plain Python, compiled there by numba; see that module's docstring).

Each station's entries are first gathered side by side (``L``: rows x y z, nx ny nz, r), then every rule is a
loop over them written without branches on the data (masks combined by ``&``, masked values packed by writing
every value and advancing the write position by the mask): the masks of scan points are unpredictable, and
mispredicted branches made the first, branching version five times slower. Percentiles take the order
statistics by :func:`numpy.partition` (the values a sort puts there) and ``profiles._pct``'s interpolation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["members", "pct", "patch", "in_plane", "mean_sel", "gather", "fit_line", "upper", "sole", "HELPERS"]


def members(theta, lo, hi, spacing, win):  # fmt: skip
    """Each station's wedge members (``sections.wedge_index``'s bounds ``lo``/``hi``): (indices (m,), starts
    (K + 1,)); within a station in point order."""
    K = lo.shape[0]
    n = theta.shape[0]
    pi = np.pi
    span = K if 2 * win + 1 >= K else 2 * win + 1
    first = np.empty(n, dtype=np.int64)
    bits = np.empty(n, dtype=np.int64)
    cnt = np.zeros(K + 1, dtype=np.int64)
    for i in range(n):
        t = theta[i]
        kc = int(np.floor((t + pi) / spacing))
        k0 = 0 if span == K else kc - win
        b = 0
        for d in range(span):
            k = (k0 + d) % K
            inside = (t >= max(lo[k], -pi)) & (t < min(hi[k], pi))
            inside |= ((lo[k] < -pi) & (t >= lo[k] + 2 * pi)) | ((hi[k] > pi) & (t < hi[k] - 2 * pi))
            cnt[k + 1] += inside
            b |= np.int64(inside) << d
        first[i], bits[i] = k0, b
    for k in range(K):
        cnt[k + 1] += cnt[k]
    fill = cnt[:-1].copy()
    total = cnt[K]
    idx = np.empty(total + 1, dtype=np.int64)  # one spare slot: the writes of non-members land there
    for i in range(n):
        b = bits[i]
        for d in range(span):
            k = (first[i] + d) % K
            inside = (b >> d) & 1
            pos = fill[k] if inside else total
            idx[pos] = i
            fill[k] += inside
    return idx[:total], cnt


def pct(v, n, q):  # fmt: skip
    """``profiles._pct`` of the first ``n`` values of ``v``."""
    x = (n - 1) * q / 100.0
    i = int(x)
    w = np.partition(v[:n], i)  # the order statistics of a sort, without sorting
    if i + 1 >= n:
        return w[i]
    hi = w[i + 1]
    for j in range(i + 2, n):
        hi = min(hi, w[j])
    return w[i] + (x - i) * (hi - w[i])


def pack(vals, mask, m, buf):  # fmt: skip
    """The first ``m`` ``vals`` where ``mask``, packed into ``buf``; returns their count."""
    j = 0
    for t in range(m):
        buf[j] = vals[t]
        j += mask[t]
    return j


def patch(L, sel, m, plane_cos, keep, buf, out):  # fmt: skip
    """``profiles._patch_normal`` of the normals ``L[3:6]`` of the entries ``t < m`` where ``sel[t]``: writes the
    unit normal to ``out`` and the kept entries to ``keep``; returns False where a normal has no direction."""
    cnt = 0
    n0 = np.empty(3)
    for c in range(3):  # column-wise median, the upper one for even counts
        cnt = pack(L[3 + c], sel, m, buf)
        n0[c] = np.partition(buf[:cnt], cnt // 2)[cnt // 2]
    ln = np.sqrt(n0[0] * n0[0] + n0[1] * n0[1] + n0[2] * n0[2])
    if not ln > 1e-15:
        return False
    n0 /= ln
    nk = 0
    for t in range(m):
        keep[t] = sel[t] & (L[3, t] * n0[0] + L[4, t] * n0[1] + L[5, t] * n0[2] > plane_cos)
        nk += keep[t]
    if nk < 3:
        keep[:m] = sel[:m]
        nk = cnt
    mean_sel(L[3:6], keep, m, n0)
    ln = np.sqrt(n0[0] * n0[0] + n0[1] * n0[1] + n0[2] * n0[2])
    if not ln > 1e-15:
        return False
    out[0], out[1], out[2] = n0[0] / ln, n0[1] / ln, n0[2] / ln
    return True


def in_plane(e, n, out):  # fmt: skip
    """``e`` made orthogonal to ``n`` and unit, into ``out``; False where it has no direction."""
    d = e[0] * n[0] + e[1] * n[1] + e[2] * n[2]
    a0, a1, a2 = e[0] - d * n[0], e[1] - d * n[1], e[2] - d * n[2]
    ln = np.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    if not ln > 1e-15:
        return False
    out[0], out[1], out[2] = a0 / ln, a1 / ln, a2 / ln
    return True


def mean_sel(X, sel, m, out):  # fmt: skip
    """Mean of the columns ``X[0:3, t]`` where ``sel[t]`` into ``out`` (3,) (sums in entry order)."""
    s0 = s1 = s2 = 0.0
    c = 0
    for t in range(m):
        k = sel[t]
        s0 += X[0, t] if k else 0.0
        s1 += X[1, t] if k else 0.0
        s2 += X[2, t] if k else 0.0
        c += k
    out[0], out[1], out[2] = s0 / c, s1 / c, s2 / c


def gather(P, N, r, ent, L):  # fmt: skip
    """A wedge's entries side by side: ``L`` rows x y z, nx ny nz, r."""
    for t in range(ent.shape[0]):
        i = ent[t]
        L[0, t], L[1, t], L[2, t] = P[i, 0], P[i, 1], P[i, 2]
        L[3, t], L[4, t], L[5, t] = N[i, 0], N[i, 1], N[i, 2]
        L[6, t] = r[i]


def fit_line(x, y, sel, m, n):  # fmt: skip
    """``sections.fit_line`` of the ``n`` entries ``sel``: (intercept, residual std)."""
    xm = ym = 0.0
    for t in range(m):
        xm += x[t] if sel[t] else 0.0
        ym += y[t] if sel[t] else 0.0
    xm, ym = xm / n, ym / n
    sxy = sxx = 0.0
    for t in range(m):
        dx = x[t] - xm
        sxy += dx * (y[t] - ym) if sel[t] else 0.0
        sxx += dx * dx if sel[t] else 0.0
    b = sxy / sxx
    a = ym - b * xm
    rm = 0.0
    for t in range(m):
        rm += y[t] - a - b * x[t] if sel[t] else 0.0
    rm /= n
    v = 0.0
    for t in range(m):
        d = y[t] - a - b * x[t] - rm
        v += d * d if sel[t] else 0.0
    return a, np.sqrt(v / n)


HELPERS = ("pct", "pack", "mean_sel", "patch", "in_plane", "gather", "fit_line")


def upper(P, N, r, idx, starts, E1, z_top, cst, nbins, edge, corner, n_b, e1o, profile, resid, valid):  # fmt: skip
    """``profiles._upper_station`` of every station (``cst``: ``sectkernel._upper_constants``); fills the
    outputs (NaN in) where measured; returns 1 where a normal has no direction (the caller takes numpy's path)."""
    mn, up_cos, eb0, eb1, bottom_cos, plane_cos = int(cst[0]), cst[1], cst[2], cst[3], cst[4], cst[5]
    binw, sf0, sf1, edge_depth, depth_max = cst[6], cst[7], cst[8], cst[9], cst[10]
    K = starts.shape[0] - 1
    maxm = 1
    for k in range(K):
        maxm = max(maxm, starts[k + 1] - starts[k])
    L = np.empty((7, maxm))
    buf, depth, s = np.empty(maxm), np.empty(maxm), np.empty(maxm)
    bottom, sel, keep, lev = (np.zeros(maxm, np.bool_), np.zeros(maxm, np.bool_), np.zeros(maxm, np.bool_),
                              np.zeros(maxm, np.bool_))  # fmt: skip
    nb, e1p, O, e = np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    sums, cnt = np.empty(nbins), np.empty(nbins, np.int64)
    for k in range(K):
        a0 = starts[k]
        m = starts[k + 1] - a0
        if m < 3 * mn:
            continue
        ent = idx[a0 : a0 + m]
        gather(P, N, r, ent, L)
        for t in range(m):
            bottom[t] = (L[5, t] > up_cos) & (L[2, t] > z_top - 0.06)
        nbot = pack(L[6], bottom, m, buf)
        if nbot < mn:
            continue
        r_edge = pct(buf, nbot, 98.0)
        nnear = 0
        for t in range(m):
            sel[t] = bottom[t] & (L[6, t] > r_edge - eb1) & (L[6, t] < r_edge - eb0) & (L[5, t] > bottom_cos)
            nnear += sel[t]
        if nnear < mn:
            continue
        if not patch(L, sel, m, plane_cos, keep, buf, nb):
            return 1
        for t in range(m):
            depth[t] = L[0, t] * nb[0] + L[1, t] * nb[1] + L[2, t] * nb[2]
        d_b = pct(buf, pack(depth, keep, m, buf), 50.0)
        e[0], e[1], e[2] = E1[k, 0], E1[k, 1], E1[k, 2]
        if not in_plane(e, nb, e1p):
            return 1
        mean_sel(L, sel, m, O)
        On = O[0] * nb[0] + O[1] * nb[1] + O[2] * nb[2]
        nlev = 0
        nfit = 0
        for t in range(m):
            depth[t] = d_b - (L[0, t] * nb[0] + L[1, t] * nb[1] + L[2, t] * nb[2])
            s[t] = (L[0, t] - O[0]) * e1p[0] + (L[1, t] - O[1]) * e1p[1] + (L[2, t] - O[2]) * e1p[2]
            side = ((L[3, t] * e1p[0] + L[4, t] * e1p[1] + L[5, t] * e1p[2] > 0.3)
                    & (L[3, t] * nb[0] + L[4, t] * nb[1] + L[5, t] * nb[2] < 0.6)
                    & (depth[t] > 0) & (depth[t] < depth_max))  # fmt: skip
            sel[t] = side
            keep[t] = side & (depth[t] > sf0) & (depth[t] < sf1)  # the side-fit band
            nfit += keep[t]
            lev[t] = (depth[t] > -1e-3) & (depth[t] < edge_depth) & (s[t] > 0)
            nlev += lev[t]
        valid[k] = True
        n_b[k] = nb
        e1o[k] = e1p
        if nlev >= mn:
            s_e = pct(buf, pack(s, lev, m, buf), 95.0)
            for c in range(3):
                edge[k, c] = O[c] + s_e * e1p[c] + (d_b - edge_depth / 2 - On) * nb[c]
        else:  # the outermost bottom point
            best, bi = -np.inf, -1
            for t in range(m):
                if bottom[t] and L[6, t] > best:
                    best, bi = L[6, t], ent[t]
            edge[k] = P[bi]
        if nfit < mn:
            continue
        a, res = fit_line(depth, s, keep, m, nfit)
        sums[:] = 0.0
        cnt[:] = 0
        for t in range(m):
            if sel[t]:
                b = min(int(np.floor(depth[t] / binw)), nbins - 1)
                sums[b] += s[t]
                cnt[b] += 1
        for b in range(nbins):
            if cnt[b] > 0:
                profile[k, b] = sums[b] / cnt[b] - a
        for c in range(3):
            corner[k, c] = O[c] + a * e1p[c] + (d_b - On) * nb[c]
        resid[k] = res
    return 0


def sole(P, N, r, idx, starts, E1, z_tray, cst, foot, out, valid):  # fmt: skip
    """``profiles._sole_station`` (with ``_rim_top``) of every station (``cst``: minimum count, plane cos, rim
    cluster, rim radius, rim face cos, rim inside; ``foot``: (F, 3) footbed patches (cos, band inner, band outer)
    tried in turn); ``out`` (K, 13) NaN in: corner 0:3, rim 3:6, n_f 6:9, height, thickness, resid, body;
    returns 1 as :func:`upper`."""
    mn, plane_cos, rim_cluster, rim_radius, face_cos, rim_inside = int(cst[0]), cst[1], cst[2], cst[3], cst[4], cst[5]
    K = starts.shape[0] - 1
    maxm = 1
    for k in range(K):
        maxm = max(maxm, starts[k + 1] - starts[k])
    L = np.empty((7, maxm))
    buf, height, s, tmp = np.empty(maxm), np.empty(maxm), np.empty(maxm), np.empty(maxm)
    inward, sel, keep = np.zeros(maxm, np.bool_), np.zeros(maxm, np.bool_), np.zeros(maxm, np.bool_)
    nf, e1p, O, e = np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    for k in range(K):
        a0 = starts[k]
        m = starts[k + 1] - a0
        if m < 3 * mn:
            continue
        gather(P, N, r, idx[a0 : a0 + m], L)
        e[0], e[1], e[2] = E1[k, 0], E1[k, 1], E1[k, 2]
        for t in range(m):
            inward[t] = (L[3, t] * e[0] + L[4, t] * e[1] + L[5, t] * e[2] < -0.25) & (abs(L[5, t]) < 0.8)
        n_in = pack(L[6], inward, m, buf)
        if n_in < mn:
            continue
        r_w = pct(buf, n_in, 50.0)
        z_w = pct(buf, pack(L[2], inward, m, buf), 50.0)
        nfb = 0
        for f in range(foot.shape[0]):  # the first footbed patch with enough points (steep heel seat, sparse scan)
            nfb = 0
            for t in range(m):
                sel[t] = ((L[5, t] > foot[f, 0]) & (L[6, t] > r_w - foot[f, 2]) & (L[6, t] < r_w - foot[f, 1])
                          & (L[2, t] < z_w))  # fmt: skip
                nfb += sel[t]
            if nfb >= mn:
                break
        if nfb < mn:
            continue
        if not patch(L, sel, m, plane_cos, keep, buf, nf):
            return 1
        for t in range(m):
            height[t] = L[0, t] * nf[0] + L[1, t] * nf[1] + L[2, t] * nf[2]
        d_f = pct(buf, pack(height, keep, m, buf), 50.0)
        for t in range(m):
            height[t] = height[t] - d_f
            keep[t] = (L[6, t] > r_w - 3e-3) & (L[6, t] < r_w + 10e-3) & (height[t] > 2e-3)  # the rim band
        nrim = pack(height, keep, m, buf)
        if nrim < mn:
            continue
        top = pct(buf, nrim, 95.0) - rim_cluster
        for t in range(m):
            keep[t] = keep[t] & (height[t] > top) & (L[3, t] * nf[0] + L[4, t] * nf[1] + L[5, t] * nf[2] > 0.5)
        nup = pack(height, keep, m, buf)
        if nup < mn:
            continue
        h = pct(buf, nup, 50.0)
        if not in_plane(e, nf, e1p):
            return 1
        mean_sel(L, sel, m, O)
        nwall = 0
        nout = 0
        for t in range(m):
            s[t] = (L[0, t] - O[0]) * e1p[0] + (L[1, t] - O[1]) * e1p[1] + (L[2, t] - O[2]) * e1p[2]
            band = (height[t] > 0.25 * h) & (height[t] < 0.75 * h)
            keep[t] = inward[t] & band  # the wall
            nwall += keep[t]
            sel[t] = band & (L[3, t] * e1p[0] + L[4, t] * e1p[1] + L[5, t] * e1p[2] > 0.5)  # the outer face
            nout += sel[t]
        if nwall < mn:
            continue
        wm = 0.0
        for t in range(m):
            wm += s[t] if keep[t] else 0.0
        wm /= nwall
        v = 0.0
        for t in range(m):
            v += (s[t] - wm) * (s[t] - wm) if keep[t] else 0.0
        a = pct(buf, pack(s, keep, m, buf), 50.0)
        th = pct(buf, pack(s, sel, m, buf), 50.0) - a if nout >= mn else np.nan
        On = O[0] * nf[0] + O[1] * nf[1] + O[2] * nf[2]
        for c in range(3):
            out[k, c] = O[c] + (d_f - On) * nf[c] + a * e1p[c]  # the corner: base + a e1
        # _rim_top: the rim's flat top face right above the corner
        for t in range(m):
            d0, d1 = L[0, t] - out[k, 0], L[1, t] - out[k, 1]
            sel[t] = ((np.sqrt(d0 * d0 + d1 * d1) < rim_radius)
                      & (L[3, t] * nf[0] + L[4, t] * nf[1] + L[5, t] * nf[2] > face_cos)
                      & (s[t] - a > -rim_inside) & (height[t] > 0.4 * h))  # fmt: skip
        nface = pack(height, sel, m, tmp)
        if nface >= mn - 1:
            h = pct(tmp, nface, 50.0)
        for c in range(3):
            out[k, 3 + c] = O[c] + (d_f - On) * nf[c] + a * e1p[c] + h * nf[c]
            out[k, 6 + c] = nf[c]
        out[k, 9], out[k, 10], out[k, 11] = h, th, np.sqrt(v / nwall)
        out[k, 12] = out[k, 2] - z_tray
        valid[k] = True
    return 0
