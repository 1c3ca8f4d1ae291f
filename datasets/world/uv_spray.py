"""Spraying along the path that was really executed, with the faults a real cell has (truth side).

The world's spray model (:func:`.spray.simulate_spray`, its hidden per-run variation included) lays the
film; this module adds what goes wrong on a line, as :class:`SprayFaults`:

- gun switching late or early: every actual gun opening / closing moves by ``gun_on_shift_s`` /
  ``gun_off_shift_s`` (positive = late). The nozzle stands still before the first and after the last
  waypoint, so an early opening or a late closing leaves a puddle there.
- clogging: flow windows ``(t0, t1, factor)`` (a partly blocked nozzle, factor 0 = fully blocked).
- pressure drop: the flow of the whole run scaled by ``pressure_factor``.
- drips / spitting: a large droplet of ``volume_m3`` shot along the nozzle axis at time ``t`` (a dirty
  nozzle spits when it opens); it spreads over a disc on the part.
- part off station: the part was knocked after it was scanned; the real mesh is moved by
  ``part_offset`` (dx, dy metres, dyaw radians about the station's vertical axis) while the robot sprays
  the planned path.

The valve's own hidden delays are drawn here (same ranges as the spray model's config) and applied to the
path's flags together with the fault shifts, so that flow windows split the path without seams.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gluecell.core.types import SprayPath

from .spray import SprayInputError, SprayWorldConfig, simulate_spray

__all__ = ["SprayFaults", "FilmResult", "spray_executed", "offset_transform", "shift_gun", "draw_faults"]


@dataclass(frozen=True)
class SprayFaults:
    """Faults of one spray run (all default to "none").

    Attributes:
        gun_on_shift_s: actual opening minus commanded, seconds (> 0 late, < 0 early).
        gun_off_shift_s: actual closing minus commanded, seconds (> 0 late, < 0 early).
        clogs: ((t0_s, t1_s, flow_factor), ...) windows of reduced flow, path time.
        pressure_factor: flow factor of the whole run (pressure drop < 1).
        drips: ((t_s, volume_m3), ...) spat droplets.
        part_offset: (dx_m, dy_m, dyaw_rad) of the part against where it was scanned.
    """

    gun_on_shift_s: float = 0.0
    gun_off_shift_s: float = 0.0
    clogs: tuple[tuple[float, float, float], ...] = ()
    pressure_factor: float = 1.0
    drips: tuple[tuple[float, float], ...] = ()
    part_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        vals = [self.gun_on_shift_s, self.gun_off_shift_s, self.pressure_factor, *self.part_offset]
        vals += [v for c in self.clogs for v in c] + [v for d in self.drips for v in d]
        if not np.all(np.isfinite(np.asarray(vals, dtype=float))):
            raise SprayInputError("SprayFaults: every value must be finite", field="faults")
        if not 0.0 <= self.pressure_factor <= 2.0 or any(not 0.0 <= c[2] <= 2.0 or c[1] <= c[0] for c in self.clogs):
            raise SprayInputError("SprayFaults: flow factors must be within 0..2 and windows t1 > t0", field="faults")
        if any(d[1] < 0 or d[1] > 1e-6 for d in self.drips):
            raise SprayInputError("SprayFaults: a drip volume must be within 0..1 ml", field="drips")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"gun_on_shift_s": self.gun_on_shift_s, "gun_off_shift_s": self.gun_off_shift_s,
                "clogs": [list(c) for c in self.clogs], "pressure_factor": self.pressure_factor,
                "drips": [list(d) for d in self.drips], "part_offset": list(self.part_offset)}  # fmt: skip

    @property
    def kinds(self) -> tuple[str, ...]:
        """Names of the faults that are switched on."""
        on = {"late_on": self.gun_on_shift_s > 0, "early_on": self.gun_on_shift_s < 0,
              "late_off": self.gun_off_shift_s > 0, "early_off": self.gun_off_shift_s < 0,
              "clog": bool(self.clogs), "pressure_drop": self.pressure_factor < 1.0, "drip": bool(self.drips),
              "off_station": any(abs(v) > 0 for v in self.part_offset)}  # fmt: skip
        return tuple(k for k, v in on.items() if v)


@dataclass(frozen=True)
class FilmResult:
    """The film that really landed, on the (possibly moved) true mesh.

    Attributes:
        vertices: (V, 3) float64 the part's true vertices where it really stood, base_link.
        film_m: (F,) float64 wet film per face, metres.
        T_offset: (4, 4) float64 the part-off-station transform applied to the truth.
        lump_m: (F,) float64 the part of ``film_m`` laid by drips and by the gun open while the nozzle stood
            still (puddles): what makes a blob.
    """

    vertices: np.ndarray
    film_m: np.ndarray
    T_offset: np.ndarray
    lump_m: np.ndarray


def offset_transform(offset: Sequence[float], centre: np.ndarray) -> np.ndarray:
    """(4, 4) rigid motion: yaw ``offset[2]`` about the vertical through ``centre`` then shift (dx, dy)."""
    dx, dy, yaw = (float(v) for v in offset)
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:2, 3] = np.asarray(centre[:2]) - T[:2, :2] @ np.asarray(centre[:2]) + [dx, dy]
    return T


def _interp(p: SprayPath, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tip (k, 3) and normalised-lerp quaternions (k, 4) at times ``ts`` (held before/after the ends)."""
    t = np.asarray(p.t)
    xyz = np.stack([np.interp(ts, t, p.xyz[:, c]) for c in range(3)], axis=1)
    q = np.asarray(p.quat_xyzw).copy()
    for i in range(1, len(q)):  # one hemisphere, so lerp takes the short way
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    qs = np.stack([np.interp(ts, t, q[:, c]) for c in range(4)], axis=1)
    return xyz, qs / np.linalg.norm(qs, axis=1, keepdims=True)


