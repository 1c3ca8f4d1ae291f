"""Path-planning bench: latency from two clouds to robot programs, motion time, kinematic feasibility, and the
simulated spray outcome judged against the world's truth, on the dataset's ``test`` split.

Inputs per pair (what this bench can give the planner without the other stages): clouds sampled from the true
meshes with 0.2 mm Gaussian noise (an ideal multi-view scan of the whole upper; the sole's tread, resting on
its tray, left out) and the *true* bite line as ``--bite-line``. The outcome is the
deposition model's film over a fresh dense sample of the true upper surface: coverage of the true bond faces,
glue beyond the true bite line (mm, along the surface ~ straight distance to the line; film at the 10 um
visible level, ``DepositionParams.visible_mm``), gap area. Scan and
bite-line errors from perception/deformation are therefore not in these figures; the lead's end-to-end bench
adds them.

Metrics (units in the names): ``pathplan_latency_p50_ms``/``_p95_ms`` (both parts: region, tuning,
deposition, IK and timing; wall, as in the cell: the sole in the warm worker), ``pathplan_latency_main_cpu_p50_ms``
/ ``_p95_ms`` (the planning thread's own CPU in that time: the upper's critical path, free of the machine's
other load) with ``pathplan_load_avg`` (1-minute load average while planning),
``pathplan_robot_time_per_pair_s`` (upper + sole program durations),
``pathplan_joint_step_max_deg`` (largest joint step between neighbouring spraying waypoints, worst pair),
``pathplan_spray_at_joint_limit_share`` (share of spraying time some joint runs at its speed limit, mean),
``pathplan_joint_speed_peak_fraction`` (peak joint speed / limit: <= 1 within the UR10e's limits),
``pathplan_feasible_rate`` (pairs with a reachable, limit-respecting program for both parts),
``pathplan_plan_rate`` (pairs planned at all), ``pathplan_upper_coverage_mean``/``_min`` (all of the true bond
faces) and ``pathplan_upper_coverage_1mm_mean`` (leaving out the 1 mm strip DESIGN.md tolerates at the line),
``pathplan_sole_coverage_mean``, ``pathplan_above_bite_p99_mm``/``_max_mm``, ``pathplan_gap_area_mm2_mean``,
and refusals by kind (``pathplan_refused_region``/``_coverage``/``_kinematics``; each reason is logged).

The same paths are also sprayed by the world's TRUE spray simulator (through ``cell.sim.world``: a double-beta
fan with mist, exact occlusion, the gun's hidden per-run flow/fan/valve variation and the robot's path and
TCP errors) and scored on the true mesh: ``pathplan_true_*`` (coverage of the true bond faces, glue above the
true bite line p99/max mm at the 10 um visible level, gap area; ``_true_dry_strip_p95_mm`` (+ ``_median``) the dry
strip below the true line, ``_true_coverage_1mm_mean``/``_min`` the bond faces > 1 mm from it; all on the true
upper refined near the line, :func:`refine_truth`; ``_true_dry_strip_face_p95_mm`` on the world's own faces, as
measured before 2026-12-07). Side by side on the same pairs and judged the
same way (``pathplan_<row>_true_*``), where ``ctx.quick`` is false:

- ``truebite``: the planner given the world's true bite line on the ideal scan (the rows above; the ideal
  upper bound of planning alone).
- ``teach``: teach once: one path per style, size and side, planned on a nominal pair of the world (its ideal
  scan and true line, i.e. a perfect hand-taught path), then placed rigidly on each pair by registering the
  nominal upper to the pair's scan (``gluecell.perception.registration``).

The whole pipeline from the depth frames (perception, the predicted line with its margin, the learned
correction), the operator-marked line and the rigid-sole baseline are the ``pipeline`` section
(:mod:`gluecell.cell.bench.pipeline`), judged the same way.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["bench", "sample_scan", "judge_upper", "judge_sole", "judge_true", "teach_once_path"]

#: Pairs evaluated (quick / full).
N_QUICK, N_FULL = 2, 8
#: Noise of the ideal scan (m): the order of D405 noise at 100-200 mm (FACTS.md: 0.1-0.4 mm).
SCAN_NOISE_M = 0.2e-3
#: True spray runs per path (the gun's hidden variation differs per run).
TRUE_RUNS = 2


def sample_scan(mesh: Any, n: int, seed: int, *, drop_below: float = -0.5) -> tuple[np.ndarray, np.ndarray]:
    """(k, 3) points and outward normals sampled from ``mesh`` with noise; faces facing down are dropped."""
    import trimesh

    rng = np.random.default_rng(seed)
    pts, fi = trimesh.sample.sample_surface(mesh, n, seed=seed)
    nrm = np.asarray(mesh.face_normals[fi])
    keep = nrm[:, 2] > drop_below
    return pts[keep] + rng.normal(0, SCAN_NOISE_M, (int(keep.sum()), 3)), nrm[keep]


def _truth_points(mesh: Any, mask: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, ...]:
    import trimesh

    pts, fi = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return pts, np.asarray(mesh.face_normals[fi]), np.asarray(mask, bool)[fi], float(mesh.area) / n


def judge_upper(path: Any, truth: dict[str, Any], seed: int, n: int = 150_000, params: Any = None) -> dict[str, float]:
    """Film of ``path`` on ``n`` fresh samples of the true upper: coverage of the true bond faces, glue beyond
    the true bite line (mm); ``params``: the deposition model (default: the shipped one)."""
    from scipy.spatial import cKDTree

    from gluecell.core.geometry import polyline_distance
    from gluecell.pathplan.deposition import film_thickness, path_samples, spray_metrics
    from gluecell.pathplan.geom import resample_polyline

    pts, nrm, bond, area = _truth_points(truth["upper_mesh"], truth["upper_bond_faces"], n, seed)
    near = pts[:, 2] > truth["bite_line"][:, 2].min() - 0.03
    pts, nrm, bond = pts[near], nrm[near], bond[near]
    film = film_thickness(path_samples(path), pts, nrm, params, surface=pts)
    line = resample_polyline(truth["bite_line"], 2e-4)
    _, i = cKDTree(line).query(pts)  # the nearest stretch of the line: its tangent says which side is beyond
    d = polyline_distance(pts, truth["bite_line"])  # the one point-to-line distance (core.geometry)
    beyond = _beyond(pts, nrm, line, i) & (d < 0.025)
    if not bond.all():  # the world's truth: beyond the line means off the bond faces too (they are only as
        beyond &= ~bond  # sharp as the mesh, so both must agree)
    return spray_metrics(film, np.where(beyond, -d, d), bond, area)


def _beyond(pts: np.ndarray, nrm: np.ndarray, line: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Points (n,) past the bite line (shoe terms: above it; the upper lies bottom-up, so towards -z).

    Two tests must agree: along +z made perpendicular to the line's tangent (robust on a smooth side), and
    along the surface tangent across the line from normals averaged within 4 mm (robust in a crease, where a
    welt overhangs). Farther than 25 mm from the line neither is meaningful; the caller drops those.
    """
    from scipy.spatial import cKDTree

    tan = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    up = np.array([0.0, 0.0, 1.0]) - tan[:, 2:3] * tan
    by_z = np.einsum("ij,ij->i", pts - line[i], up[i]) < 0
    tree = cKDTree(pts)
    n_line = np.array([nrm[k].mean(axis=0) if len(k) else nrm[tree.query(p)[1]]
                       for k, p in zip(tree.query_ball_point(line, r=4e-3), line)])  # fmt: skip
    across = np.cross(n_line, tan)
    across *= np.where(across[:, 2] >= 0, 1.0, -1.0)[:, None]
    by_normal = np.einsum("ij,ij->i", pts - line[i], across[i]) < 0
    return by_z & by_normal


