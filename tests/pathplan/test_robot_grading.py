"""Robot time (issue 15 item 3): graded edge rings and the wide raster fill (pathplan/grading.py, the standoff and
speed modifiers). The design's own promises are checked on the flat-plate film it is built from (every ring keeps
its trace inside the line, no gap below the covered film between the line and the first main ring), and on a
synthetic pair the planner with graded rings (opt-in: ``standoff.graded``) and the sole's fill is checked against
the same planner with both off: >= 10 % faster, within the joint limits, no glue beyond the line, no coverage lost."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gluecell.pathplan.deposition import DepositionParams
from gluecell.pathplan.grading import FLOW_FACTOR, MAIN_NEED, design_graded, fill_step, ring_standoff
from gluecell.pathplan.modifiers import Standoff, StandoffParams, fill_mask
from gluecell.pathplan.pipeline import PathplanConfig, plan_pair
from gluecell.pathplan.synthetic import make_synthetic_pair
from gluecell.pathplan.timing import program_report, time_budget
from gluecell.pathplan.toolpath import ToolPath
from gluecell.pathplan.tuning import cross_profile, design_rings

DEP = DepositionParams()
EDGE, MAIN = (5e-3, 0.46), (35e-3, 0.46)
MARGIN, MAX_STEP = 0.3e-3, 12e-3


@pytest.mark.parametrize("main_min", [0.0, 0.0123])
def test_graded_design_needs_fewer_rings_and_keeps_its_promises(main_min):
    design, heights = design_graded(EDGE, MAIN, DEP, MARGIN, MAX_STEP, main_min=main_min, edge_target=0.5e-3)
    flat = design_rings(EDGE, MAIN, DEP, MARGIN, MAX_STEP, main_min=main_min, edge_target=0.5e-3)
    assert design.n_edge == len(heights) and heights[0] == EDGE[0]
    assert design.n_edge < flat.n_edge or (main_min == 0 and design.n_edge <= flat.n_edge)
    assert design.offsets[design.n_edge] >= main_min
    x = np.arange(0.0, design.offsets[design.n_edge], 1e-4)
    total = np.zeros_like(x)
    trace = DEP.trace_mm * 1e-3
    for k, off in enumerate(design.offsets):
        h = heights[k] if k < design.n_edge else MAIN[0]
        prof = cross_profile(h, 0.0, EDGE[1] if k < design.n_edge else MAIN[1], DEP)
        if k:  # every ring after the first (placed by its covered edge) keeps its trace (x FLOW_FACTOR) MARGIN inside
            assert prof.reach(trace / (FLOW_FACTOR if k < design.n_edge else 1.0)) + MARGIN <= off + 1e-9, (k, h, off)
        total += np.interp(x - off, prof.x, prof.film, left=0, right=0)
    start = design.offsets[0]
    assert total[x >= start].min() >= 1.25 * DEP.covered_mm * 1e-3 * (1 - 1e-6)
    # at least one ring is sprayed from farther than the edge pass (else the grading did nothing)
    assert max(heights) > EDGE[0]


def test_main_step_keeps_the_main_need():
    design, _ = design_graded(EDGE, MAIN, DEP, MARGIN, MAX_STEP)
    prof = cross_profile(MAIN[0], 0.0, MAIN[1], DEP)
    g = np.arange(0, design.step, 1e-4)
    tot = sum(np.interp(g + k * design.step, prof.x, prof.film, left=0, right=0) for k in range(-8, 9))
    assert tot.min() >= MAIN_NEED * DEP.covered_mm * 1e-3 * (1 - 1e-6)


def test_fill_step_is_the_largest_gap_free_step():
    step = fill_step(0.07, 0.46, DEP)
    prof = cross_profile(0.07, 0.0, 0.46, DEP)

    def low(s):
        g = np.arange(0, s, 1e-4)
        return sum(np.interp(g + k * s, prof.x, prof.film, left=0, right=0) for k in range(-12, 13)).min()

    need = 1.25 * DEP.covered_mm * 1e-3
    assert low(step) >= need > low(step * 1.1)
    assert step > design_graded(EDGE, MAIN, DEP, MARGIN, MAX_STEP)[0].step  # wider lines than the 35 mm rings


def test_ring_standoff_picks_the_nearest_ring():
    rings = ((1.3e-3, 5e-3), (4.7e-3, 21e-3))
    out = ring_standoff(np.array([1.3e-3, 4.7e-3, 4.0e-3, -1.3e-3]), rings, 8e-3)
    np.testing.assert_allclose(out, [5e-3, 21e-3, 21e-3, 5e-3])
    np.testing.assert_allclose(ring_standoff(np.array([1e-3]), (), 8e-3), [8e-3])


def _path(offsets_mm: list[float]) -> ToolPath:
    n = len(offsets_mm) * 4
    contact = np.column_stack([np.arange(n) * 2e-3, np.zeros(n), np.zeros(n)])
    normal = np.tile([0.0, 0.0, 1.0], (n, 1))
    off = np.repeat(np.asarray(offsets_mm) * 1e-3, 4)
    pid = np.repeat(np.arange(len(offsets_mm)), 4).astype(np.int64)
    return ToolPath("upper", contact, normal, np.tile([0.0, 1.0, 0.0], (n, 1)), off, pid, np.ones(n, bool),
                    closed=False, direction=-normal)  # fmt: skip


def test_standoff_modifier_sprays_each_ring_and_the_fill_from_its_own_distance():
    path = _path([1.3, 4.7, 11.1, 40.0])
    rings = ((1.3, 5.0), (4.7, 21.0))
    stage = Standoff(StandoffParams(edge_standoff_mm=5.0, edge_within_mm=8.0, ring_standoffs_mm=rings,
                                    fill_standoff_mm=70.0, fill_from_mm=30.0))  # fmt: skip
    out = stage(path)
    dist = np.linalg.norm(out.tip - out.contact, axis=1).reshape(4, 4)[:, 0] * 1e3
    np.testing.assert_allclose(dist, [5.0, 21.0, 35.0, 70.0])
    assert fill_mask(path, 30.0).sum() == 4 and not fill_mask(path, 0.0).any()
    with pytest.raises(ValueError):
        StandoffParams(ring_standoffs_mm=((1.0, 2.0),))


def _with(graded: bool, fill: bool) -> PathplanConfig:
    """The shipped planner with the graded rings on or off and the sole's 70 mm raster fill on or off (off, off: the
    design before this work)."""
    cfg = PathplanConfig()
    parts = {}
    for part in ("upper", "sole"):
        pc = getattr(cfg, part)
        over = {"graded": graded, "fill_standoff_mm": 70.0 if fill and part == "sole" else 0.0}
        mods = tuple({**m, **over} if m["name"] == "standoff" else m for m in pc.modifiers)
        parts[part] = replace(pc, modifiers=mods)
    return replace(cfg, **parts)


@pytest.mark.slow
def test_synthetic_pair_faster_with_graded_rings_at_no_loss():
    pair = make_synthetic_pair()
    u, un = pair.sample("upper", 40000, seed=11, noise_mm=0.2)
    s, sn = pair.sample("sole", 30000, seed=12, noise_mm=0.2)
    plans = {}
    for name, cfg in (("graded", _with(True, True)), ("flat", _with(False, False))):
        plans[name] = plan_pair(u, s, pair.bite_line, cfg, upper_normals=un, sole_normals=sn)
    t = {k: sum(p.programs[q].duration for q in ("upper", "sole")) for k, p in plans.items()}
    assert t["graded"] <= 0.9 * t["flat"], t
    cfg = PathplanConfig()
    for part in ("upper", "sole"):
        new, old = plans["graded"].metrics[part], plans["flat"].metrics[part]
        assert new["above_visible_mm"] <= 1e-9, part
        assert new["coverage_1mm"] >= min(old["coverage_1mm"] - 0.005, cfg.tuning.target_coverage), (part, new, old)
        path, prog = plans["graded"].paths[part], plans["graded"].programs[part]
        rep = program_report(prog, path.xyz, path.spray, cfg.robot)
        assert rep["joint_speed_peak_fraction"] <= 1.0 + 1e-6 and rep["joint_accel_peak_fraction"] <= 1.0 + 1e-3, rep
        tp = plans["graded"].parts[part].toolpath
        b = time_budget(prog, path.xyz, path.spray, tp.speed, tp.pass_id)  # the parts add up to the program
        assert b["spray_process_s"] + b["spray_stretch_s"] + b["gun_off_s"] == pytest.approx(prog.duration, rel=1e-9)
        assert b["spray_stretch_s"] >= 0 and b["spray_process_s"] > b["gun_off_s"] > 0 and b["passes"] >= 3, b
