"""The true spray outcome: what glue really lands where when the cell runs its planned paths.

This is the "actual system" of the spray (truth side; pipeline packages never import it). The
planner's deposition model (``pathplan``) is scored against it, so it is of higher fidelity and has
hidden per-run variation the planner cannot know (:class:`~.spray_config.SprayRun`):

1. The gun: the commanded on/off flags of each :class:`~gluecell.core.types.SprayPath` open and close
   the real valve after a delay; the robot follows the waypoints with a smooth path error, a tool
   centre point error and a misaligned nozzle axis.
2. Every open-gun time slice (<= 1 mm of travel, <= 2 ms) shoots equal-volume droplet rays drawn by
   stratified inverse-CDF sampling from the elliptic double-beta fan (:mod:`.spray_gun`) plus a wider
   mist fan; each ray is cast onto the true mesh (Open3D ``RaycastingScene``) and leaves its volume on
   the first face it hits. Occlusion is therefore exact, and film per area falls with
   ``cos(incidence) / distance^2`` by construction (the rays spread); droplets at grazing incidence
   partly rebound.
3. Film thickness per face = deposited volume / face area (wet film, metres).

:func:`score_upper` / :func:`score_sole` compare a film with the true bite line and bond masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gluecell.datasets.errors import DatasetsError

from .spray_config import SprayRun, SprayWorldConfig, draw_run
from .spray_gun import fan_directions, shot_offsets
from .spray_motion import gun_intervals, interpolate_pose, sample_shots, smooth_offset
from .spray_score import face_areas, level_film, sole_metrics, upper_metrics

__all__ = ["SprayError", "SprayInputError", "SprayWorldConfig", "SprayRun", "SprayOutcome", "draw_run",
           "simulate_spray", "score_upper", "score_sole", "spray_and_score"]  # fmt: skip


class SprayError(DatasetsError):
    """Base of the errors of the spray outcome simulator."""


class SprayInputError(SprayError, ValueError):
    """A spray path, mesh or truth given to the simulator is unusable (NaN, empty, mismatched).

    ``diagnostics`` carries ``field`` (what was wrong) and, for a path, ``path_index``.
    """


@dataclass(frozen=True)
class SprayOutcome:
    """What really landed on one mesh.

    Attributes:
        film_m: (F,) float64 wet film thickness per face of the mesh, metres.
        deposited_m3: volume that stuck to the mesh, m^3.
        emitted_m3: volume that left the gun in the fan (flow x transfer efficiency x open time), m^3.
        open_time_s: total time the valve was actually open, seconds.
        n_shots, n_rays: time slices and droplet rays cast.
        run: the hidden per-run variation that was drawn.
        covered_m, visible_m: film thresholds of the config (defaults for scoring).
    """

    film_m: np.ndarray
    deposited_m3: float
    emitted_m3: float
    open_time_s: float
    n_shots: int
    n_rays: int
    run: SprayRun
    covered_m: float
    visible_m: float

    @property
    def faces_hit(self) -> np.ndarray:
        """(F,) bool, faces with any glue."""
        return self.film_m > 0


@dataclass(frozen=True)
class _Path:
    t: np.ndarray
    xyz: np.ndarray
    rot: np.ndarray
    spray: np.ndarray


def _field(p: Any, name: str) -> Any:
    if isinstance(p, Mapping):
        return p.get(name)
    return getattr(p, name, None)


def _coerce_path(p: Any, k: int) -> _Path:
    from scipy.spatial.transform import Rotation

    def bad(msg: str, field: str) -> SprayInputError:
        return SprayInputError(f"spray path {k}: {msg}", field=field, path_index=k)

    if _field(p, "frame") not in (None, "base_link"):
        raise bad(f"frame {_field(p, 'frame')!r}: the true meshes are in 'base_link'", "frame")
    try:
        t = np.asarray(_field(p, "t"), dtype=np.float64)
        xyz = np.asarray(_field(p, "xyz"), dtype=np.float64)
        q = np.asarray(_field(p, "quat_xyzw"), dtype=np.float64)
        spray = np.asarray(_field(p, "spray"))
    except (TypeError, ValueError) as exc:
        raise bad(f"t, xyz, quat_xyzw and spray must be numeric arrays ({exc})", "path") from exc
    n = len(xyz) if xyz.ndim == 2 else 0
    if xyz.ndim != 2 or xyz.shape[1] != 3 or n < 2:
        raise bad(f"xyz must be (n, 3) with n >= 2 waypoints, got shape {xyz.shape}", "xyz")
    if t.shape != (n,) or q.shape != (n, 4) or spray.shape != (n,):
        raise bad(f"t {t.shape}, quat_xyzw {q.shape}, spray {spray.shape}: expected ({n},), ({n}, 4), ({n},)", "shape")
    for name, a in (("t", t), ("xyz", xyz), ("quat_xyzw", q)):
        if not np.all(np.isfinite(a)):
            raise bad(f"{name} holds {int(np.count_nonzero(~np.isfinite(a)))} NaN/inf value(s)", name)
    if np.any(np.diff(t) < 0):
        raise bad("waypoint times t must be non-decreasing", "t")
    norm = np.linalg.norm(q, axis=1)
    if np.any(np.abs(norm - 1.0) > 1e-3):
        raise bad(f"quaternion {int(np.argmax(np.abs(norm - 1.0)))} is not a unit quaternion", "quat_xyzw")
    if spray.dtype != bool and not np.all(np.isin(spray, (0, 1))):
        raise bad("spray must be booleans", "spray")
    rot = Rotation.from_quat(q / norm[:, None]).as_matrix()
    return _Path(t, xyz, rot, spray.astype(bool))


def _unwrap_paths(paths: Any) -> Any:
    """A Plan's paths, a single path as a one-element list, anything else unchanged."""
    if hasattr(paths, "paths") and not isinstance(paths, Mapping):  # a Plan
        paths = paths.paths
    if isinstance(paths, Mapping) or hasattr(paths, "xyz"):
        paths = [paths]
    return paths