def judge_sole(path: Any, truth: dict[str, Any], seed: int, n: int = 100_000, params: Any = None) -> dict[str, float]:
    """Coverage of the true sole bond faces by ``path`` (``n`` fresh samples of the true sole; ``params``: the
    deposition model, default the shipped one)."""
    from gluecell.pathplan.deposition import film_thickness, path_samples, spray_metrics

    pts, nrm, bond, area = _truth_points(truth["sole_mesh"], truth["sole_bond_faces"], n, seed)
    film = film_thickness(path_samples(path), pts, nrm, params, surface=pts)
    return spray_metrics(film, np.where(bond, 1.0, -1.0), bond, area)


def dry_strip_mm(truth: dict[str, Any], film: np.ndarray, covered_m: float, bin_m: float = 2e-3,
                 reach_m: float = 10e-3) -> np.ndarray:  # fmt: skip
    """Width (mm) of the dry strip below the true bite line, per ``bin_m`` stretch of the line: the distance from
    the line to the nearest covered bond face (film ``(F,)`` per face of the true upper mesh >= ``covered_m``);
    ``reach_m`` where no bond face within it is covered."""
    from scipy.spatial import cKDTree

    from gluecell.core.geometry import polyline_distance
    from gluecell.pathplan.geom import resample_polyline

    mesh, bond = truth["upper_mesh"], np.asarray(truth["upper_bond_faces"], bool)
    c = np.asarray(mesh.triangles_center)
    line = resample_polyline(truth["bite_line"], 0.25e-3)
    near = bond & (cKDTree(line).query(c, distance_upper_bound=reach_m)[0] < reach_m)
    d = polyline_distance(c[near], truth["bite_line"])
    seg = np.linalg.norm(np.diff(np.r_[line, line[:1]], axis=0), axis=1)
    s_line = np.r_[0.0, np.cumsum(seg)[:-1]]
    nb = max(int(seg.sum() / bin_m), 8)
    key = np.minimum((s_line[cKDTree(line).query(c[near])[1]] / seg.sum() * nb).astype(int), nb - 1)
    width = np.full(nb, reach_m)
    wet = np.asarray(film)[near] >= covered_m
    np.minimum.at(width, key[wet], d[wet])
    return width * 1e3


