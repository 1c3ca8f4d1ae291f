"""Robot motion of the shipped planner (issue 15 item 3): programs within the UR10e's joint limits, a smooth wrist
while spraying, a synthetic pair faster than the old planner could make it, and the vectorised IK equal to a
per-pose scalar IK written independently from the same published DH parameters."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gluecell.pathplan.kinematics import DH, RobotConfig, fk, ik
from gluecell.pathplan.pipeline import PathplanConfig, plan_pair
from gluecell.pathplan.synthetic import make_synthetic_pair
from gluecell.pathplan.timing import program_report

#: Largest joint step (deg) between neighbouring spraying waypoints on the synthetic upper (the old planner: 10).
MAX_WRIST_STEP_DEG = 5.0
#: Robot time (s) of the synthetic pair, upper + sole (shipped planner ~40 s, the old one ~69 s).
MAX_PAIR_S = 50.0


def _old_config() -> PathplanConfig:
    """The planner before issue 15: 250/150 mm/s, 30 mm axis smoothing, a retract between every pair of passes,
    the roll pulled to the reference frame within +-120 deg without a joint-motion cost."""
    cfg = PathplanConfig()
    over = {"speed_profile": {"spray_mm_s": 250.0, "edge_mm_s": 150.0}, "orient": {"smooth_mm": 30.0},
            "gun_on_off": {"link_within_mm": 0.0}}  # fmt: skip
    parts = {}
    for part in ("upper", "sole"):
        pc = getattr(cfg, part)
        parts[part] = replace(pc, modifiers=tuple({**m, **over.get(m["name"], {})} for m in pc.modifiers))
    robot = RobotConfig(max_roll_deg=120.0, roll_weight=1.0, motion_weight=0.0)
    return replace(cfg, robot=robot, **parts)


@pytest.fixture(scope="module")
def scans():
    pair = make_synthetic_pair()
    u, un = pair.sample("upper", 40000, seed=11, noise_mm=0.2)
    s, sn = pair.sample("sole", 30000, seed=12, noise_mm=0.2)
    return pair, (u, un), (s, sn)


def _plan(scans, cfg):
    pair, (u, un), (s, sn) = scans
    plan = plan_pair(u, s, pair.bite_line, cfg, upper_normals=un, sole_normals=sn)
    rep = {p: program_report(plan.programs[p], plan.paths[p].xyz, plan.paths[p].spray, cfg.robot)
           for p in ("upper", "sole")}  # fmt: skip
    return plan, rep


@pytest.fixture(scope="module")
def shipped(scans):
    return _plan(scans, PathplanConfig())


@pytest.mark.slow
def test_program_within_joint_speed_and_acceleration_limits(shipped):
    plan, rep = shipped
    vmax = np.deg2rad(np.asarray(RobotConfig().max_speed_deg_s))
    for part in ("upper", "sole"):
        prog = plan.programs[part]
        seg = np.abs(np.diff(prog.q, axis=0)) / np.diff(prog.t)[:, None]
        assert (seg / vmax).max() <= 1.0 + 1e-6, f"{part}: a joint exceeds its speed limit"
        assert np.all(np.abs(prog.qd) <= vmax * (1 + 1e-6)), f"{part}: commanded velocity beyond the limit"
        assert rep[part]["joint_accel_peak_fraction"] <= 1.0 + 1e-3, f"{part}: acceleration beyond the limit"
        assert rep[part]["spray_speed_median_mm_s"] >= 400.0, f"{part}: sprayed slower than planned"


@pytest.mark.slow
def test_wrist_moves_smoothly_while_spraying(shipped):
    _, rep = shipped
    assert rep["upper"]["joint_step_max_deg"] <= MAX_WRIST_STEP_DEG, rep["upper"]
    assert rep["sole"]["joint_step_max_deg"] <= MAX_WRIST_STEP_DEG, rep["sole"]


@pytest.mark.slow
def test_synthetic_pair_is_faster_than_the_old_planner_could_make_it(scans, shipped):
    plan, rep = shipped
    new_s = rep["upper"]["robot_time_s"] + rep["sole"]["robot_time_s"]
    old_plan, old_rep = _plan(scans, _old_config())
    old_s = old_rep["upper"]["robot_time_s"] + old_rep["sole"]["robot_time_s"]
    assert new_s <= MAX_PAIR_S < old_s, (new_s, old_s)
    for part in ("upper", "sole"):  # at no loss of predicted coverage (within 1 point) and no glue above the line
        assert plan.metrics[part]["coverage"] >= old_plan.metrics[part]["coverage"] - 0.01, part
        assert plan.metrics[part]["above_visible_mm"] <= 0.0 + 1e-9, part


def _ik_scalar(T: np.ndarray, model: str = "ur10e") -> list[list[float] | None]:
    """The eight UR solutions of one flange pose, pose by pose with ``math`` (Hawkins 2013), branch order
    4 * shoulder + 2 * wrist + elbow; None where a branch has no solution."""
    d, a, _ = DH[model]
    out: list[list[float] | None] = []
    px, py = T[0, 3] - d[5] * T[0, 2], T[1, 3] - d[5] * T[1, 2]
    r = math.hypot(px, py)
    for sh in (1.0, -1.0):
        if abs(d[3] / r) > 1:
            out += [None] * 4
            continue
        q1 = math.atan2(py, px) + sh * math.acos(d[3] / r) + math.pi / 2
        s1, c1 = math.sin(q1), math.cos(q1)
        c5 = (T[0, 3] * s1 - T[1, 3] * c1 - d[3]) / d[5]
        for wr in (1.0, -1.0):
            if abs(c5) > 1:
                out += [None] * 2
                continue
            q5 = wr * math.acos(c5)
            s5 = math.sin(q5)
            q6 = math.atan2(-(T[0, 1] * s1 - T[1, 1] * c1) / s5, (T[0, 0] * s1 - T[1, 0] * c1) / s5)
            # wrist 1 frame in the shoulder frame: T14 = T01^-1 T06 T56^-1 T45^-1, by hand
            T01 = _dh_scalar(q1, d[0], a[0], math.pi / 2)
            T45 = _dh_scalar(q5, d[4], a[4], -math.pi / 2)
            T56 = _dh_scalar(q6, d[5], a[5], 0.0)
            T14 = np.linalg.inv(T01) @ T @ np.linalg.inv(T56) @ np.linalg.inv(T45)
            x, y = T14[0, 3] - d[3] * T14[0, 1], T14[1, 3] - d[3] * T14[1, 1]
            L = math.hypot(x, y)
            c3 = (L * L - a[1] ** 2 - a[2] ** 2) / (2 * a[1] * a[2])
            for el in (1.0, -1.0):
                if abs(c3) > 1:
                    out.append(None)
                    continue
                q3 = el * math.acos(c3)
                q2 = -math.atan2(y, -x) + math.asin(a[2] * math.sin(q3) / L)
                q4 = math.atan2(T14[1, 0], T14[0, 0]) - q2 - q3
                out.append([(v + math.pi) % (2 * math.pi) - math.pi for v in (q1, q2, q3, q4, q5, q6)])
    return out


def _dh_scalar(theta: float, d: float, a: float, alpha: float) -> np.ndarray:
    ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
    return np.array([[ct, -st * ca, st * sa, a * ct], [st, ct * ca, -ct * sa, a * st], [0, sa, ca, d], [0, 0, 0, 1]])


def test_vectorised_ik_equals_the_scalar_ik():
    rng = np.random.default_rng(5)
    q = rng.uniform(-np.pi, np.pi, (300, 6))
    q[:, 4] = np.sign(q[:, 4]) * np.clip(np.abs(q[:, 4]), 0.2, np.pi - 0.2)  # keep off the wrist singularity
    T = fk(q)
    T[-20:, 0, 3] += 3.0  # 3 m further out: out of reach, no solution on any branch
    vec = ik(T)
    for i in range(len(T)):
        ref = _ik_scalar(T[i])
        for b in range(8):
            if ref[b] is None:
                assert np.isnan(vec[i, b]).any(), (i, b)  # a branch without a solution has NaN joints
            else:
                diff = (vec[i, b] - np.asarray(ref[b]) + np.pi) % (2 * np.pi) - np.pi
                assert np.abs(diff).max() < 1e-9, (i, b, diff)
    # and each finite solution is a solution: FK puts the flange back where it was
    ok = ~np.isnan(vec).any(axis=-1)
    back = fk(vec[ok])
    assert np.abs(back - np.repeat(T[:, None], 8, axis=1)[ok]).max() < 1e-9
    assert ok[:-20].any(axis=1).all() and not ok[-20:].any()
