"""The variation budget of the bench: each hidden variation's effect on the true line, with the others held."""

import dataclasses

import numpy as np

from gluecell.cell.bench.variation import variation_budget
from gluecell.datasets.world import draw_params
from gluecell.datasets.world.pair import nominal_params
from gluecell.datasets.world.variation import BUDGET_GROUPS

#: A variation held at its neutral value moves nothing (mm).
ZERO_MM = 1e-6


def test_the_cad_nominal_has_an_empty_budget_and_a_drawn_pair_does_not():
    nominal = nominal_params("court", 40, "left")
    empty = variation_budget([nominal])
    assert set(empty) == {*BUDGET_GROUPS, "all_hidden"}
    assert all(v[0] < ZERO_MM for v in empty.values())
    drawn = draw_params(np.random.default_rng(3), style="court", size_eu=40, side="left")
    budget = variation_budget([drawn])
    assert budget["all_hidden"][0] > 0.3  # a real pair differs from its CAD by tenths of a mm at least
    moved = [g for g in BUDGET_GROUPS if budget[g][0] > 0.01]
    assert {"lasting_feather_bottom", "toe_heel_fullness", "sole_placement", "material"} <= set(moved)
    # one variation alone: its budget is the whole difference from the CAD nominal's line
    only = dataclasses.replace(nominal, sole_offset_m=(1.0e-3, 0.0))
    one = variation_budget([only])
    assert one["sole_placement"][0] == max(v[0] for v in one.values()) > 0.05
    assert one["sole_placement"][0] == one["all_hidden"][0]
