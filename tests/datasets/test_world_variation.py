"""Round-2 world (issue 12): each new hidden variation against a case with a known answer.

Every case starts from the variation-free CAD nominal (``nominal_params``) and switches on one variation, so
its effect on the true bite line can be compared with what the physics says it must be.
"""

import dataclasses
import math

import numpy as np
import pytest

from gluecell.datasets.world import WorldConfig, make_nominal_pair
from gluecell.datasets.world.attach import _bending_strain, interference, seat_height, seating_fraction
from gluecell.datasets.world.last import grid_normals
from gluecell.datasets.world.pair import make_pair_detailed, nominal_params
from gluecell.datasets.world.parts import sole_grid, upper_grid
from gluecell.datasets.world.variation import BUDGET_GROUPS, cavity_profile, neutral, nominal_values

CFG = WorldConfig()
#: Bump amplitude of the cases, metres.
B = 1.0e-3
#: Relative tolerance on a known displacement (the Poisson stretch of the band moves the line a little too).
REL_TOL = 0.12
#: Absolute slack on a known displacement, metres.
ABS_TOL = 0.05e-3


@pytest.fixture(scope="module")
def base():
    p = nominal_params("sneaker", 42, "right")
    return p, make_pair_detailed(0, params=p)[1]


def _with(p, **kw):
    return make_pair_detailed(0, params=dataclasses.replace(p, **kw))[1]


def _station(det, xf_target: float, medial: bool | None = None) -> int:
    out = det.last.outline
    xf = (out[:, 0] - out[:, 0].min()) / det.last.length_m
    cost = np.abs(xf - xf_target)
    if medial is not None:
        cost = cost + np.where((out[:, 1] > 0) == medial, 0.0, 1.0)
    return int(np.argmin(cost))


def test_cad_nominal_has_no_variation_and_sits_at_the_station_centre():
    a = make_nominal_pair("boot", 44, "left")
    b = make_nominal_pair("boot", 44, "left")
    assert np.array_equal(a.bite_line, b.bite_line)
    nom = nominal_values("boot", CFG)
    for key, value in nom.items():
        assert getattr(a.params, key) == value, key
    assert a.params.upper_placement.dx_m == 0.0 and a.params.sole_placement.yaw_deg == 0.0
    for group in BUDGET_GROUPS:  # every variation is already at its neutral value
        assert neutral(a.params, group) == a.params


def test_wide_feather_bump_lowers_the_line_by_its_height_and_a_narrow_one_is_absorbed(base):
    p, det0 = base
    i = _station(det0, 0.45, medial=False)
    centre = i / det0.upper.shape[1]
    for sigma in (0.25, 0.01):  # ~170 mm and ~7 mm of perimeter against 20 mm of floor bridging
        det = _with(p, feather_bumps=((centre, sigma, B),))
        dz = det.attach.bite_points[i, 2] - det0.attach.bite_points[i, 2]
        sigma_m = sigma * float(np.linalg.norm(np.diff(det.last.outline, axis=0), axis=1).sum())
        followed = sigma_m / math.hypot(sigma_m, CFG.floor_bridging_m)  # Gaussian smoothed by a Gaussian
        assert dz == pytest.approx(-B * followed, rel=REL_TOL, abs=ABS_TOL), sigma
    # the bump moved the feather edge itself by the full height
    assert det.upper[det.last.j_feather, i, 2] - det0.upper[det0.last.j_feather, i, 2] == pytest.approx(-B)


@pytest.mark.parametrize(("field", "xf", "medial", "share"), [
    ("heel_fullness_m", 0.0, None, 1.0),
    ("waist_loose_m", 0.45, True, 1.0),
    ("waist_loose_m", 0.45, False, 0.5),
])  # fmt: skip
def test_fullness_and_loose_lasting_move_the_line_outward_by_their_offset(base, field, xf, medial, share):
    p, det0 = base
    det = _with(p, **{field: B})
    i = _station(det0, xf, medial)
    d = det.attach.bite_points[i, :2] - det0.attach.bite_points[i, :2]
    u = det0.last.direction[i]
    outward = float(d @ u)
    # the side moved by share*B along its normal n; at the same height the surface point moves by that over n.u
    n = grid_normals(det0.upper)[round(det0.attach.bite_ring[i]), i]
    assert outward == pytest.approx(share * B / float(n[:2] @ u), rel=REL_TOL)