def _coerce_paths(paths: Any, part: str | None) -> list[_Path]:
    paths = _unwrap_paths(paths)
    if not isinstance(paths, Sequence) or len(paths) == 0:
        raise SprayInputError("no spray paths given (empty path list)", field="paths")
    chosen = [(k, p) for k, p in enumerate(paths) if part is None or _field(p, "part") in (None, part)]
    if not chosen:
        raise SprayInputError(f"no spray path for part {part!r}", field="part")
    return [_coerce_path(p, k) for k, p in chosen]


def _coerce_mesh(mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        v = np.asarray(mesh.vertices, dtype=np.float64)
        f = np.asarray(mesh.faces, dtype=np.int64)
    except (AttributeError, TypeError, ValueError) as exc:
        raise SprayInputError(f"mesh must have vertices (V, 3) and faces (F, 3) ({exc})", field="mesh") from exc
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise SprayInputError(f"mesh: vertices {v.shape} / faces {f.shape}, expected (V, 3) / (F>0, 3)", field="mesh")
    if not np.all(np.isfinite(v)) or f.min() < 0 or f.max() >= len(v):
        raise SprayInputError("mesh: non-finite vertices or out-of-range face indices", field="mesh")
    return v, f


class _Caster:
    """Casts droplet rays onto one mesh and accumulates the stuck volume per face."""

    def __init__(self, v: np.ndarray, f: np.ndarray, cfg: SprayWorldConfig) -> None:
        import open3d as o3d

        self._o3d = o3d
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
        self.cfg = cfg
        self.volume = np.zeros(len(f))
        self.n_rays = 0

    def cast(self, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) hit distance (inf: none), face id and cos(incidence) (<= 0: back face)."""
        rays = np.concatenate([origins, dirs], axis=1).astype(np.float32)
        r = self.scene.cast_rays(self._o3d.core.Tensor(rays), nthreads=self.cfg.n_threads)
        self.n_rays += len(rays)
        hit = r["t_hit"].numpy().astype(np.float64)
        cos = -np.einsum("ij,ij->i", r["primitive_normals"].numpy().astype(np.float64), dirs)
        return hit, r["primitive_ids"].numpy().astype(np.int64), cos

    def deposit(self, origins: np.ndarray, dirs: np.ndarray, vol: np.ndarray) -> None:
        hit, pid, cos = self.cast(origins, dirs)
        ok = (hit <= self.cfg.max_range_m) & (cos > 0)
        stick = vol[ok] * (1.0 - self.cfg.bounce_loss * (1.0 - cos[ok]) ** 2)
        self.volume += np.bincount(pid[ok], weights=stick, minlength=len(self.volume))


def _shoot(caster: _Caster, tip: np.ndarray, R: np.ndarray, dwell: np.ndarray, run: SprayRun,
           offsets: np.ndarray) -> None:  # fmt: skip
    """Shoot core and mist rays for shots ``tip`` (k, 3), real spray frames ``R`` (k, 3, 3), ``dwell`` (k,) s,
    grid ``offsets`` (k, 2)."""
    cfg = caster.cfg
    axis = R[:, :, 2]
    h, _, _ = caster.cast(tip, axis)
    h = np.where(np.isfinite(h) & (h <= cfg.max_range_m), h, cfg.default_standoff_m)
    lo, hi = cfg.core_rays
    n_core = np.clip(np.ceil(2.0 * h * float(np.max(run.half_tan)) / cfg.ray_spacing_m), lo, hi).astype(int)
    rate = run.flow_m3_s * run.transfer_efficiency * dwell
    half = (float(run.half_tan[0]), float(run.half_tan[1]))
    mist_half = (half[0] * cfg.mist_angle_scale, half[1] * cfg.mist_angle_scale)
    groups = [(n, np.flatnonzero(n_core == n), half, cfg.fan_beta, 1.0 - cfg.mist_fraction) for n in np.unique(n_core)]
    if cfg.mist_fraction > 0:
        groups.append((cfg.mist_rays, np.arange(len(tip)), mist_half, cfg.mist_beta, cfg.mist_fraction))
    for n, idx, ht, beta, share in groups:
        d_local = fan_directions(offsets[idx], int(n), ht, beta)  # (k, n*n, 3)
        d = np.matmul(d_local, np.transpose(R[idx], (0, 2, 1))).reshape(-1, 3)
        o = np.repeat(tip[idx], n * n, axis=0)
        vol = np.repeat(rate[idx] * share / (n * n), n * n)
        caster.deposit(o, d, vol)


def _run_path(caster: _Caster, p: _Path, run: SprayRun, first_shot: int) -> tuple[float, int]:
    """Spray one path whose first shot has global index ``first_shot``; returns (open time s, shots)."""
    cfg = caster.cfg
    shots = sample_shots(p.t, p.xyz, gun_intervals(p.t, p.spray, run.on_delay_s, run.off_delay_s),
                         cfg.step_m, cfg.max_dt_s)  # fmt: skip
    for a in range(0, len(shots.t), cfg.batch_shots):
        ts, dw = shots.t[a : a + cfg.batch_shots], shots.dwell[a : a + cfg.batch_shots]
        tip, R = interpolate_pose(p.t, p.xyz, p.rot, ts)
        tip = tip + smooth_offset(ts, run.path_amp_m, run.path_hz, run.path_phase) + R @ run.tcp_offset_m
        offsets = shot_offsets(first_shot + a + np.arange(len(ts)), run.grid_start)
        _shoot(caster, tip, R @ run.R_misalign, dw, run, offsets)
    return float(shots.dwell.sum()), len(shots.t)


def simulate_spray(
    mesh: Any,
    paths: Any,
    rng: np.random.Generator | int,
    cfg: SprayWorldConfig | None = None,
    *,
    part: str | None = None,
) -> SprayOutcome:
    """Spray ``paths`` onto the true ``mesh`` and return the wet film per face.

    Args:
        mesh: the true part (trimesh.Trimesh or anything with ``vertices`` (V, 3) and ``faces`` (F, 3)),
            base_link metres, outward-wound. The sole is sprayed in its free state at the sole
            station: pass ``sole_mesh`` as placed.
        paths: a :class:`~gluecell.core.types.SprayPath`, a sequence of them, a
            :class:`~gluecell.core.plan.Plan`, or mappings / objects with ``t`` (n,) s, ``xyz`` (n, 3)
            m, ``quat_xyzw`` (n, 4) and ``spray`` (n,) bool; base_link.
        rng: numpy Generator or int seed; draws the hidden run variation (and the droplet grid's origin).
        cfg: gun, variation and resolution (default ``SprayWorldConfig()``).
        part: spray only the paths of this part ("upper" / "sole"); all when None.

    Returns:
        :class:`SprayOutcome`; the same seed and inputs give identical arrays.

    Raises:
        SprayInputError: no paths, fewer than 2 waypoints, NaN/inf, bad shapes or quaternions, bad mesh.
    """
    cfg = cfg if cfg is not None else SprayWorldConfig()
    v, f = _coerce_mesh(mesh)
    todo = _coerce_paths(paths, part)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    run = draw_run(rng, cfg)
    caster = _Caster(v, f, cfg)
    open_s, shots = 0.0, 0
    for p in todo:
        o, s = _run_path(caster, p, run, shots)
        open_s, shots = open_s + o, shots + s
    area = np.maximum(face_areas(v, f), 1e-18)
    film = level_film(v, f, area, caster.volume, cfg.level_radius_m)
    return SprayOutcome(film_m=film, deposited_m3=float(caster.volume.sum()),
                        emitted_m3=run.flow_m3_s * run.transfer_efficiency * open_s, open_time_s=open_s,
                        n_shots=shots, n_rays=caster.n_rays, run=run, covered_m=cfg.covered_m,
                        visible_m=cfg.visible_m)  # fmt: skip


def _truth(truth: Any, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    keys = (f"{part}_mesh", f"{part}_bond_faces") + (("bite_line",) if part == "upper" else ())
    got = {k: (truth.get(k) if isinstance(truth, Mapping) else getattr(truth, k, None)) for k in keys}
    missing = [k for k, val in got.items() if val is None]
    if missing:
        raise SprayInputError(f"truth lacks {', '.join(missing)} (give a WorldPair or a dataset truth dict)",
                              field=missing[0])  # fmt: skip
    v, f = _coerce_mesh(got[f"{part}_mesh"])
    bond = np.asarray(got[f"{part}_bond_faces"], dtype=bool)
    if bond.shape != (len(f),):
        raise SprayInputError(f"{part}_bond_faces: shape {bond.shape}, expected ({len(f)},)", field="bond_faces")
    bite = None
    if part == "upper":
        bite = np.asarray(got["bite_line"], dtype=np.float64)
        if bite.ndim != 2 or bite.shape[1] != 3 or len(bite) < 3 or not np.all(np.isfinite(bite)):
            raise SprayInputError(f"bite_line: expected finite (m >= 3, 3), got {bite.shape}", field="bite_line")
    return v, f, bond, bite


def _film(outcome: SprayOutcome, n_faces: int) -> np.ndarray:
    film = np.asarray(outcome.film_m, dtype=np.float64)
    if film.shape != (n_faces,):
        raise SprayInputError(f"outcome has film for {film.shape} faces but the truth mesh has {n_faces}: "
                              "was it simulated on this part's mesh?", field="film_m")  # fmt: skip
    return film


def score_upper(
    truth: Any, outcome: SprayOutcome, *, covered_m: float | None = None, visible_m: float | None = None
) -> dict[str, float]:
    """Score the film on the upper against the true bite line and bond mask.

    Args:
        truth: a :class:`~gluecell.datasets.world.pair.WorldPair` or the dict of
            ``open_dataset(DIR).truth(id)`` (``upper_mesh``, ``upper_bond_faces``, ``bite_line``).
        outcome: :func:`simulate_spray` on ``upper_mesh``.
        covered_m, visible_m: film thresholds (default: the outcome's config).

    Returns:
        ``coverage`` (bond-area fraction with film >= covered), ``gap_area_mm2`` (bond area below it),
        ``bond_area_mm2``, ``band_coverage_2mm`` / ``band_coverage_5mm`` (coverage of the bond faces
        within 2 / 5 mm of the bite line), ``film_mean_mm`` (area-weighted) and ``film_p05_mm`` over
        the bond region, ``glue_above_max_mm`` / ``glue_above_p99_mm`` (surface distance up from the
        bite line of faces outside the bond region with film >= visible; 0 when none) and
        ``glue_above_area_mm2``.
    """
    v, f, bond, bite = _truth(truth, "upper")
    film = _film(outcome, len(f))
    cov = outcome.covered_m if covered_m is None else covered_m
    vis = outcome.visible_m if visible_m is None else visible_m
    return upper_metrics(v, f, film, bond, bite, cov, vis)


def score_sole(
    truth: Any, outcome: SprayOutcome, *, covered_m: float | None = None, visible_m: float | None = None
) -> dict[str, float]:
    """Score the film on the free sole against its true bond region (footbed, corner, inner wall).

    Args:
        truth: a WorldPair or a dataset truth dict (``sole_mesh``, ``sole_bond_faces``).
        outcome: :func:`simulate_spray` on ``sole_mesh`` as placed at the sole station.
        covered_m, visible_m: film thresholds (default: the outcome's config).

    Returns:
        ``coverage``, ``gap_area_mm2``, ``bond_area_mm2``, ``film_mean_mm``, ``film_p05_mm`` (as for the
        upper) and ``outside_max_mm`` / ``outside_p99_mm`` / ``outside_area_mm2``: glue (film >= visible)
        outside the bond region, surface distance from the region.
    """
    v, f, bond, _ = _truth(truth, "sole")
    film = _film(outcome, len(f))
    cov = outcome.covered_m if covered_m is None else covered_m
    vis = outcome.visible_m if visible_m is None else visible_m
    return sole_metrics(v, f, film, bond, cov, vis)


def spray_and_score(
    truth: Any, paths: Any, rng: np.random.Generator | int, cfg: SprayWorldConfig | None = None
) -> dict[str, dict[str, float]]:
    """Spray every part that ``paths`` (a Plan or SprayPaths with ``part``) covers and score it.

    Args:
        truth: a WorldPair or a dataset truth dict (meshes, masks, bite line).
        paths: as for :func:`simulate_spray`; the upper's paths go onto ``upper_mesh``, the sole's onto
            ``sole_mesh`` as placed at the sole station.
        rng: Generator or seed; the parts are sprayed in the order upper, sole from it.
        cfg: the gun (default ``SprayWorldConfig()``).

    Returns:
        ``{"upper": score_upper(...), "sole": score_sole(...)}`` for the parts that have paths.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    items = list(_unwrap_paths(paths))
    if not items:
        raise SprayInputError("no spray paths given (empty path list)", field="paths")
    parts = {_field(p, "part") for p in items}
    if not parts <= {"upper", "sole"}:
        raise SprayInputError(f"every path needs part 'upper' or 'sole', got {sorted(map(str, parts))}", field="part")
    out: dict[str, dict[str, float]] = {}
    for part, score in (("upper", score_upper), ("sole", score_sole)):
        if part in parts:
            v, f, _, _ = _truth(truth, part)
            mesh = _MeshArrays(v, f)
            out[part] = score(truth, simulate_spray(mesh, items, rng, cfg, part=part))
    return out


@dataclass(frozen=True)
class _MeshArrays:
    vertices: np.ndarray
    faces: np.ndarray