def shift_gun(p: SprayPath, on_shift: float, off_shift: float, windows: Sequence[float] = ()) -> list[SprayPath]:
    """The path with its gun openings moved by ``on_shift`` and closings by ``off_shift`` seconds.

    Waypoints are inserted at every shifted switching time (the robot holds still before the first and
    after the last waypoint, so the path is extended there when needed) and at every time in ``windows``,
    so that callers can split the gun's open time exactly at those instants.

    Returns:
        One path: ``[path]`` (a list, for symmetry with the splitting callers).
    """
    t = np.asarray(p.t, dtype=np.float64)
    cmd = np.asarray(p.spray, dtype=bool).copy()
    cmd[-1] = False
    edges = np.diff(np.concatenate([[0], cmd.astype(np.int8), [0]]))
    ons, offs = t[np.flatnonzero(edges == 1)] + on_shift, t[np.flatnonzero(edges == -1)] + off_shift
    keep = offs > ons
    ons, offs = ons[keep], offs[keep]
    ts = np.unique(np.concatenate([t, ons, offs, np.asarray(windows, dtype=float)]))
    xyz, q = _interp(p, ts)
    mid = np.append((ts[:-1] + ts[1:]) / 2, ts[-1] + 1.0)
    spray = np.zeros(len(ts), dtype=bool)
    for a, b in zip(ons, offs):
        spray |= (mid > a) & (mid < b)
    return [SprayPath(part=p.part, t=ts, xyz=xyz, quat_xyzw=q, spray=spray, frame=p.frame)]


def _split(p: SprayPath, a: float, b: float) -> SprayPath | None:
    """``p`` with its gun only on between ``a`` and ``b`` (both must be waypoint times of ``p``)."""
    mid = np.append((p.t[:-1] + p.t[1:]) / 2, np.inf)
    spray = p.spray & (mid > a) & (mid < b)
    if not spray.any():
        return None
    return replace(p, spray=spray)


