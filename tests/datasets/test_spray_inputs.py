"""True spray outcome: determinism, accepted path forms, and clear errors for bad input."""

import dataclasses

import numpy as np
import pytest
import trimesh

from gluecell.core.plan import Plan
from gluecell.core.types import SprayPath
from gluecell.datasets.errors import DatasetsError, WorldParamError
from gluecell.datasets.world.spray import (
    SprayInputError,
    SprayWorldConfig,
    draw_run,
    score_sole,
    score_upper,
    simulate_spray,
)
from gluecell.datasets.world.spray_motion import gun_intervals, nozzle_quaternions

STANDOFF_M = 0.035


@pytest.fixture(scope="module")
def plate():
    """A 60 x 60 mm plate at z = 0, normal +z, 1 mm triangles."""
    xs = np.linspace(-0.03, 0.03, 61)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    v = np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], 1)
    idx = np.arange(X.size).reshape(61, 61)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    return trimesh.Trimesh(v, np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]), process=False)


def stroke(part: str = "upper", n: int = 41) -> dict:
    """A 40 mm stroke along x at 0.2 m/s as a plain mapping (the loosest accepted form)."""
    x = np.linspace(-0.02, 0.02, n)
    return {
        "part": part,
        "t": (x - x[0]) / 0.2,
        "xyz": np.stack([x, np.zeros(n), np.full(n, STANDOFF_M)], 1),
        "quat_xyzw": nozzle_quaternions(np.tile([0.0, 0.0, -1.0], (n, 1)), np.array([1.0, 0.0, 0.0])),
        "spray": np.r_[np.ones(n - 1, bool), False],
    }


def test_same_seed_same_film_other_seed_other_run(plate):
    a = simulate_spray(plate, stroke(), 123)
    b = simulate_spray(plate, stroke(), np.random.default_rng(123))
    c = simulate_spray(plate, stroke(), 124)
    assert np.array_equal(a.film_m, b.film_m) and a.deposited_m3 == b.deposited_m3
    assert a.run.to_dict() == b.run.to_dict()
    assert not np.array_equal(a.film_m, c.film_m) and a.run.flow_m3_s != c.run.flow_m3_s
    # the same hidden run drawn directly
    assert draw_run(np.random.default_rng(123), SprayWorldConfig()).to_dict() == a.run.to_dict()


def test_path_forms_are_equivalent_and_part_filters(plate):
    d = stroke()
    sp = SprayPath(d["part"], d["t"], d["xyz"], d["quat_xyzw"], d["spray"])
    base = simulate_spray(plate, d, 5).film_m
    assert np.array_equal(simulate_spray(plate, sp, 5).film_m, base)
    assert np.array_equal(simulate_spray(plate, [sp], 5).film_m, base)
    sole = SprayPath("sole", sp.t, sp.xyz + np.array([0.0, 0.0, 0.01]), sp.quat_xyzw, sp.spray)
    plan = Plan(bite_line=np.eye(3), paths=(sp, sole))
    assert np.array_equal(simulate_spray(plate, plan, 5, part="upper").film_m, base)
    assert simulate_spray(plate, plan, 5).deposited_m3 > 1.5 * simulate_spray(plate, sp, 5).deposited_m3
    with pytest.raises(SprayInputError, match="part 'sole'"):
        simulate_spray(plate, sp, 5, part="sole")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["xyz"].__setitem__((3, 1), np.nan), "xyz"),
        (lambda d: d["t"].__setitem__(2, np.inf), "t"),
        (lambda d: d["quat_xyzw"].__setitem__((0, 0), np.nan), "quat_xyzw"),
        (lambda d: d["quat_xyzw"].__setitem__(0, [0.0, 0.0, 0.0, 0.0]), "quat_xyzw"),
        (lambda d: d.__setitem__("t", d["t"][::-1].copy()), "t"),
        (lambda d: d.__setitem__("spray", d["spray"][:-1]), "shape"),
        (lambda d: d.__setitem__("xyz", d["xyz"][:1]), "xyz"),
        (lambda d: d.__setitem__("xyz", None), "xyz"),
        (lambda d: d.__setitem__("frame", "tool0"), "frame"),
    ],
)
def test_bad_paths_raise_a_clear_error(plate, mutate, field):
    d = stroke()
    mutate(d)
    with pytest.raises(SprayInputError) as err:
        simulate_spray(plate, [stroke(), d], 0)
    assert isinstance(err.value, DatasetsError) and isinstance(err.value, ValueError)
    assert err.value.diagnostics["field"] == field and err.value.diagnostics["path_index"] == 1
    assert "spray path 1" in str(err.value)


def test_empty_paths_and_bad_meshes_raise(plate):
    for empty in ([], ()):
        with pytest.raises(SprayInputError, match="no spray paths"):
            simulate_spray(plate, empty, 0)
    bad = trimesh.Trimesh(plate.vertices.copy(), plate.faces, process=False)
    bad.vertices[5] = np.nan
    with pytest.raises(SprayInputError, match="mesh"):
        simulate_spray(bad, stroke(), 0)
    with pytest.raises(SprayInputError, match="mesh"):
        simulate_spray(object(), stroke(), 0)


def test_scoring_a_film_against_the_wrong_mesh_or_incomplete_truth_raises(plate):
    out = simulate_spray(plate, stroke(), 0)
    truth = {"upper_mesh": plate, "upper_bond_faces": np.ones(len(plate.faces), bool), "bite_line": np.eye(3)}
    assert score_upper(truth, out)["coverage"] > 0
    other = trimesh.creation.box()
    with pytest.raises(SprayInputError, match="faces"):
        score_upper({**truth, "upper_mesh": other, "upper_bond_faces": np.ones(len(other.faces), bool)}, out)
    with pytest.raises(SprayInputError, match="sole_mesh"):
        score_sole(truth, out)
    with pytest.raises(SprayInputError, match="bite_line"):
        score_upper({**truth, "bite_line": np.full((4, 3), np.nan)}, out)


def test_bad_config_values_are_refused():
    for bad in ({"covered_m": 1e-6}, {"fan_half_angle_deg": (0.0, 9.0)}, {"on_delay_s": (0.01, 0.0)},
                {"transfer_efficiency": 1.5}, {"core_rays": (1, 4)}):  # fmt: skip
        with pytest.raises(WorldParamError):
            SprayWorldConfig(**bad)


def test_gun_intervals_follow_commands_and_delays():
    t = np.array([0.0, 1.0, 2.0, 3.0, 3.004, 5.0])
    spray = np.array([True, True, False, True, True, True])
    # commanded on 0-2 and 3-5 (the last waypoint's flag does not extend the program)
    got = np.array(gun_intervals(t, spray, 0.005, 0.002))
    assert np.allclose(got, [[0.005, 2.002], [3.005, 5.002]], atol=1e-12)
    # off at 2.0 + 0.005 but back on at 2.001 + 0.002: the valve never closes
    t2 = np.array([0.0, 2.0, 2.001, 4.0])
    got = np.array(gun_intervals(t2, np.array([True, False, True, False]), 0.002, 0.005))
    assert np.allclose(got, [[0.002, 4.005]], atol=1e-12)
    cfg = dataclasses.replace(SprayWorldConfig(), on_delay_s=(0.004, 0.004))
    assert draw_run(np.random.default_rng(0), cfg).on_delay_s == 0.004
