"""The tuner never hands its own planner an invalid spec (demo pair 00001: "edge_local_mm within 0-20").

Reproduces the demo's condition without the world: a perceived sole cloud where the region put a patch of the
inner sidewall on the wrong side of the rim, so visible glue "lands" 10-16 mm beyond it whatever the passes
do. The old loop added that overshoot to the edge passes' local moves every round without a cap, until the
contour stage's range check refused its own spec (a ConfigError from inside the planner); now the moves stay
within their caps and the part is refused with a CoverageError that says where the glue lands.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import gluecell.pathplan.pipeline as pipeline_mod
from gluecell.pathplan.errors import CoverageError, NonFiniteError
from gluecell.pathplan.pipeline import PathplanConfig, _tuned, plan_part
from gluecell.pathplan.synthetic import make_synthetic_pair
from gluecell.pathplan.tuning import MAX_LOCAL, MAX_MAIN_MIN, clamp_local, local_bumps, main_bump, move_all

#: Inner-wall points (signed surface distance from the rim, m) put on the wrong side of it, and the stretch of
#: the rim (arc length, m) they lie along (every third point there, as noisy normals scatter them).
FLIP_SIGNED = (0.010, 0.016)
FLIP_ARC = (0.0, 0.03)


@pytest.mark.parametrize("over_mm", [0.5, 14.75, 1e6, float("nan"), float("inf")])
def test_moves_stay_finite_and_within_their_caps(over_mm):
    local = np.zeros(72)
    for _ in range(8):  # the loop's rounds, each adding the overshoot again
        local = move_all(local, over_mm, 0.25e-3)
        local = local_bumps(local, np.array([0.01, 0.2]), np.array([over_mm * 1e-3, 0.001]), 0.7, 0.25e-3)
        assert np.all(np.isfinite(local)) and local.min() >= 0.0 and local.max() <= MAX_LOCAL
    bump = main_bump(0.0, 0.011, over_mm, 0.25e-3)
    assert np.isfinite(bump) and 0.0 <= bump <= MAX_MAIN_MIN
    assert main_bump(0.012, 0.011, 0.0, 0.25e-3) == pytest.approx(0.012)  # nothing overshoots: unchanged
    # the specs the tuner builds from such moves pass the stages' own checks (no ConfigError)
    cfg = PathplanConfig()
    _tuned(cfg.sole, cfg.deposition, cfg.tuning, (0.0, bump), 1.0, local)


def test_clamp_local_caps_inf_and_stops_on_nan():
    got = clamp_local(np.array([np.inf, -1.0, 0.004, 1.0]))
    assert got.tolist() == [MAX_LOCAL, 0.0, 0.004, MAX_LOCAL]
    # a NaN (or -inf) move used to become 0, the pass back at the line (issue 13, item 2): now the pair stops
    for bad in (np.nan, -np.inf):
        with pytest.raises(NonFiniteError, match="local edge-pass moves"):
            clamp_local(np.array([0.001, bad, 0.002]))


@pytest.mark.slow
def test_sole_with_misplaced_wall_patch_is_refused_not_misconfigured(monkeypatch):
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("sole", 30000, seed=12, noise_mm=0.2)
    real = pipeline_mod.sole_region
    flipped = {}

    def misplaced(points, normals=None, params=None):
        reg = real(points, normals, params)
        bad = (reg.signed > FLIP_SIGNED[0]) & (reg.signed < FLIP_SIGNED[1]) & (reg.s >= FLIP_ARC[0])
        bad &= (reg.s < FLIP_ARC[1]) & (np.arange(len(bad)) % 3 == 0)  # scattered, as noisy normals flip them
        flipped["n"] = int(bad.sum())
        return replace(reg, signed=np.where(bad, -reg.signed, reg.signed))

    monkeypatch.setattr(pipeline_mod, "sole_region", misplaced)
    with pytest.raises(CoverageError, match="beyond the boundary") as info:
        plan_part("sole", pts, PathplanConfig(), normals=nrm, robot=False)
    assert flipped["n"] > 0
    assert info.value.diagnostics["metrics"]["above_visible_mm"] >= FLIP_SIGNED[0] * 1e3