def _add_drips(v: np.ndarray, f: np.ndarray, film: np.ndarray, paths: list[SprayPath], faults: SprayFaults,
               rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Spat droplets: each lands where the nozzle axis meets the part and spreads over a disc."""
    import open3d as o3d
    from scipy.spatial import cKDTree
    from scipy.spatial.transform import Rotation

    from .spray_score import face_areas

    if not faults.drips:
        return film
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    cent = v[f].mean(axis=1)
    tree, area, film = cKDTree(cent), face_areas(v, f), film.copy()
    for t_s, vol in faults.drips:
        p = min(paths, key=lambda pp, t=t_s: max(pp.t[0] - t, t - pp.t[-1], 0.0))  # the path running at t
        tip, q = _interp(p, np.array([t_s]))
        axis = Rotation.from_quat(q[0]).as_matrix()[:, 2]
        hit = scene.cast_rays(o3d.core.Tensor(np.concatenate([tip[0], axis])[None].astype(np.float32)))
        d = float(hit["t_hit"].numpy()[0])
        if not np.isfinite(d):
            continue
        centre = tip[0] + d * axis
        radius = float(rng.uniform(1.5e-3, 2.5e-3)) * (vol / 15e-9) ** (1 / 3)  # bigger drops spread wider
        idx = np.asarray(tree.query_ball_point(centre, radius), dtype=int)
        if idx.size == 0:
            continue
        w = 1.0 - (np.linalg.norm(cent[idx] - centre, axis=1) / radius) ** 2
        film[idx] += vol * w / max(float(np.sum(w * area[idx])), 1e-18)
    return film


def spray_executed(truth: Any, paths: Sequence[SprayPath], faults: SprayFaults | None, rng: np.random.Generator,
                   cfg: SprayWorldConfig | None = None) -> FilmResult:  # fmt: skip
    """Spray the upper of ``truth`` along the executed ``paths`` with ``faults``.

    Args:
        truth: WorldPair or dataset truth dict (``upper_mesh``).
        paths: executed upper paths (times, nozzle tip poses, gun flags as the robot reported them), base_link.
        faults: what went wrong (None = nothing).
        rng: draws the valve delays and the spray model's hidden run variation.
        cfg: the real gun (default ``SprayWorldConfig()``).

    Returns:
        :class:`FilmResult` on the mesh where the part really stood.
    """
    cfg = cfg if cfg is not None else SprayWorldConfig()
    faults = faults if faults is not None else SprayFaults()
    mesh = truth["upper_mesh"] if isinstance(truth, dict) else truth.upper_mesh
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces, dtype=np.int64)
    T = offset_transform(faults.part_offset, v.mean(axis=0))
    v = v @ T[:3, :3].T + T[:3, 3]
    on = float(rng.uniform(*cfg.on_delay_s)) + faults.gun_on_shift_s
    off = float(rng.uniform(*cfg.off_delay_s)) + faults.gun_off_shift_s
    ends = [x for p in paths for x in (float(p.t[0]), float(p.t[-1]))]
    cuts = sorted({x for c in faults.clogs for x in c[:2]} | set(ends))
    shifted = [(p, q) for p in paths for q in shift_gun(p, on, off, cuts)]
    bounds = [-np.inf, *cuts, np.inf]
    run_seed = int(rng.integers(2**31))
    quiet = replace(cfg, on_delay_s=(0.0, 0.0), off_delay_s=(0.0, 0.0))
    film, extra = np.zeros(len(f)), np.zeros(len(f))
    mesh_arrays = _Mesh(v, f)
    for a, b in itertools.pairwise(bounds):
        mid = b - 1.0 if not np.isfinite(a) else (a + 1.0 if not np.isfinite(b) else (a + b) / 2)
        factor = faults.pressure_factor * float(np.prod([c[2] for c in faults.clogs if c[0] <= mid < c[1]]))
        if factor <= 0:
            continue
        piece_cfg = replace(quiet, flow_ml_s=cfg.flow_ml_s * factor)
        for standing in (False, True):  # the nozzle standing before/after its path lays a puddle (a blob)
            pieces = [q for p, s in shifted if (not p.t[0] <= mid <= p.t[-1]) == standing
                      for q in [_split(s, a, b)] if q is not None]  # fmt: skip
            if pieces:
                dep = simulate_spray(mesh_arrays, pieces, np.random.default_rng(run_seed), piece_cfg).film_m
                film += dep
                extra += dep if standing else 0.0
    drips = _add_drips(v, f, np.zeros(len(f)), [s for _, s in shifted], faults, rng)
    return FilmResult(vertices=v, film_m=film + drips, T_offset=T, lump_m=extra + drips)


@dataclass(frozen=True)
class _Mesh:
    vertices: np.ndarray
    faces: np.ndarray


def draw_faults(rng: np.random.Generator, t_end: float, p_fault: float = 0.55) -> SprayFaults:
    """A random fault set for dataset generation: none with probability ``1 - p_fault``, else one or two faults
    with magnitudes from harmless to severe (so the data holds the boundary, not only clear cases)."""
    kinds = ["late_on", "early_on", "late_off", "early_off", "clog", "pressure", "drip", "station"]
    draws = rng.random(4)
    kw: dict[str, Any] = {}
    if draws[0] >= p_fault:
        return SprayFaults()
    chosen = rng.choice(kinds, size=1 + int(draws[1] < 0.25), replace=False)
    for k in chosen:
        if k in ("late_on", "early_on"):
            kw["gun_on_shift_s"] = (1 if k == "late_on" else -1) * float(rng.uniform(0.005, 0.15))
        elif k in ("late_off", "early_off"):
            kw["gun_off_shift_s"] = (1 if k == "late_off" else -1) * float(rng.uniform(0.005, 0.15))
        elif k == "clog":
            t0 = float(rng.uniform(0, max(t_end - 1.0, 0.1)))
            kw["clogs"] = ((t0, t0 + float(rng.uniform(0.2, 3.0)), float(rng.uniform(0.0, 0.6))),)
        elif k == "pressure":
            kw["pressure_factor"] = float(rng.uniform(0.15, 0.85))
        elif k == "drip":
            kw["drips"] = tuple((float(rng.uniform(0, t_end)), float(rng.uniform(8e-9, 60e-9)))
                                for _ in range(1 + int(rng.random() < 0.3)))  # fmt: skip
        else:
            r, a = float(rng.uniform(0.5e-3, 5e-3)), float(rng.uniform(0, 2 * np.pi))
            kw["part_offset"] = (r * np.cos(a), r * np.sin(a), float(rng.normal(0, np.radians(0.7))))
    return SprayFaults(**kw)
