"""A picture of one dataset sample for a person: meshes, scans and the true bite line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gluecell.core.fileio import atomic_open
from gluecell.core.types import DepthFrame

from .format import Dataset

__all__ = ["frame_points", "render_sample"]

#: At most this many points per cloud are drawn (matplotlib 3D is slow).
MAX_DRAWN_POINTS = 6000


def frame_points(frame: DepthFrame, stride: int = 2) -> np.ndarray:
    """(n, 3) float64 points of the valid depth pixels of ``frame`` in ``base_link`` (every ``stride``-th pixel)."""
    k = frame.intrinsics
    d = frame.depth[::stride, ::stride].astype(np.float64) * frame.depth_scale
    v, u = np.nonzero(d > 0)
    z = d[v, u]
    u = u * stride
    v = v * stride
    pts_cam = np.column_stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z])
    T = frame.T_base_cam
    return pts_cam @ T[:3, :3].T + T[:3, 3]


def _thin(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return points if len(points) <= n else points[rng.choice(len(points), n, replace=False)]


def _equal_axes(ax, pts: np.ndarray) -> None:
    lo, hi = pts.min(0), pts.max(0)
    c, r = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(c[0] - r, c[0] + r)
    ax.set_ylim(c[1] - r, c[1] + r)
    ax.set_zlim(c[2] - r, c[2] + r)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")


def render_sample(ds: Dataset, sample_id: str, out: str | os.PathLike[str]) -> Path:
    """Draw sample ``sample_id`` of ``ds`` to PNG ``out`` (atomic). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    truth = ds.truth(sample_id)
    inputs = ds.inputs(sample_id)
    item = inputs["workitem"]
    bl = truth["bite_line"]
    fig = plt.figure(figsize=(16, 11))
    fig.suptitle(
        f"sample {sample_id}: {item.style} EU {item.size_eu:g} {item.side}   "
        f"(material {truth['params'].get('material', '?')})",
        fontsize=14,
    )
    um, sm = truth["upper_mesh"], truth["sole_mesh"]
    ax = fig.add_subplot(2, 2, 1, projection="3d")
    ax.plot_trisurf(*um.vertices.T, triangles=um.faces, color="#c8b49a", alpha=0.35, linewidth=0)
    ax.plot(*np.vstack([bl, bl[:1]]).T, color="red", lw=2, label="true bite line")
    if "feather_edge" in truth:
        fe = truth["feather_edge"]
        ax.plot(*np.vstack([fe, fe[:1]]).T, color="navy", lw=1, label="feather edge")
    ax.set_title("lasted upper on its fixture (true mesh)")
    ax.legend(loc="upper left")
    _equal_axes(ax, um.vertices)
    ax = fig.add_subplot(2, 2, 2, projection="3d")
    colors = ["tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan", "tab:olive", "tab:pink"]
    for k, frame in enumerate(inputs["frames"]["upper"]):
        pts = frame_points(frame)
        lo, hi = um.vertices.min(0) - 0.03, um.vertices.max(0) + 0.03
        pts = pts[np.all((pts > lo) & (pts < hi), axis=1)]
        pts = _thin(pts, MAX_DRAWN_POINTS // 2, rng)
        ax.scatter(*pts.T, s=0.3, color=colors[k % len(colors)], label=f"camera {k}")
    ax.plot(*np.vstack([bl, bl[:1]]).T, color="red", lw=2)
    ax.set_title("virtual scans of the upper (all views) + true bite line")
    ax.legend(loc="upper left", markerscale=10)
    _equal_axes(ax, um.vertices)
    ax = fig.add_subplot(2, 2, 3, projection="3d")
    ax.plot_trisurf(*sm.vertices.T, triangles=sm.faces, color="#555555", alpha=0.4, linewidth=0)
    if "sole_bond_faces" in truth and truth["sole_bond_faces"].any():
        c = sm.triangles_center[truth["sole_bond_faces"].astype(bool)]
        c = _thin(c, MAX_DRAWN_POINTS, rng)
        ax.scatter(*c.T, s=0.5, color="gold", label="true sole bond region")
        ax.legend(loc="upper left", markerscale=8)
    ax.set_title("sole in its free state on the tray (true mesh)")
    _equal_axes(ax, sm.vertices)
    ax = fig.add_subplot(2, 2, 4)
    frame = inputs["frames"]["upper"][0]
    depth_mm = np.where(frame.depth > 0, frame.depth * frame.depth_scale * 1000.0, np.nan)
    im = ax.imshow(depth_mm, cmap="viridis")
    fig.colorbar(im, ax=ax, label="depth [mm] (white = no data)")
    ax.set_title(f"upper camera 0 depth image ({frame.intrinsics.width}x{frame.intrinsics.height})")
    fig.tight_layout()
    out = Path(out)
    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=90)
    plt.close(fig)
    return out
