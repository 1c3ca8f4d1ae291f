"""Find the sole/upper junction (the actual bite line) on a scan of an attached pair.

The junction is the crease where the sole's top edge meets the upper: walking up the side of a finished
shoe, the surface turns sharply *concave* there (the sole's rim stands proud of the upper). The finder:

1. Puts the mesh in a z-up, toe +x frame and measures heights above the tread (lowest point).
2. Scores every vertex by its concavity: the sum over its concave edges of dihedral angle x edge length
   (trimesh face adjacency), per unit of vertex area.
3. Cuts the shoe into angular stations round its plan outline; in each, the concavity is binned by
   height inside a search band (default 25-70 mm above the tread).
4. Picks one height per station by dynamic programming round the closed outline: maximise the
   concavity while penalising height jumps between neighbouring stations (the junction is continuous).
5. Takes the concavity-weighted centroid of the crease vertices at that height as the junction point;
   smooths and resamples to a closed polyline (<= 1 mm spacing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .attach_pose import closed_resample
from .errors import JunctionError
from .sections import fill_invalid, outline_frame, smooth_closed, station_angles, wedge_members

__all__ = ["JunctionResult", "JunctionConfig", "find_junction", "load_mesh", "junction_to_json", "plot_junction"]

JUNCTION_FORMAT = "gluecell.junction/1"


@dataclass(frozen=True)
class JunctionConfig:
    """Settings of the junction finder.

    Attributes:
        band: heights above the tread searched for the crease, metres (cup soles and welts: 25-70 mm).
        n_stations: stations round the outline.
        bin: height bin, metres.
        jump_cost: DP penalty per metre of height change between neighbouring stations, relative to the
            mean station score (a few mm of jump costs as much as a station's crease is worth).
        min_coverage: share of stations that must show a crease (else :class:`JunctionError`).
    """

    band: tuple[float, float] = (0.025, 0.070)
    n_stations: int = 180
    bin: float = 1.0e-3
    jump_cost: float = 400.0
    min_coverage: float = 0.8


@dataclass(frozen=True)
class JunctionResult:
    """The junction found on a mesh.

    Attributes:
        line: (m, 3) float64 closed polyline in the *mesh's own frame*, metres.
        height_m: (m,) height of each point above the tread, metres.
        coverage: share of stations with a crease of their own (the rest bridged from neighbours).
        station_heights: (K,) metres; station_score: (K,) crease strength at the chosen height.
        R: (3, 3) rotation from the mesh frame to the finder's z-up frame.
    """

    line: np.ndarray
    height_m: np.ndarray
    coverage: float
    station_heights: np.ndarray
    station_score: np.ndarray
    R: np.ndarray


def load_mesh(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (v, 3) float64, faces (f, 3) int64) of an OBJ/PLY/STL file."""
    import trimesh

    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except (OSError, ValueError) as exc:
        raise JunctionError(f"{path}: cannot read mesh: {exc}", stage="junction") from exc
    if len(mesh.faces) == 0:
        raise JunctionError(f"{path}: no faces", stage="junction")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def _axis(spec: str) -> np.ndarray:
    sign = -1.0 if spec.startswith("-") else 1.0
    name = spec.lstrip("+-").lower()
    if name not in ("x", "y", "z"):
        raise JunctionError(f"axis must be one of +x, -y, ... got {spec!r}", stage="junction")
    v = np.zeros(3)
    v["xyz".index(name)] = sign
    return v


def _frame(up_axis: str, toe_axis: str) -> np.ndarray:
    up, toe = _axis(up_axis), _axis(toe_axis)
    if abs(up @ toe) > 0.5:
        raise JunctionError("up and toe axes must differ", stage="junction")
    return np.vstack([toe, np.cross(up, toe), up])


def _concavity(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """(v,) concave dihedral angle x edge length per vertex, divided by the vertex's area (1/m)."""
    import trimesh

    mesh = trimesh.Trimesh(V, F, process=False)
    ang = mesh.face_adjacency_angles
    edges = mesh.face_adjacency_edges
    length = np.linalg.norm(V[edges[:, 0]] - V[edges[:, 1]], axis=1)
    w = np.where(~mesh.face_adjacency_convex, ang * length, 0.0)
    score = np.zeros(len(V))
    np.add.at(score, edges[:, 0], w / 2)
    np.add.at(score, edges[:, 1], w / 2)
    area = np.zeros(len(V))
    np.add.at(area, F.ravel(), np.repeat(mesh.area_faces / 3, 3))
    return score / np.maximum(area, 1e-12)


def _dp_path(cost: np.ndarray, jump: float) -> np.ndarray:
    """Closed-path DP: one bin per station minimising sum(cost) + jump * |bin step|, (K,) bin indices."""
    K, B = cost.shape
    steps = np.abs(np.arange(B)[:, None] - np.arange(B)[None, :]) * jump
    best_total, best_path = np.inf, np.zeros(K, dtype=np.int64)
    for start in range(0, B, max(1, B // 12)):  # close the loop: try several starting bins
        acc = np.full(B, np.inf)
        acc[start] = cost[0, start]
        back = np.zeros((K, B), dtype=np.int64)
        for k in range(1, K):
            tot = acc[None, :] + steps
            back[k] = np.argmin(tot, axis=1)
            acc = tot[np.arange(B), back[k]] + cost[k]
        acc = acc + steps[:, start]
        end = int(np.argmin(acc))
        if acc[end] < best_total:
            best_total = acc[end]
            path = np.empty(K, dtype=np.int64)
            path[-1] = end
            for k in range(K - 1, 0, -1):
                path[k - 1] = back[k, path[k]]
            best_path = path
    return best_path


def find_junction(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    up_axis: str = "+y",
    toe_axis: str = "+x",
    cfg: JunctionConfig | None = None,
) -> JunctionResult:
    """Find the sole/upper junction all round a finished shoe.

    Args:
        vertices: (v, 3) float64, metres, the mesh's frame. faces: (f, 3) int64.
        up_axis, toe_axis: the mesh's up and toe directions ("+y", "+x", ...).
        cfg: finder settings.

    Raises:
        JunctionError: no crease found at enough stations.
    """
    cfg = cfg or JunctionConfig()
    R = _frame(up_axis, toe_axis)
    V = vertices @ R.T
    z0 = V[:, 2].min()
    hgt = V[:, 2] - z0
    conc = _concavity(V, faces)
    frame = outline_frame(V[hgt < cfg.band[1]])
    theta, _ = frame.polar(V)
    wedges = wedge_members(theta, cfg.n_stations, 1.5)
    edges = np.arange(cfg.band[0], cfg.band[1] + cfg.bin / 2, cfg.bin)
    B = len(edges) - 1
    score = np.zeros((cfg.n_stations, B))
    for k, idx in enumerate(wedges):
        idx = idx[(hgt[idx] >= cfg.band[0]) & (hgt[idx] < cfg.band[1])]
        if len(idx):
            score[k] = np.histogram(hgt[idx], bins=edges, weights=conc[idx])[0]
    score = (score + np.roll(score, 1, axis=1) + np.roll(score, -1, axis=1)) / 3  # 3 mm window
    scale = float(score.max(axis=1).mean()) or 1.0
    path = _dp_path(-score / scale, cfg.jump_cost * cfg.bin)
    chosen = score[np.arange(cfg.n_stations), path]
    has = chosen > 0.2 * scale
    coverage = float(has.mean())
    if coverage < cfg.min_coverage:
        raise JunctionError(
            f"a sole/upper crease was found at only {coverage:.0%} of the outline", stage="junction", coverage=coverage
        )
    z_k = edges[path] + cfg.bin / 2
    pts = np.full((cfg.n_stations, 3), np.nan)
    for k, idx in enumerate(wedges):
        sel = idx[np.abs(hgt[idx] - z_k[k]) < 2 * cfg.bin]
        if has[k] and len(sel) and conc[sel].sum() > 0:
            pts[k] = np.average(V[sel], axis=0, weights=conc[sel] + 1e-12)
    ok = np.all(np.isfinite(pts), axis=1)
    th_k = station_angles(cfg.n_stations)
    ring = smooth_closed(fill_invalid(th_k, pts, ok), 40)
    line = closed_resample(ring, 0.8e-3)
    return JunctionResult(
        line=line @ R,
        height_m=line[:, 2] - z0,
        coverage=coverage,
        station_heights=z_k,
        station_score=chosen / scale,
        R=R,
    )


def junction_to_json(res: JunctionResult, source: str) -> dict:
    """``gluecell.junction/1`` document (mesh frame, metres)."""
    return {
        "format": JUNCTION_FORMAT,
        "frame": "mesh",
        "units": "m",
        "source": source,
        "junction": [[float(v) for v in p] for p in res.line],
        "height_above_tread_m": [float(h) for h in res.height_m],
        "coverage": res.coverage,
    }


def plot_junction(vertices: np.ndarray, faces: np.ndarray, res: JunctionResult, path: str | os.PathLike[str]) -> None:
    """Save a picture of the mesh with the junction from several views (matplotlib Agg), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gluecell.core.fileio import atomic_open

    V = vertices @ res.R.T
    L = res.line @ res.R.T
    z0 = V[:, 2].min()
    fig = plt.figure(figsize=(16, 10))
    views = (
        ("side (from -y)", 0, 2, V[:, 1] < np.median(V[:, 1])),
        ("side (from +y)", 0, 2, V[:, 1] >= np.median(V[:, 1])),
    )
    for i, (title, a, b, vis) in enumerate(views):
        ax = fig.add_subplot(2, 2, i + 1)
        ax.scatter(V[vis, a], V[vis, b] - z0, s=0.2, c="0.6")
        lv = L[:, 1] < np.median(V[:, 1]) if i == 0 else L[:, 1] >= np.median(V[:, 1])
        ax.plot(L[lv, a], L[lv, b] - z0, "r.", ms=1.5)
        ax.set_aspect("equal")
        ax.set_title(f"{title}: junction in red, height above tread (m)")
    ax = fig.add_subplot(2, 2, 3)
    ax.scatter(V[:, 0], V[:, 1], s=0.2, c="0.6")
    ax.plot(L[:, 0], L[:, 1], "r-", lw=1)
    ax.set_aspect("equal")
    ax.set_title("plan (from above)")
    ax = fig.add_subplot(2, 2, 4, projection="3d")
    sub = V[:: max(1, len(V) // 6000)]
    ax.scatter(sub[:, 0], sub[:, 1], sub[:, 2] - z0, s=0.2, c="0.6")
    ax.plot(L[:, 0], L[:, 1], L[:, 2] - z0, "r-", lw=1.5)
    ax.set_title(f"3-D; heights {res.height_m.min() * 1e3:.0f}-{res.height_m.max() * 1e3:.0f} mm")
    ax.set_box_aspect((np.ptp(V[:, 0]), np.ptp(V[:, 1]), np.ptp(V[:, 2])))
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=80)
    plt.close(fig)
