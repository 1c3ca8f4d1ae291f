"""Motion bench: how long the robot takes per shoe and how hard it drives the arm, at what coverage.

Per test pair (the same ideal scans and true bite line as the ``pathplan`` section, :func:`sample_scan`):
both parts planned by ``plan_pair`` with the shipped configuration, then per part the program's duration,
the sprayed tip path (m), the median tip speed while spraying (mm/s), the largest joint step between
neighbouring spraying waypoints (deg), the share of spraying time some joint runs at >= 98 % of its speed
limit, and the peak joint speed and acceleration as fractions of the UR10e's limits
(:func:`gluecell.pathplan.timing.program_report`). Coverage and glue above the line are judged by the
``pathplan`` section's own code (:func:`judge_upper`, :func:`judge_sole`: the planner's deposition model, the one it
planned with, on the true meshes) and by the world's true spray simulator (:func:`judge_true`, one run per pair,
and :func:`true_sole`).

Metrics: ``motion_<key>_<pair>`` per pair and ``motion_<key>_mean`` / ``_max`` over pairs, keys
``shoe_s``, ``upper_s``, ``sole_s``, ``upper_path_m``, ``sole_path_m``, ``upper_speed_mm_s``,
``sole_speed_mm_s``, ``<part>_spray_process_s`` (spraying at the planned process speed),
``<part>_spray_stretch_s`` (extra spraying time where a joint limit slowed the nozzle), ``<part>_gun_off_s``
(leads, links, retracts), ``<part>_passes``, ``joint_step_max_deg``, ``at_limit_share``, ``speed_peak_fraction``,
``accel_peak_fraction``, ``upper_coverage``, ``upper_coverage_1mm``, ``sole_coverage``, ``above_p99_mm``,
``above_max_mm``, ``true_coverage``, ``true_coverage_1mm``, ``true_above_max_mm``, ``true_above_p99_mm``,
``true_dry_strip_p95_mm``, ``true_sole_coverage``, ``true_sole_outside_max_mm`` (the sole sprayed once by the true
spray, :func:`true_sole`), ``true_above_film_max_mm``, ``true_spot_max_mm``, ``true_spot_area_mm2`` (the glue above
the line split into continuous film and isolated mist spots, :func:`true_above_film`), ``kinematics_ms`` (IK and
time parametrisation of every tuning round, both parts); plus ``motion_pairs`` and ``motion_refused``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["bench", "pair_motion", "planner_config", "true_sole", "true_above_film"]

#: Pairs evaluated (quick / full) from the test split.
N_QUICK, N_FULL = 2, 4
#: Keys summarised by their worst value (the rest by the mean as well).
WORST = ("joint_step_max_deg", "speed_peak_fraction", "accel_peak_fraction", "above_max_mm", "true_above_max_mm",
         "true_above_p99_mm", "true_sole_outside_max_mm", "true_above_film_max_mm", "true_spot_max_mm",
         "shoe_s", "at_limit_share", "true_dry_strip_p95_mm", "above_p99_mm")  # fmt: skip


def pair_motion(plan: Any, cfg: Any) -> dict[str, float]:
    """Motion figures of a planned pair (a ``PairPlan``) under ``cfg.robot`` (see the module docstring)."""
    from gluecell.pathplan.timing import program_report, time_budget

    rep = {p: program_report(plan.programs[p], plan.paths[p].xyz, plan.paths[p].spray, cfg.robot)
           for p in ("upper", "sole")}  # fmt: skip
    spray_s = sum(r["spray_time_s"] for r in rep.values())
    budget = {}
    for p in ("upper", "sole"):
        tp = plan.parts[p].toolpath if hasattr(plan, "parts") else None
        if tp is not None and tp.speed is not None and len(tp.speed) == len(plan.paths[p].xyz):
            b = time_budget(plan.programs[p], plan.paths[p].xyz, plan.paths[p].spray, tp.speed, tp.pass_id)
            budget.update({f"{p}_{k}": v for k, v in b.items()})
    return {**budget,
        "upper_s": rep["upper"]["robot_time_s"], "sole_s": rep["sole"]["robot_time_s"],
        "shoe_s": rep["upper"]["robot_time_s"] + rep["sole"]["robot_time_s"],
        "upper_path_m": rep["upper"]["spray_path_m"], "sole_path_m": rep["sole"]["spray_path_m"],
        "upper_speed_mm_s": rep["upper"]["spray_speed_median_mm_s"],
        "sole_speed_mm_s": rep["sole"]["spray_speed_median_mm_s"],
        "joint_step_max_deg": max(r["joint_step_max_deg"] for r in rep.values()),
        "at_limit_share": sum(r["at_limit_share"] * r["spray_time_s"] for r in rep.values()) / max(spray_s, 1e-9),
        "speed_peak_fraction": max(r["joint_speed_peak_fraction"] for r in rep.values()),
        "accel_peak_fraction": max(r["joint_accel_peak_fraction"] for r in rep.values()),
    }  # fmt: skip


def planner_config(ctx: Any) -> Any:
    """The ``PathplanConfig`` the planner benches use: the shipped defaults, or ``ctx.config``'s ``[pathplan]`` table,
    with ``ctx.gun``'s calibrated deposition values (``gluecell bench --config cell.toml --gun gun.json``)."""
    from gluecell.core.config import load_config
    from gluecell.pathplan.gun_calibration import with_gun
    from gluecell.pathplan.pipeline import PathplanConfig

    path = getattr(ctx, "config", None)
    cfg = load_config(PathplanConfig, path, section="pathplan") if path else PathplanConfig()
    return with_gun(cfg, getattr(ctx, "gun", None))