#: The true spray is judged on the true upper refined near the line: faces whose centroid lies within
#: ``REFINE_ROUNDS_M[k]`` of the true line are split in round k (the world's ~2.5 mm faces -> ~0.6 mm within 6 mm,
#: -> ~0.3 mm within 3 mm). On the world's own faces the dry strip cannot be measured below ~1.2 mm: their centroids
#: lie up to that far from the line, so even with every bond face covered the face-level p95 was 1.15 mm (pair 00004
#: of /work/data/bench-w1); on the refined faces it is 0.09 mm. At ~0.6 mm faces (two rounds, the judge until
#: 2026-12-07 evening) a face's centroid still sits up to ~0.3 mm from the film edge it stands for: the glue above
#: the line of the 4 bench-w1 test pairs read 0.52-0.83 mm there and 0.36-0.67 mm at ~0.3 mm faces (the worst
#: single pair moved by up to 0.19 mm; pathplan/README.md "Judge"). The third round is kept to 3 mm of the line,
#: where the glue-above and dry-strip figures are decided. The truth's bond mask is refined with the same side test
#: as :func:`judge_upper` (within 3 mm of the line; the parent face's flag elsewhere).
REFINE_ROUNDS_M = (6e-3, 6e-3, 3e-3)
#: Kept for callers of the two-round judge: the first round's radius and the number of rounds.
REFINE_NEAR_M = REFINE_ROUNDS_M[0]
REFINE_TIMES = len(REFINE_ROUNDS_M)
_REFINED: dict[bytes, dict[str, Any]] = {}


