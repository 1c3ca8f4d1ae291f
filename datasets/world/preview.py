"""A picture of one synthetic pair for a person to check the geometry (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .pair import PairDetails, WorldPair

__all__ = ["save_preview"]


def _shaded(ax, mesh, color_mask: np.ndarray | None = None, stride: int = 1) -> None:
    from matplotlib import colormaps
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    tri = mesh.vertices[mesh.faces[::stride]] * 1000.0
    n = mesh.face_normals[::stride]
    shade = np.clip(n @ np.array([0.3, -0.4, 0.87]), 0.0, 1.0) * 0.65 + 0.35
    cols = colormaps["copper"](shade)
    if color_mask is not None:
        m = color_mask[::stride]
        cols[m] = colormaps["Blues"](0.35 + 0.6 * shade[m])
    ax.add_collection3d(Poly3DCollection(tri, facecolors=cols, edgecolor="none"))


def _box(ax, pts: np.ndarray) -> None:
    lo, hi = pts.min(axis=0) * 1000, pts.max(axis=0) * 1000
    c, r = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(c[0] - r, c[0] + r)
    ax.set_ylim(c[1] - r, c[1] + r)
    ax.set_zlim(c[2] - r, c[2] + r)
    ax.set_xlabel("x mm")
    ax.set_ylabel("y mm")


def _section(ax, details: PairDetails, station: int, title: str) -> None:
    """Upper column and the deformed/free sole column in the column's vertical plane."""
    up = details.upper[:, station]
    sole = details.attach.deformed_sole[:, station]
    d = details.last.direction[station]
    base = up[details.last.j_feather]

    def proj(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = p - base
        return (q[:, :2] @ d) * 1000, q[:, 2] * 1000

    ax.plot(*proj(details.last.points[:, station]), "k--", lw=0.8, label="last")
    ax.plot(*proj(up), color="saddlebrown", lw=1.5, label="upper")
    ax.plot(*proj(sole), color="tab:blue", lw=1.2, label="sole (pressed)")
    ax.plot(*proj(details.attach.bite_points[station : station + 1]), "r*", ms=10, label="bite")
    ax.set_aspect("equal")
    ax.set_xlim(-25, 15)
    ax.set_ylim(-40, 45)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def save_preview(pair: WorldPair, details: PairDetails, path: str | Path = "/tmp/world_pair.png") -> Path:
    """Write a 2x3 figure: upper at its station (bond region blue, bite line red, feather edge
    black), sole at its station (bond region blue), the pressed sole on the upper, and sections of
    the attach at the heel, the ball (lateral) and the toe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import trimesh

    fig = plt.figure(figsize=(16, 10))
    ax = fig.add_subplot(2, 3, 1, projection="3d")
    _shaded(ax, pair.upper_mesh, pair.upper_bond_faces)
    bl, fe = pair.bite_line * 1000, pair.feather_edge * 1000
    ax.plot(bl[:, 0], bl[:, 1], bl[:, 2], "r-", lw=1.2)
    ax.plot(fe[:, 0], fe[:, 1], fe[:, 2], "k-", lw=0.6)
    _box(ax, pair.upper_mesh.vertices)
    ax.view_init(22, -55)
    it = pair.item
    ax.set_title(f"upper {it.style} EU{it.size_eu:g} {it.side} (bottom-up)", fontsize=9)
    ax = fig.add_subplot(2, 3, 2, projection="3d")
    _shaded(ax, pair.sole_mesh, pair.sole_bond_faces)
    _box(ax, pair.sole_mesh.vertices)
    ax.view_init(40, -60)
    p = pair.params
    ax.set_title(
        f"sole, free ({p.material}, E={p.youngs_modulus_pa / 1e6:.1f} MPa, nu={p.poisson_ratio:.2f})", fontsize=9
    )
    ax = fig.add_subplot(2, 3, 3, projection="3d")
    from .last import grid_mesh, orient_outward

    v, f = grid_mesh(details.upper)
    upper_local = trimesh.Trimesh(v, orient_outward(v, f), process=False)
    vs, fs = grid_mesh(details.sole.points)
    pressed = trimesh.Trimesh(details.attach.deformed_sole.reshape(-1, 3), orient_outward(vs, fs), process=False)
    _shaded(ax, upper_local)
    _shaded(ax, pressed, np.ones(len(pressed.faces), bool))
    _box(ax, upper_local.vertices)
    ax.view_init(15, -70)
    ax.set_title("sole pressed onto the upper (part frame, as worn, right)", fontsize=9)
    n = details.upper.shape[1]
    lat = int(np.argmin(details.last.outline[:, 1] + 1e3 * (np.abs(details.last.outline[:, 0]) > 0.02)))
    for k, (st, name) in enumerate(((0, "heel"), (lat, "waist/lateral"), (n // 2 - n // 40, "toe"))):
        _section(fig.add_subplot(2, 3, 4 + k), details, st, f"section at station {st} ({name}), mm")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