def true_sole(path: Any, truth: dict[str, Any], seed: int) -> dict[str, float]:
    """The sole ``path`` sprayed once by the world's true spray simulator on the true sole as placed, scored on its
    bond faces (``coverage``, ``outside_max_mm``: visible glue outside the bond region, surface distance)."""
    from gluecell.cell.sim.world import score_sole, simulate_spray

    return score_sole(truth, simulate_spray(truth["sole_mesh"], path, seed * 100, part="sole"))


#: Radius (m) over which the film is averaged to tell a continuous film from an isolated mist spot.
SPOT_RADIUS = 1e-3


def true_above_film(path: Any, truth: dict[str, Any], seed: int) -> dict[str, float]:
    """Glue above the true line, continuous film vs isolated mist spots: the upper ``path`` sprayed by the true spray
    with :func:`~gluecell.cell.bench.pathplan.judge_true`'s first run (same seed, same film) on the refined true
    upper; faces off the bond region with film >= visible are *continuous* where the area-weighted film within
    :data:`SPOT_RADIUS` is >= visible too, else *spots* (a single mist droplet's ray left on a small face).
    Returns ``true_above_film_max_mm`` (continuous, straight distance from the line), ``true_spot_max_mm`` and
    ``true_spot_area_mm2``."""
    from scipy.spatial import cKDTree

    from gluecell.cell.bench.pathplan import refine_truth
    from gluecell.cell.sim.world import simulate_spray

    fine = refine_truth(truth)
    mesh = fine["upper_mesh"]
    out = simulate_spray(mesh, path, seed * 100, part="upper")
    area, d = np.asarray(mesh.area_faces), np.asarray(fine["upper_line_d"])
    above = np.flatnonzero(~fine["upper_bond_faces"] & (out.film_m >= out.visible_m))
    if above.size == 0:
        return {"true_above_film_max_mm": 0.0, "true_spot_max_mm": 0.0, "true_spot_area_mm2": 0.0}
    c = np.asarray(mesh.triangles_center)
    near = cKDTree(c).query_ball_point(c[above], SPOT_RADIUS)
    film = np.array([np.average(out.film_m[k], weights=area[k]) for k in near])
    spot = film < out.visible_m
    return {"true_above_film_max_mm": float(d[above][~spot].max() * 1e3) if (~spot).any() else 0.0,
            "true_spot_max_mm": float(d[above][spot].max() * 1e3) if spot.any() else 0.0,
            "true_spot_area_mm2": float(area[above][spot].sum() * 1e6)}  # fmt: skip