def refine_truth(truth: dict[str, Any], near_m: float | None = None, times: int | None = None,
                 rounds_m: tuple[float, ...] = REFINE_ROUNDS_M) -> dict[str, Any]:  # fmt: skip
    """``truth`` with its upper mesh split near the true bite line (``upper_parent``: each new face's original
    face) and the bond mask refined there; cached per line and schedule (the bench judges several rows of one pair).

    Args:
        truth: the world's truth dict (``upper_mesh``, ``upper_bond_faces``, ``bite_line``).
        near_m, times: the older form, ``times`` rounds all within ``near_m`` (overrides ``rounds_m``).
        rounds_m: per subdivision round, the distance (m) of the line within which a face's centroid is split.
    """
    import trimesh
    from scipy.spatial import cKDTree

    from gluecell.core.geometry import polyline_distance
    from gluecell.pathplan.geom import resample_polyline

    if near_m is not None or times is not None:
        rounds_m = (REFINE_NEAR_M if near_m is None else near_m,) * (REFINE_TIMES if times is None else times)
    key = (np.asarray(truth["bite_line"]).tobytes() + np.float64(len(truth["upper_mesh"].faces)).tobytes()
           + np.asarray(rounds_m, dtype=np.float64).tobytes())  # fmt: skip
    if key in _REFINED:
        return _REFINED[key]
    V, F = np.asarray(truth["upper_mesh"].vertices), np.asarray(truth["upper_mesh"].faces)
    parent = np.arange(len(F))
    line = resample_polyline(truth["bite_line"], 2e-4)
    tree = cKDTree(line)
    d0 = tree.query(V[F].mean(axis=1))[0]  # each original face's centroid distance from the line
    todo = np.arange(len(F))  # round k splits the faces round k - 1 made (all before the first) of parents near it
    for near in rounds_m:
        todo = todo[d0[parent[todo]] < near]
        if todo.size == 0:
            break
        keep = np.ones(len(F), bool)
        keep[todo] = False
        V, F2, idx = trimesh.remesh.subdivide(V, F, face_index=todo, return_index=True)
        par = np.empty(len(F2), int)
        par[: int(keep.sum())] = parent[keep]
        kids = [np.asarray(idx[o]) for o in todo]
        par[np.concatenate(kids)] = np.repeat(parent[todo], [len(k) for k in kids])
        parent, F, todo = par, F2, np.concatenate(kids)
    mesh = trimesh.Trimesh(V, F, process=False)
    bond = np.asarray(truth["upper_bond_faces"], bool)[parent]
    c = V[F].mean(axis=1)
    d = polyline_distance(c, truth["bite_line"])
    close = np.flatnonzero(d < 3e-3)
    _, i = tree.query(c[close])
    bond[close] = ~_beyond(c[close], np.asarray(mesh.face_normals)[close], line, i)
    _REFINED.clear()  # one pair at a time
    _REFINED[key] = {**truth, "upper_mesh": mesh, "upper_bond_faces": bond, "upper_parent": parent,
                     "upper_line_d": d}
    return _REFINED[key]


def _face_film(refined: dict[str, Any], film: np.ndarray, n_faces: int) -> np.ndarray:
    """Film (n_faces,) per original face from the refined faces' film (volume over area)."""
    area = np.asarray(refined["upper_mesh"].area_faces)
    par = refined["upper_parent"]
    return np.bincount(par, film * area, n_faces) / np.maximum(np.bincount(par, area, n_faces), 1e-18)


