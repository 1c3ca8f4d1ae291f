"""Plan geometry, the classical measurement, the verdict policy and inspect() on views with known truth."""

import numpy as np
import pytest

from gluecell.core.types import Inspection
from gluecell.quality import VerdictPolicy, inspect
from gluecell.quality.errors import InspectionInputError
from gluecell.quality.geometry import view_geometry
from gluecell.quality.measure import measure_view
from gluecell.quality.policy import decide

from .conftest import FX, WALL_X, wall_plan, wall_view

#: Signed distance must match the wall's analytic height within this (m): depth noise and 2x subsampling.
SIGNED_TOL_M = 0.15e-3
#: Overspray measured against the known glue edge (mm): one pixel is ~0.53 mm on this wall.
OVERSPRAY_TOL_MM = 0.8


def test_signed_distance_is_the_height_above_the_predicted_line():
    g = view_geometry(wall_view(None), wall_plan())
    rows = np.array([20, 64, 100])
    z = -(rows - (128 - 1) / 2) / FX * WALL_X
    got = g.signed[rows, 64]
    assert np.allclose(got, z, atol=SIGNED_TOL_M)
    assert np.all(np.isclose(g.sigma[g.part], 0.3e-3))


@pytest.mark.parametrize("brightened", [False, True])
def test_classical_finds_glue_above_the_line_on_dark_and_brightened_substrates(brightened):
    plan = wall_plan()
    over = wall_view(-3e-3, brightened=brightened)  # glue reaches 3 mm beyond the predicted line
    m = measure_view(over, view_geometry(over, plan))
    assert m.overspray_mm == pytest.approx(3.0, abs=OVERSPRAY_TOL_MM)
    assert m.scores["above"] > 0.5
    ok = wall_view(1.5e-3, brightened=brightened)  # glue stops 1.5 mm inside the line (the plan's margin)
    m_ok = measure_view(ok, view_geometry(ok, plan))
    assert m_ok.overspray_mm == 0.0 and m_ok.scores["above"] == 0.0
    assert m_ok.coverage > 0.8


def test_classical_finds_a_gap():
    plan = wall_plan()
    v = wall_view(8e-3)  # the band from 0 to 8 mm is bare
    m = measure_view(v, view_geometry(v, plan))
    assert m.gap_area_mm2 > 50.0 and m.scores["gap"] > 0.5


def test_policy_table():
    p = VerdictPolicy(fail=dict.fromkeys(("gap", "above", "thin", "blob"), 0.6),
                      uncertain=dict.fromkeys(("gap", "above", "thin", "blob"), 0.3), cross_check=0.9)
    assert decide({"gap": 0.1}, p) == ("pass", [])
    assert decide({"gap": 0.4}, p) == ("uncertain", ["gap"])
    assert decide({"gap": 0.4, "above": 0.7}, p) == ("fail", ["above", "gap"])
    assert decide({"gap": 0.1}, p, {"blob": 0.95}) == ("uncertain", ["blob"])
    with pytest.raises(Exception, match="uncertain"):
        VerdictPolicy(fail=dict.fromkeys(("gap", "above", "thin", "blob"), 0.2),
                      uncertain=dict.fromkeys(("gap", "above", "thin", "blob"), 0.3))


def test_inspect_classical_fails_overspray_with_location_and_crop():
    ins = inspect([wall_view(None), wall_view(-3e-3)], wall_plan(), item_id="A1", model=None)
    assert isinstance(ins, Inspection) and ins.verdict == "fail"
    above = [d for d in ins.defects if d.kind == "above"]
    assert above and above[0].view == 1 and above[0].crop.shape[2] == 3 and above[0].crop.size > 0
    assert abs(above[0].xyz[0] - WALL_X) < 1e-3  # located on the wall, in base_link
    assert ins.overspray_mm == pytest.approx(3.0, abs=OVERSPRAY_TOL_MM)
    clean = inspect(wall_view(1.5e-3), wall_plan(), model=None)
    assert clean.verdict == "pass" and clean.defects == ()


def test_inspect_refuses_bad_input():
    plan = wall_plan()
    with pytest.raises(InspectionInputError):
        inspect([], plan, model=None)
    with pytest.raises(InspectionInputError):
        inspect([np.zeros((128, 128, 3), np.uint8)], plan, model=None)
    v = wall_view(None)
    empty = type(v)(image=v.image, depth_before=np.zeros_like(v.depth_before), depth_after=v.depth_after,
                    depth_scale=v.depth_scale, intrinsics=v.intrinsics, T_base_cam=v.T_base_cam)  # fmt: skip
    with pytest.raises(InspectionInputError, match="depth"):
        inspect(empty, plan, model=None)
    bad_sigma = type(plan)(bite_line=plan.bite_line, paths=plan.paths, extra={"bite_line_sigma": [1.0]})
    with pytest.raises(InspectionInputError, match="sigma"):
        inspect(v, bad_sigma, model=None)
