"""What the simulated robot really did, in the world's terms: nozzle paths, stations, switching errors in mm.

The gun-on samples of executed goals (trajectory time and the arm's actual joints at each 2 ms tick) become
nozzle paths through the UR10e's forward kinematics and the nozzle's tool frame (``pathplan``'s default
robot), and the world's spray model sprays them onto the pair's true meshes: the outcome of what was
executed, not of what was planned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nozzle_poses", "station_of", "gun_on_paths", "switching_errors_mm", "spray_executed"]


def nozzle_poses(q: np.ndarray) -> np.ndarray:
    """(m, 4, 4) nozzle-tip poses in base_link for joints ``q`` (m, 6) radians."""
    from gluecell.pathplan.kinematics import RobotConfig, fk

    cfg = RobotConfig()
    return cfg.T_base_link_robot @ fk(np.asarray(q, dtype=np.float64), cfg.model) @ cfg.T_flange_tool


def station_of(xyz: np.ndarray) -> str:
    """"upper" or "sole": the station (DESIGN.md layout: upper at y < 0, sole at y > 0) of a nozzle path."""
    return "upper" if float(np.median(np.asarray(xyz)[:, 1])) < 0.0 else "sole"


def gun_on_paths(tau: list[np.ndarray], q: list[np.ndarray], tick_s: float, after_tau: list[np.ndarray] | None = None,
                 after_q: list[np.ndarray] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Spray paths (``part``, ``t``, ``xyz``, ``quat_xyzw``, ``spray``) of contiguous gun-on stretches.

    ``after_tau`` / ``after_q``: the arm's samples just after each closing (gun off, still moving; the robot's
    ``gun_after_*``): they extend each stretch with its gun flag off, so the world's valve delay closes the gun
    on the real motion.
    """
    from scipy.spatial.transform import Rotation

    if not tau:
        return []
    after_tau, after_q = list(after_tau or []), list(after_q or [])
    t_all, q_all = np.concatenate(tau + after_tau), np.concatenate(q + after_q)
    n_on = sum(len(x) for x in tau)
    flag_all = np.arange(len(t_all)) < n_on  # the gun-on samples come first
    order = np.argsort(t_all, kind="stable")
    t_all, q_all, flag_all = t_all[order], q_all[order], flag_all[order]
    gaps = np.diff(t_all)
    cuts = np.flatnonzero((gaps > 1.5 * tick_s) | (gaps <= 0)) + 1
    paths = []
    for t, qs, fl in zip(np.split(t_all, cuts), np.split(q_all, cuts), np.split(flag_all, cuts)):
        if len(t) < 2 or not fl[:-1].any():
            continue
        T = nozzle_poses(qs)
        xyz = T[:, :3, 3]
        spray = fl.copy()
        spray[-1] = False
        paths.append({"part": station_of(xyz), "t": t - t[0], "xyz": xyz,
                      "quat_xyzw": Rotation.from_matrix(T[:, :3, :3]).as_quat(), "spray": spray})  # fmt: skip
    return paths


def switching_errors_mm(traj: Any, switches: list[tuple[float, float, bool]], lag_s: float) -> list[float]:
    """Distance (mm) between where the plan switches the gun and where the nozzle really was when it switched.

    Args:
        traj: the executed :class:`~gluecell.cell.sim.robot.Trajectory`.
        switches: (planned trajectory time, actual switch time, on); safety switch-offs (planned NaN) skipped.
        lag_s: the arm's tracking lag (the actual pose at time t is the command at t - lag).
    """
    planned = np.array([p for p, _, _ in switches if np.isfinite(p)])
    actual = np.array([a for p, a, _ in switches if np.isfinite(p)])
    if len(planned) == 0:
        return []
    p_plan = nozzle_poses(traj.at(planned))[:, :3, 3]
    p_act = nozzle_poses(traj.at(actual - lag_s))[:, :3, 3]
    return [float(x) for x in np.linalg.norm(p_act - p_plan, axis=1) * 1e3]


def spray_executed(truth: dict[str, Any], paths: list[dict[str, Any]], seed: int, *, flow_factor: float = 1.0,
                   offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> dict[str, dict[str, float]]:  # fmt: skip
    """Spray the executed ``paths`` on the true pair; a part displaced by ``offset_m`` sees the nozzle shifted
    by the opposite; a clogged nozzle delivers ``flow_factor`` of its flow."""
    from dataclasses import replace

    from gluecell.datasets.world.spray import spray_and_score
    from gluecell.datasets.world.spray_config import SprayWorldConfig

    cfg = SprayWorldConfig()
    cfg = replace(cfg, flow_ml_s=cfg.flow_ml_s * flow_factor)
    shift = -np.asarray(offset_m, dtype=np.float64)
    moved = [{**p, "xyz": p["xyz"] + shift} for p in paths]
    return spray_and_score(truth, moved, np.random.default_rng(seed), cfg)