def judge_true(path: Any, truth: dict[str, Any], seed: int, runs: int = TRUE_RUNS) -> dict[str, float]:
    """The upper ``path`` sprayed ``runs`` times by the world's true spray simulator and scored on the true mesh
    refined near the line (:func:`refine_truth`): mean coverage of the bond faces (all of them; ``_1mm``: those
    > 1 mm from the line) and gap area (mm^2), worst
    glue above the bite line (max and p99, mm), and the dry strip below the line (:func:`dry_strip_mm`: p95 and
    max over 2 mm stretches, worst run; ``true_dry_strip_face_p95_mm``: the same on the world's own faces,
    the film averaged back onto them, as measured before 2026-12-07)."""
    from gluecell.cell.sim.world import score_upper, simulate_spray

    fine = refine_truth(truth)
    n_faces = len(truth["upper_mesh"].faces)
    rows, strips, coarse, cov1 = [], [], [], []
    area, far = np.asarray(fine["upper_mesh"].area_faces), fine["upper_bond_faces"] & (fine["upper_line_d"] > 1e-3)
    for r in range(runs):
        out = simulate_spray(fine["upper_mesh"], path, seed * 100 + r, part="upper")
        cov1.append(area[far & (out.film_m >= out.covered_m)].sum() / max(area[far].sum(), 1e-18))
        rows.append(score_upper(fine, out))
        strips.append(dry_strip_mm(fine, out.film_m, out.covered_m))
        coarse.append(dry_strip_mm(truth, _face_film(fine, out.film_m, n_faces), out.covered_m))
    return {
        "true_dry_strip_p95_mm": float(max(np.percentile(w, 95) for w in strips)),
        "true_dry_strip_max_mm": float(max(w.max() for w in strips)),
        "true_dry_strip_face_p95_mm": float(max(np.percentile(w, 95) for w in coarse)),
        "true_coverage": float(np.mean([r["coverage"] for r in rows])),
        "true_coverage_1mm": float(np.mean(cov1)),
        "true_band2mm_coverage": float(np.mean([r["band_coverage_2mm"] for r in rows])),
        "true_above_max_mm": float(max(r["glue_above_max_mm"] for r in rows)),
        "true_above_p99_mm": float(max(r["glue_above_p99_mm"] for r in rows)),
        "true_gap_mm2": float(np.mean([r["gap_area_mm2"] for r in rows])),
    }


def _moved(path: Any, T: np.ndarray) -> Any:
    """``path`` (SprayPath) carried rigidly by ``T`` (4, 4)."""
    from gluecell.core.types import SprayPath
    from gluecell.pathplan.geom import matrix_from_quat, quat_from_matrix

    R = T[:3, :3] @ matrix_from_quat(path.quat_xyzw)
    xyz = path.xyz @ T[:3, :3].T + T[:3, 3]
    return SprayPath(part=path.part, t=path.t, xyz=xyz, quat_xyzw=quat_from_matrix(R), spray=path.spray)


def teach_once_path(cache: dict, item: Any, scan: tuple[np.ndarray, np.ndarray]) -> Any:
    """Teach once: the upper path of the nominal pair of ``item``'s style, size and side (planned on its ideal
    scan and true line, once, kept in ``cache``), placed on this pair by registering the nominal upper to
    ``scan`` ((points, normals) of the pair's upper)."""
    from gluecell.cell.sim.references import NOMINAL_SEED, nominal_pair
    from gluecell.pathplan.pipeline import PathplanConfig, plan_part
    from gluecell.perception.registration import reference_from_mesh, register

    key = ("teach", item.style, float(item.size_eu), item.side)
    if key not in cache:
        pair = nominal_pair(cache, item)
        u, un = sample_scan(pair.upper_mesh, 60_000, NOMINAL_SEED, drop_below=-1.1)
        pp = plan_part("upper", u, PathplanConfig(), bite_line=pair.bite_line, normals=un)
        ref = reference_from_mesh(np.asarray(pair.upper_mesh.vertices), np.asarray(pair.upper_mesh.faces))
        cache[key] = (pp.path, ref)
    path, ref = cache[key]
    reg = register(scan[0], ref, scan_normals=scan[1], init=np.eye(4))
    return _moved(path, reg.T_base_ref)


def _side_rows(ds: Any, sid: str, seed: int, scan: tuple[np.ndarray, np.ndarray], cache: dict) -> dict[str, float]:
    """The teach-once row of one pair, judged by the true spray simulator."""
    from gluecell.core.errors import GlueCellError

    out: dict[str, float] = {}
    truth = ds.truth(sid)
    makers = {"teach": lambda: teach_once_path(cache, ds.inputs(sid)["workitem"], scan)}
    for row, make in makers.items():
        try:
            path = make()
        except GlueCellError as exc:
            log.warning("pathplan bench: %s row refused pair %s: %s", row, sid, exc)
            out[f"{row}_refused"] = 1.0
            continue
        out.update({f"{row}_{k}": v for k, v in judge_true(path, truth, seed + 5).items()})
    return out