def test_fuller_toe_offsets_the_side_and_the_line_follows_the_seat(base):
    """The toe's side moves out by the fullness along its normal; the fuller toe also sits tighter in the cup (a
    larger stand-off), so the line drops with the seat: bite height - seat keeps the sole's own wall rise."""
    p, det0 = base
    det = _with(p, toe_fullness_m=B)
    i = _station(det0, 1.0)
    js = det0.last.j_side
    n = grid_normals(upper_grid(det0.last, p.upper_thickness_m, CFG))[js:, i]
    moved = np.einsum("ki,ki->k", det.upper[js:, i] - det0.upper[js:, i], n)
    np.testing.assert_allclose(moved, B, rtol=0.02)  # x_f = 1 is the toe pattern's peak
    seat0 = seat_height(det0.last, det0.upper, det0.sole, p, CFG)[i]
    seat = seat_height(det.last, det.upper, det.sole, dataclasses.replace(p, toe_fullness_m=B), CFG)[i]
    assert seat < seat0  # tighter: stands off
    rise0 = det0.attach.bite_points[i, 2] - seat0
    # the rim rides on the seat, its rise changed only by the Poisson thinning of the more stretched band
    poisson = p.poisson_ratio * abs(det.attach.hoop_strain[i] - det0.attach.hoop_strain[i]) * rise0
    assert abs(det.attach.bite_points[i, 2] - seat - rise0) <= 1.5 * poisson + ABS_TOL
    assert poisson > 0


def test_pushback_of_loose_leather_eases_the_band_at_the_waist(base):
    p, det0 = base
    i = _station(det0, 0.45, medial=True)
    loose = _with(p, waist_loose_m=1.5e-3, leather_pushback=0.0).attach.hoop_strain[i]
    pushed = _with(p, waist_loose_m=1.5e-3, leather_pushback=0.6).attach.hoop_strain[i]
    assert pushed < loose  # pressed back towards the last, the band seats on a shorter perimeter


def test_last_copy_is_a_normal_offset_of_the_lasted_side(base):
    p, det0 = base
    c0 = 0.25e-3
    copy = upper_grid(det0.last, p.upper_thickness_m, CFG, params=dataclasses.replace(p, last_copy_m=(c0, 0.0)))
    thicker = upper_grid(det0.last, p.upper_thickness_m + c0, CFG)
    js = det0.last.j_side
    np.testing.assert_allclose(copy[js:], thicker[js:], atol=1e-12)


def test_bottom_stack_compliance_lifts_the_line_by_its_compression(base):
    p, det0 = base
    e = 5e6
    det = _with(p, upper_stack_modulus_pa=e)
    c_u = p.press_pressure_pa * (CFG.insole_thickness_m + p.upper_thickness_m) / e
    dz = det.attach.bite_points[:, 2] - det0.attach.bite_points[:, 2]
    np.testing.assert_allclose(dz, c_u, rtol=0.02)


def test_placement_error_changes_the_interference_and_the_stand_off(base):
    p, det0 = base
    dx = 1.0e-3
    q = dataclasses.replace(p, sole_offset_m=(dx, 0.0))
    d0 = interference(det0.last, det0.upper, det0.sole, p)
    d1 = interference(det0.last, det0.upper, det0.sole, q)
    np.testing.assert_allclose(d1 - d0, -dx * det0.last.direction[:, 0], atol=1e-12)  # exact: a rigid shift
    chi = seating_fraction(p, float(det0.sole.wall_thickness[0].mean()), CFG)
    det = _with(p, sole_offset_m=(dx, 0.0))
    heel, toe = _station(det0, 0.0), _station(det0, 1.0)
    assert min(d0[heel], d0[toe]) > dx  # tight at both ends: the stand-off follows the interference linearly
    for i, sign in ((heel, -1.0), (toe, 1.0)):  # moved toe-wards: tighter at the heel, looser at the toe
        dz = det.attach.bite_points[i, 2] - det0.attach.bite_points[i, 2]
        assert dz == pytest.approx(sign * chi * dx, rel=0.25)


def test_stiffer_wall_stands_off_more_on_a_tight_cup(base):
    p, det0 = base
    seats = [seat_height(det0.last, det0.upper, det0.sole, dataclasses.replace(p, youngs_modulus_pa=e), CFG)
             for e in (2e6, 8e6, 30e6)]  # fmt: skip
    toe = _station(det0, 1.0)
    assert seats[0][toe] > seats[1][toe] > seats[2][toe]  # the press wedges a soft wall open, not a stiff one


