"""The press's share of the error budget (issue 14, item 1): the true attach pose and the truth re-simulated
without the press's random placement, in both worlds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest


def _median_dist(T: np.ndarray, sole_vertices: np.ndarray, deformed: np.ndarray) -> float:
    moved = np.asarray(sole_vertices) @ T[:3, :3].T + T[:3, 3]
    return float(np.median(np.linalg.norm(moved - np.asarray(deformed), axis=1)))


def _world1_truth(pair) -> dict:
    return {"params": pair.params.to_dict(), "bite_line": np.asarray(pair.bite_line),
            "T_base_upper": pair.T_base_upper, "T_base_sole": pair.T_base_sole}  # fmt: skip


@pytest.fixture(scope="module")
def world1_pairs():
    """A world-1 pair as drawn (left foot, with a placement error) and the same pair placed exactly."""
    from gluecell.datasets.world.pair import make_pair_detailed
    from gluecell.datasets.world.params import draw_params

    p = draw_params(np.random.default_rng(7), style="sneaker", size_eu=42, side="left")
    p = replace(p, sole_offset_m=(1.4e-3, -1.0e-3), sole_yaw_deg=0.9)
    return make_pair_detailed(0, params=p)[0], make_pair_detailed(0, params=replace(p, sole_offset_m=(0.0, 0.0),
                                                                                     sole_yaw_deg=0.0))[0]  # fmt: skip


def test_world1_no_placement_truth_differs_by_the_placement_only(world1_pairs) -> None:
    from gluecell.cell.sim.press import press_truth
    from gluecell.core.geometry import bite_line_error

    noisy, exact = world1_pairs
    info = {"generator": "gluecell-world/2.0", "seed": 0}
    pt = press_truth(_world1_truth(noisy), "00000", info, n_draws=4)
    assert pt is not None and pt.placement == pytest.approx((1.4e-3, -1.0e-3, 0.9))
    # the mean line of drawn presses lies on the same upper, within the press's reach of the true line
    assert 0.01 < bite_line_error(pt.line_mean_press, noisy.bite_line).max_mm < 3.0
    # the re-simulated line without placement is the exactly placed pair's line, and differs from the noisy one
    assert np.array_equal(pt.line_no_placement, exact.bite_line)
    moved = bite_line_error(noisy.bite_line, exact.bite_line)
    assert 0.01 < moved.max_mm < 3.0, moved
    # a pair without placement error: the no-placement truth is its own truth
    pt0 = press_truth(_world1_truth(exact), "00000", info, n_draws=1)
    assert np.array_equal(pt0.line_no_placement, exact.bite_line)
    # the true pose puts the sole where the press pressed it (the deformed sole), and differs between the two
    d_true = _median_dist(pt.T_attach, noisy.sole_mesh.vertices, noisy.deformed_sole_vertices)
    d_wrong = _median_dist(pt0.T_attach, noisy.sole_mesh.vertices, noisy.deformed_sole_vertices)
    assert d_true < 3e-3 and not np.allclose(pt.T_attach, pt0.T_attach, atol=1e-4)
    assert np.allclose(pt.T_attach[:3, :3].T @ pt.T_attach[:3, :3], np.eye(3)) and np.linalg.det(pt.T_attach) > 0
    assert d_wrong > 0.0


def test_world1_a_truth_that_is_not_the_resimulation_is_not_used(world1_pairs) -> None:
    from gluecell.cell.sim.press import press_truth

    truth = _world1_truth(world1_pairs[0])
    truth["bite_line"] = truth["bite_line"] + 1e-4
    assert press_truth(truth, "00000", {"generator": "gluecell-world/2.0"}) is None
    assert press_truth(truth, "00000", {"generator": "someone-else/1.0"}) is None


def test_world2_true_pose_and_no_placement_truth() -> None:
    from gluecell.cell.sim.press import press_truth
    from gluecell.core.geometry import bite_line_error
    from gluecell.datasets.world2.pair import make_pair2

    seed, index = 31, 3
    pair = make_pair2(np.random.SeedSequence(seed, spawn_key=(index,)).spawn(2)[0], item_id=f"{index:05d}")
    truth = {"params": pair.params, "bite_line": pair.bite_line, "T_base_upper": pair.T_base_upper,
             "T_base_sole": pair.T_base_sole}  # fmt: skip
    pt = press_truth(truth, f"{index:05d}", {"generator": "gluecell-world2/1.0", "seed": seed, "styles": []}, n_draws=4)
    assert pt is not None
    assert pt.line_mean_press.shape == pair.bite_line.shape
    assert 1e-3 < bite_line_error(pt.line_mean_press, pair.bite_line).max_mm < 2.5
    a = pair.params["attach"]
    assert pt.placement == pytest.approx((a["dx_m"], a["dy_m"], np.degrees(a["yaw_rad"])))
    # world 2's rim slides round the upper with the placement: the exact placement moves the line, by less than
    # the placement itself
    e = bite_line_error(pair.bite_line, pt.line_no_placement)
    assert 1e-3 < e.max_mm < 2.5, e
    assert bite_line_error(pt.line_no_placement, pt.line_no_press_noise).max_mm > 1e-3
    # the true pose puts the free sole onto the pressed one (what differs is the press's own deformation)
    assert _median_dist(pt.T_attach, pair.sole_vertices, pair.deformed_sole_vertices) < 1.5e-3
    # a wrong seed is not this pair: no row
    assert press_truth(truth, f"{index:05d}", {"generator": "gluecell-world2/1.0", "seed": seed + 1}) is None