def _one(ds: Any, sid: str, seed: int, side: dict | None = None, cfg: Any = None) -> dict[str, float]:
    from gluecell.core.errors import GlueCellError
    from gluecell.pathplan.errors import CoverageError, KinematicsError
    from gluecell.pathplan.pipeline import PathplanConfig, plan_pair
    from gluecell.pathplan.timing import motion_metrics

    truth = ds.truth(sid)
    u, un = sample_scan(truth["upper_mesh"], 60_000, seed, drop_below=-1.1)
    s, sn = sample_scan(truth["sole_mesh"], 40_000, seed + 1)
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        plan = plan_pair(u, s, truth["bite_line"], cfg, upper_normals=un, sole_normals=sn)
    except KinematicsError as exc:
        log.warning("pathplan bench: pair %s is kinematically infeasible: %s", sid, exc)
        return {"planned": 0.0, "feasible": 0.0, "refused_kinematics": 1.0}
    except GlueCellError as exc:  # every other refusal is counted by its kind and logged with its reason
        log.warning("pathplan bench: pair %s refused: %s", sid, exc)
        kind = "refused_coverage" if isinstance(exc, CoverageError) else "refused_region"
        return {"planned": 0.0, "feasible": 1.0, kind: 1.0}
    ms, main_ms = (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3
    mot = [motion_metrics(plan.programs[p], plan.paths[p].spray, PathplanConfig().robot) for p in ("upper", "sole")]
    dep = (cfg or PathplanConfig()).deposition  # the model judges with the film model it planned with
    up = judge_upper(plan.paths["upper"], truth, seed + 2, params=dep)
    so = judge_sole(plan.paths["sole"], truth, seed + 3, params=dep)
    extra = {f"truebite_{k}": v for k, v in judge_true(plan.paths["upper"], truth, seed + 5).items()}
    if side is not None:
        extra.update(_side_rows(ds, sid, seed, (u, un), side))
    return {**extra,
        "planned": 1.0, "feasible": 1.0, "latency_ms": ms, "main_cpu_ms": main_ms, "load": os.getloadavg()[0],
        "robot_s": sum(p.duration for p in plan.programs.values()),
        "joint_step_max_deg": max(m["joint_step_max_deg"] for m in mot),
        "at_limit_share": sum(m["at_limit_share"] * m["spray_time_s"] for m in mot)
        / max(sum(m["spray_time_s"] for m in mot), 1e-9),
        "speed_peak": max(m["joint_speed_peak_fraction"] for m in mot),
        "upper_coverage": up["coverage"], "upper_coverage_1mm": up["coverage_1mm"],
        "above_mm": up["above_visible_mm"], "above_p99_mm": up["above_visible_p99_mm"],
        "gap_mm2": up["gap_area_mm2"], "sole_coverage": so["coverage"],
    }  # fmt: skip


def bench(ctx: Any) -> dict[str, float]:
    """Run the path-planning bench on ``ctx.dataset``'s test split (``ctx.quick``: fewer pairs)."""
    from gluecell.datasets.format import open_dataset
    from gluecell.pathplan import workers

    ds = open_dataset(ctx.dataset)
    ids = ds.ids("test")[: N_QUICK if ctx.quick else N_FULL]
    side = None if ctx.quick else {}
    workers.start()  # latency as in the cell: the sole in the warm worker, the compiled kernels loaded (untimed)
    workers.wait_ready()
    from gluecell.cell.bench.motion import planner_config

    cfg = planner_config(ctx)  # the shipped defaults unless `gluecell bench --gun / --config`
    rows = [_one(ds, sid, int(ctx.seed) + 17 * k, side, cfg) for k, sid in enumerate(ids)]
    ok = [r for r in rows if r["planned"]]
    n = max(len(rows), 1)

    def col(key: str) -> np.ndarray:
        return np.array([r[key] for r in ok], dtype=float)

    out = {"pathplan_pairs": float(len(rows)), "pathplan_plan_rate": len(ok) / n,
           "pathplan_feasible_rate": sum(r["feasible"] for r in rows) / n}  # fmt: skip
    for kind in ("refused_region", "refused_coverage", "refused_kinematics"):
        out[f"pathplan_{kind}"] = float(sum(r.get(kind, 0.0) for r in rows))
    if ok:
        out.update({
            "pathplan_latency_p50_ms": float(np.percentile(col("latency_ms"), 50)),
            "pathplan_latency_p95_ms": float(np.percentile(col("latency_ms"), 95)),
            # the caller's thread's own CPU (the upper, half of its compiled kernels; the sole is in the worker): on
            # a shared, loaded machine the wall is mostly waiting; this is what an idle 2-core cell would wait for
            # at least (its wall: this plus the hand-overs, while the sole is the shorter part)
            "pathplan_latency_main_cpu_p50_ms": float(np.percentile(col("main_cpu_ms"), 50)),
            "pathplan_latency_main_cpu_p95_ms": float(np.percentile(col("main_cpu_ms"), 95)),
            "pathplan_load_avg": float(col("load").mean()),
            "pathplan_robot_time_per_pair_s": float(col("robot_s").mean()),
            "pathplan_joint_step_max_deg": float(col("joint_step_max_deg").max()),
            "pathplan_spray_at_joint_limit_share": float(col("at_limit_share").mean()),
            "pathplan_joint_speed_peak_fraction": float(col("speed_peak").max()),
            "pathplan_upper_coverage_mean": float(col("upper_coverage").mean()),
            "pathplan_upper_coverage_min": float(col("upper_coverage").min()),
            "pathplan_upper_coverage_1mm_mean": float(col("upper_coverage_1mm").mean()),
            "pathplan_sole_coverage_mean": float(col("sole_coverage").mean()),
            "pathplan_above_bite_p99_mm": float(np.percentile(col("above_p99_mm"), 99)),
            "pathplan_above_bite_max_mm": float(col("above_mm").max()),
            "pathplan_gap_area_mm2_mean": float(col("gap_mm2").mean()),
        })  # fmt: skip
    out.update(_true_table(rows))
    return out


def _true_table(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per row kind: mean true coverage, band coverage within 2 mm, gap area; worst glue above (p99 and max)."""
    out: dict[str, float] = {}
    for row in ("truebite", "teach"):
        got = [r for r in rows if f"{row}_true_coverage" in r]
        refused = float(sum(r.get(f"{row}_refused", 0.0) for r in rows))
        if refused:
            out[f"pathplan_{row}_refused"] = refused
        if not got:
            continue

        def col(key: str, got: list = got, row: str = row) -> np.ndarray:
            return np.array([r[f"{row}_{key}"] for r in got], dtype=float)

        out.update({
            f"pathplan_{row}_pairs": float(len(got)),
            f"pathplan_{row}_refused": refused,
            f"pathplan_{row}_true_coverage_mean": float(col("true_coverage").mean()),
            f"pathplan_{row}_true_band2mm_coverage_mean": float(col("true_band2mm_coverage").mean()),
            f"pathplan_{row}_true_above_p99_mm": float(np.percentile(col("true_above_p99_mm"), 99)),
            f"pathplan_{row}_true_above_max_mm": float(col("true_above_max_mm").max()),
            f"pathplan_{row}_true_gap_area_mm2_mean": float(col("true_gap_mm2").mean()),
        })  # fmt: skip
        for key in ("true_dry_strip_p95_mm", "true_dry_strip_face_p95_mm"):
            if all(f"{row}_{key}" in g for g in got):
                out[f"pathplan_{row}_{key}"] = float(np.max(col(key)))
                out[f"pathplan_{row}_{key}_median"] = float(np.median(col(key)))
        if all(f"{row}_true_coverage_1mm" in g for g in got):
            out[f"pathplan_{row}_true_coverage_1mm_mean"] = float(col("true_coverage_1mm").mean())
            out[f"pathplan_{row}_true_coverage_1mm_min"] = float(col("true_coverage_1mm").min())
    return out