def test_cavity_profile_is_fixed_per_cavity_and_raises_the_rim_by_itself(base):
    p, det0 = base
    n = det0.upper.shape[1]
    a = cavity_profile("sneaker", 42, "right", 1, n, CFG.cavity_profile_amp_m)
    assert np.array_equal(a, cavity_profile("sneaker", 42, "right", 1, n, CFG.cavity_profile_amp_m))
    assert not np.allclose(a, cavity_profile("sneaker", 42, "right", 2, n, CFG.cavity_profile_amp_m))
    assert 0 < np.abs(a).max() <= 4 * CFG.cavity_profile_amp_m
    sole = sole_grid(det0.last, dataclasses.replace(p, sole_cavity=1), CFG)
    np.testing.assert_allclose(sole.free_height - det0.sole.free_height, a * p.sole_scale, atol=0.03e-3)


def test_anisotropic_shrinkage_scales_each_axis(base):
    p, det0 = base
    ax, az = 0.004, -0.006
    sole = sole_grid(det0.last, dataclasses.replace(p, sole_shrink_aniso=ax, sole_shrink_z=az), CFG)
    np.testing.assert_allclose(sole.points[..., 0], det0.sole.points[..., 0] * (1 + ax), atol=1e-12)
    np.testing.assert_allclose(sole.points[..., 1], det0.sole.points[..., 1] * (1 - ax), atol=1e-12)
    np.testing.assert_allclose(sole.points[..., 2], det0.sole.points[..., 2] * (1 + az), atol=1e-12)


def test_warp_lifts_the_ends_and_is_pressed_out_by_bending(base):
    p, det0 = base
    w = 1.2e-3
    sole = sole_grid(det0.last, dataclasses.replace(p, sole_warp_m=w), CFG)
    lift = sole.points[..., 2] - det0.sole.points[..., 2]
    xf = (sole.points[..., 0] - det0.last.outline[:, 0].min()) / det0.last.length_m
    np.testing.assert_allclose(lift, w * (2 * xf - 1) ** 2, atol=1e-12)
    a_free = np.linspace(1e-3, 1e-2, 4)[:, None] * np.ones((1, det0.upper.shape[1]))
    db = _bending_strain(det0.last, det0.sole, a_free, w) - _bending_strain(det0.last, det0.sole, a_free, 0.0)
    tangent = np.roll(det0.last.outline, -1, axis=0) - np.roll(det0.last.outline, 1, axis=0)
    cos2 = tangent[:, 0] ** 2 / np.sum(tangent**2, axis=1)
    expected = 8 * w / det0.last.length_m**2 * (0.5 * det0.sole.floor_thickness[-1] + a_free) * cos2
    np.testing.assert_allclose(db, expected, rtol=1e-9, atol=1e-15)


def test_draft_and_the_mould_last_copy_open_the_cup(base):
    p, det0 = base
    s0 = det0.sole
    rim = s0.points[s0.j_rim_in, :, :2] / p.sole_scale
    nodraft = sole_grid(det0.last, p, dataclasses.replace(CFG, sole_draft_deg=0.0))
    rim_nd = nodraft.points[nodraft.j_rim_in, :, :2] / p.sole_scale
    opened = np.einsum("ni,ni->n", rim - rim_nd, det0.last.direction)
    h = nodraft.free_height / p.sole_scale
    np.testing.assert_allclose(opened, h * math.tan(math.radians(CFG.sole_draft_deg)), rtol=0.05)
    bigger = sole_grid(det0.last, dataclasses.replace(p, sole_last_copy_m=0.4e-3), CFG)
    d0 = interference(det0.last, det0.upper, s0, p)
    d1 = interference(det0.last, det0.upper, bigger, p)
    assert np.all(d1 < d0 - 0.15e-3)  # a bigger mould last makes a looser cup everywhere


def test_draws_are_within_the_configured_ranges():
    from gluecell.datasets.world import draw_params

    for seed in range(30):
        p = draw_params(np.random.default_rng(seed))
        assert len(p.feather_bumps) == CFG.feather_bump_count
        assert all(abs(a) <= CFG.feather_bump_amp_m and CFG.feather_bump_width[0] <= w <= CFG.feather_bump_width[1]
                   for _, w, a in p.feather_bumps)  # fmt: skip
        assert abs(p.toe_fullness_m) <= CFG.toe_heel_fullness_m and abs(p.heel_fullness_m) <= CFG.toe_heel_fullness_m
        assert CFG.waist_loose_m[0] <= p.waist_loose_m <= CFG.waist_loose_m[1]
        assert abs(p.last_copy_m[0]) + abs(p.last_copy_m[1]) <= CFG.last_copy_m
        assert 0 <= p.sole_cavity < CFG.sole_cavities
        assert max(abs(v) for v in p.sole_offset_m) <= CFG.sole_place_max_m
        assert abs(p.sole_yaw_deg) <= CFG.sole_place_yaw_deg and abs(p.sole_warp_m) <= CFG.sole_warp_m
        assert type(p).from_dict(p.to_dict()) == p