def _one(ds: Any, sid: str, seed: int, cfg: Any = None) -> dict[str, float] | None:
    from gluecell.cell.bench.pathplan import judge_sole, judge_true, judge_upper, sample_scan
    from gluecell.core.errors import GlueCellError
    from gluecell.pathplan.pipeline import PathplanConfig, plan_pair

    truth = ds.truth(sid)
    u, un = sample_scan(truth["upper_mesh"], 60_000, seed, drop_below=-1.1)
    s, sn = sample_scan(truth["sole_mesh"], 40_000, seed + 1)
    cfg = cfg or PathplanConfig()
    try:
        plan = plan_pair(u, s, truth["bite_line"], cfg, upper_normals=un, sole_normals=sn)
    except GlueCellError as exc:
        log.warning("motion bench: pair %s refused: %s", sid, exc)
        return None
    row = pair_motion(plan, cfg)
    # IK + time parametrisation inside the tuning loop, both parts (ms of CPU on this machine)
    row["kinematics_ms"] = sum(plan.timing_ms.get(f"{p}_kinematics", 0.0) for p in ("upper", "sole"))
    up = judge_upper(plan.paths["upper"], truth, seed + 2, params=cfg.deposition)
    so = judge_sole(plan.paths["sole"], truth, seed + 3, params=cfg.deposition)
    tr = judge_true(plan.paths["upper"], truth, seed + 5, runs=1)
    ts = true_sole(plan.paths["sole"], truth, seed + 7)
    row.update(true_above_film(plan.paths["upper"], truth, seed + 5))
    row.update(upper_coverage=up["coverage"], upper_coverage_1mm=up["coverage_1mm"], sole_coverage=so["coverage"],
               above_p99_mm=up["above_visible_p99_mm"], above_max_mm=up["above_visible_mm"],
               true_coverage=tr["true_coverage"], true_above_max_mm=tr["true_above_max_mm"],
               true_above_p99_mm=tr["true_above_p99_mm"], true_coverage_1mm=tr["true_coverage_1mm"],
               true_dry_strip_p95_mm=tr["true_dry_strip_p95_mm"], true_sole_coverage=ts["coverage"],
               true_sole_outside_max_mm=ts["outside_max_mm"])  # fmt: skip
    log.info("motion bench: pair %s: %s", sid, {k: round(v, 3) for k, v in row.items()})
    return row


def bench(ctx: Any) -> dict[str, float]:
    """Run the motion bench on ``ctx.dataset``'s test split (``ctx.quick``: fewer pairs)."""
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(ctx.dataset)
    ids = ds.ids("test")[: N_QUICK if ctx.quick else N_FULL]
    out: dict[str, float] = {"motion_pairs": float(len(ids))}
    rows = {}
    cfg = planner_config(ctx)
    for k, sid in enumerate(ids):
        row = _one(ds, sid, int(ctx.seed) + 17 * k, cfg)  # the pathplan section's seeds: the same scans
        if row is not None:
            rows[sid] = row
    out["motion_refused"] = float(len(ids) - len(rows))
    for sid, row in rows.items():
        out.update({f"motion_{k}_{sid}": v for k, v in row.items()})
    if rows:
        for key in next(iter(rows.values())):
            vals = np.array([r[key] for r in rows.values()], dtype=float)
            out[f"motion_{key}_mean"] = float(vals.mean())
            if key in WORST:
                out[f"motion_{key}_max"] = float(vals.max())
    return out
