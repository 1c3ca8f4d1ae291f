"""Synthetic test geometry for the planner's own tests and quick benches (not the world's truth).

A rounded-box lasted upper placed bottom-up at the upper station and a cup sole footbed-up at the
sole station, with a known bite line. Sizes: an EU 42 last is about 280 mm long (FACTS.md); the cup
sole's sidewall (20 mm) and wall thickness (4 mm) are chosen values (FACTS.md: not public).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticPair", "make_synthetic_pair", "footprint"]


def footprint(theta: np.ndarray, a: float, b: float, power: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Superellipse |x/a|^p + |y/b|^p = 1: points (k, 2) and outward unit normals (k, 2) at angles ``theta``."""
    c, s = np.cos(theta), np.sin(theta)
    r = (np.abs(c / a) ** power + np.abs(s / b) ** power) ** (-1.0 / power)
    xy = np.column_stack([r * c, r * s])
    g = np.column_stack([np.sign(xy[:, 0]) * np.abs(xy[:, 0]) ** (power - 1) / a**power,
                         np.sign(xy[:, 1]) * np.abs(xy[:, 1]) ** (power - 1) / b**power])  # fmt: skip
    return xy, g / np.linalg.norm(g, axis=1, keepdims=True)


def _grid_mesh(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate a (r, c, 3) grid closed around its columns: vertices (r*c, 3), faces (f, 3)."""
    r, c, _ = rows.shape
    i, j = np.meshgrid(np.arange(r - 1), np.arange(c), indexing="ij")
    a = i * c + j
    b = i * c + (j + 1) % c
    d = (i + 1) * c + j
    e = (i + 1) * c + (j + 1) % c
    faces = np.concatenate([np.stack([a, b, e], -1).reshape(-1, 3), np.stack([a, e, d], -1).reshape(-1, 3)])
    return rows.reshape(-1, 3), faces


@dataclass(frozen=True)
class SyntheticPair:
    """Meshes ((v, 3) vertices, (f, 3) faces), the true bite line and bond-face masks, base_link."""

    upper_vertices: np.ndarray
    upper_faces: np.ndarray
    sole_vertices: np.ndarray
    sole_faces: np.ndarray
    bite_line: np.ndarray
    rim_line: np.ndarray

    def sample(
        self, part: str, n: int, seed: int = 0, noise_mm: float = 0.0, visible_only: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Area-uniform surface samples (<= n, 3) and their outward normals of ``part``.

        ``visible_only`` drops surfaces facing down (the sole's tread on its tray), which a scan from above
        never sees.
        """
        v, f = (self.upper_vertices, self.upper_faces) if part == "upper" else (self.sole_vertices, self.sole_faces)
        rng = np.random.default_rng(seed)
        tri = v[f]
        cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = np.linalg.norm(cr, axis=1)
        fi = rng.choice(len(f), size=n, p=area / area.sum())
        u, w = rng.random((2, n))
        flip = u + w > 1
        u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
        t = tri[fi]
        pts = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + w[:, None] * (t[:, 2] - t[:, 0])
        nrm = cr[fi] / np.maximum(area[fi], 1e-300)[:, None]
        if noise_mm > 0:
            pts = pts + rng.normal(0, noise_mm * 1e-3, pts.shape)
        if visible_only:
            keep = nrm[:, 2] > -0.5
            pts, nrm = pts[keep], nrm[keep]
        return pts, nrm


def _profile_rows(xy, nxy, centre, levels):
    """Rows of a swept profile: each level is (inset along -normal or scale factor, z, mode)."""
    rows = []
    for inset, z, mode in levels:
        if mode == "offset":
            p = xy - inset * nxy
        elif mode == "tread":  # the flat bottom, swept from the centre out to the outline
            p = centre + (1.0 - inset) * (xy - centre)
        else:  # scale towards the centre
            p = centre + (1.0 - inset) * (xy - 0.012 * nxy - centre)
        rows.append(np.column_stack([p, np.full(len(p), z)]))
    return np.stack(rows)


def make_synthetic_pair(
    upper_centre: tuple[float, float] = (0.55, -0.20), sole_centre: tuple[float, float] = (0.55, 0.20),
    top_z: float = 0.18, bite_depth: float = 0.018, n_around: int = 360,
) -> SyntheticPair:  # fmt: skip
    """Rounded-box upper (280 x 100 mm, top at ``top_z``, 12 mm edge radius) and a matching cup sole.

    The bite line runs round the upper's side ``bite_depth`` below its top (varying +-3 mm from toe to
    heel, like toe spring), outward normals face away from the part.
    """
    th = np.linspace(-np.pi, np.pi, n_around, endpoint=False)
    a, b, r = 0.14, 0.05, 0.012
    xy, nxy = footprint(th, a, b)
    cu = np.asarray(upper_centre, dtype=float)
    xyu = xy + cu
    z0 = top_z - 0.14
    lev = [(0.0, z, "offset") for z in np.linspace(z0, top_z - r, 60)]
    lev += [(r * (1 - np.cos(ph)), top_z - r + r * np.sin(ph), "offset") for ph in np.linspace(0, np.pi / 2, 16)[1:]]
    lev += [(lam, top_z, "scale") for lam in np.linspace(0, 1, 30)[1:]]
    uv, uf = _grid_mesh(_profile_rows(xyu, nxy, cu, lev))
    zb = top_z - bite_depth - 0.003 * np.cos(th)
    bite = np.column_stack([xyu, zb])
    # cup sole: tread z=0.02, footbed 12 mm above, 20 mm sidewall, 4 mm thick; 1 mm clearance to the upper
    cs = np.asarray(sole_centre, dtype=float)
    xys = xy * (1 + 0.005 / b) + cs
    fb, rim, wt = 0.032, 0.052, 0.004
    slev = [(lam, 0.02, "tread") for lam in np.linspace(1, 0, 25)[:-1]]
    slev += [(0.0, z, "offset") for z in np.linspace(0.02, rim, 12)]
    slev += [(wt * f, rim, "offset") for f in (0.33, 0.66, 1.0)]
    slev += [(wt, z, "offset") for z in np.linspace(rim, fb, 12)[1:]]
    slev += [(lam, fb, "scale") for lam in np.linspace(0, 1, 30)[1:]]
    rows = _profile_rows(xys, nxy, cs, slev)
    rows[len(slev) - 29 :, :, :2] = cs + (1 - np.linspace(0, 1, 30)[1:, None, None]) * (xys - wt * nxy - cs)
    sv, sf = _grid_mesh(rows)
    rim_line = np.column_stack([xys - 0.5 * wt * nxy, np.full(n_around, rim)])
    return SyntheticPair(uv, uf, sv, sf, bite, rim_line)
