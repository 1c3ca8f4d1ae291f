"""Geometry of the synthetic world: lasts to scale, watertight parts, mirror, placement, errors."""

import dataclasses
import json
import math

import numpy as np
import pytest

from gluecell.datasets.errors import DatasetsError, WorldParamError
from gluecell.datasets.world import STYLES, WorldConfig, draw_params, make_pair
from gluecell.datasets.world.last import ball_width_m, build_last, rocker
from gluecell.datasets.world.pair import make_pair_detailed
from gluecell.datasets.world.parts import upper_grid
from gluecell.datasets.world.styles import STYLE_SPECS

#: Paris point: 2/3 cm per EU size (FACTS.md); our outline spline may overshoot by a fraction of a mm.
LENGTH_TOL_M = 0.5e-3
#: Width grading 2 mm per size (FACTS.md); tolerance on the fitted slope.
WIDTH_SLOPE_TOL_M = 0.3e-3
#: Plausible bottom (ball) widths of men's/women's lasts, metres.
BALL_WIDTH_RANGE_M = (0.075, 0.115)
#: Plausible volumes of a lasted upper (closed solid incl. the last), litres.
UPPER_VOLUME_RANGE_L = (0.6, 3.0)
#: DESIGN.md station tolerances.
PLACEMENT_TOL_M = 0.010
YAW_TOL_DEG = 15.0
TOP_Z_RANGE_M = (0.15, 0.20)
TRAY_Z_M = 0.02
MIRROR_TOL_M = 1e-9


def _outline_extent(style: str, size: float) -> tuple[float, float]:
    g = build_last(STYLE_SPECS[style], size)
    ext = g.outline.max(axis=0) - g.outline.min(axis=0)
    return float(ext[0]), float(ext[1])


@pytest.mark.parametrize("style", STYLES)
def test_last_length_follows_paris_point(style):
    for size in (36, 41, 46):
        length, _ = _outline_extent(style, size)
        assert abs(length - size / 1.5 * 0.01) < LENGTH_TOL_M, (style, size, length)


@pytest.mark.parametrize("style", STYLES)
def test_width_grading_is_two_mm_per_size_and_plausible(style):
    sizes = np.arange(36, 47)
    widths = np.array([_outline_extent(style, s)[1] for s in sizes])
    slope = np.polyfit(sizes, widths, 1)[0]
    assert abs(slope - 0.002 * STYLE_SPECS[style].width_factor) < WIDTH_SLOPE_TOL_M
    assert BALL_WIDTH_RANGE_M[0] < widths.min() and widths.max() < BALL_WIDTH_RANGE_M[1]
    assert ball_width_m(42, STYLE_SPECS[style]) == pytest.approx(0.091 * STYLE_SPECS[style].width_factor)


def test_grading_is_not_proportional_toe_spring_and_heel_rise_held():
    spec = STYLE_SPECS["boot"]
    xf = np.array([0.0, 1.0])
    small, large = build_last(spec, 36), build_last(spec, 46)
    # the feather-edge ring's height profile (toe spring, heel rise) is the same at both sizes
    for g in (small, large):
        z_fe = g.points[g.j_feather, :, 2]
        assert z_fe.max() - z_fe.min() == pytest.approx(max(spec.toe_spring_m, spec.heel_rise_m), abs=1.5e-3)
    np.testing.assert_allclose(rocker(xf, spec.toe_spring_m, spec.heel_rise_m), [spec.heel_rise_m, spec.toe_spring_m])
    # the height of the last's top scales at half the length rate
    h_small = small.points[..., 2].max() - small.points[..., 2].min()
    h_large = large.points[..., 2].max() - large.points[..., 2].min()
    length_ratio = large.length_m / small.length_m
    assert 1.0 < h_large / h_small < length_ratio


@pytest.mark.parametrize("style", STYLES)
def test_meshes_are_watertight_and_plausible(style):
    pair = make_pair(11, style=style, size_eu=42, side="right")
    for mesh in (pair.upper_mesh, pair.sole_mesh):
        assert mesh.is_watertight
        assert mesh.is_winding_consistent
        assert mesh.volume > 0
        assert mesh.is_volume and mesh.euler_number == 2  # one closed sphere-like shell
    vol_l = pair.upper_mesh.volume * 1e3
    assert UPPER_VOLUME_RANGE_L[0] < vol_l < UPPER_VOLUME_RANGE_L[1]
    assert pair.sole_mesh.volume < pair.upper_mesh.volume
    assert pair.upper_bond_faces.shape == (len(pair.upper_mesh.faces),)
    assert pair.sole_bond_faces.shape == (len(pair.sole_mesh.faces),)
    assert pair.deformed_sole_vertices.shape == pair.sole_mesh.vertices.shape


def test_lasting_deviation_is_small_and_only_on_the_side():
    cfg = WorldConfig()
    pair, det = make_pair_detailed(8, style="sneaker", size_eu=42, side="right")
    p = pair.params
    nominal = upper_grid(det.last, p.upper_thickness_m, cfg)
    lasted = upper_grid(det.last, p.upper_thickness_m, cfg, lasting_modes=p.upper_lasting_modes)
    dev = np.linalg.norm(lasted - nominal, axis=2)
    bound = sum(a for a, _ in p.upper_lasting_modes)
    assert 0.0 < dev.max() <= bound + 1e-9 and bound <= 4 * cfg.lasting_mode_amp_m
    assert np.all(dev[: det.last.n_bottom] == 0.0)  # the bottom is held by the insole board


def test_boot_has_a_shaft():
    heights = {}
    for style in STYLES:
        _, det = make_pair_detailed(3, style=style, size_eu=42, side="right")
        z = det.upper[..., 2]
        heights[style] = z.max() - z.min()
    assert heights["boot"] > heights["sneaker"] + 0.03
    assert heights["boot"] > heights["court"] + 0.03


def test_left_is_the_mirror_of_right():
    right = make_pair(21, style="court", size_eu=40, side="right")
    left = make_pair(21, style="court", size_eu=40, side="left")
    flip = np.array([1.0, -1.0, 1.0])

    def local(T, pts):
        return (pts - T[:3, 3]) @ T[:3, :3]

    for a, b in (
        (local(right.T_base_upper, right.upper_mesh.vertices), local(left.T_base_upper, left.upper_mesh.vertices)),
        (local(right.T_base_sole, right.sole_mesh.vertices), local(left.T_base_sole, left.sole_mesh.vertices)),
        (local(right.T_base_upper, right.bite_line), local(left.T_base_upper, left.bite_line)),
    ):
        np.testing.assert_allclose(a * flip, b, atol=MIRROR_TOL_M)
    assert left.upper_mesh.volume == pytest.approx(right.upper_mesh.volume, rel=1e-9)
    assert left.upper_mesh.is_winding_consistent and left.upper_mesh.volume > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_placement_inside_station_box_and_height_band(seed):
    cfg = WorldConfig()
    pair = make_pair(seed, cfg)
    for mesh, T, centre in (
        (pair.upper_mesh, pair.T_base_upper, cfg.upper_station_xy_m),
        (pair.sole_mesh, pair.T_base_sole, cfg.sole_station_xy_m),
    ):
        v = mesh.vertices
        assert np.all(np.abs(v[:, 0] - centre[0]) <= 0.20) and np.all(np.abs(v[:, 1] - centre[1]) <= 0.12)
        assert v[:, 2].min() >= 0.0 and v[:, 2].max() <= 0.30
        assert np.hypot(*(T[:2, 3] - np.asarray(centre))) <= PLACEMENT_TOL_M * math.sqrt(2)
        assert np.all(np.abs(T[:2, 3] - np.asarray(centre)) <= PLACEMENT_TOL_M)
        toe = T[:3, 0]
        assert math.degrees(math.atan2(toe[1], toe[0])) == pytest.approx(0.0, abs=YAW_TOL_DEG)
    top = pair.upper_mesh.vertices[:, 2].max()
    assert TOP_Z_RANGE_M[0] <= top <= TOP_Z_RANGE_M[1]
    # the highest point of the upper is its bottom: the outward normal there points up
    i = int(np.argmax(pair.upper_mesh.vertices[:, 2]))
    assert pair.upper_mesh.vertex_normals[i, 2] > 0.9
    assert pair.sole_mesh.vertices[:, 2].min() == pytest.approx(TRAY_Z_M, abs=1e-9)


def test_same_seed_gives_identical_arrays_and_seedsequence_works():
    a, b = make_pair(77), make_pair(77)
    for name in ("bite_line", "feather_edge", "upper_bond_faces", "sole_bond_faces", "deformed_sole_vertices"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.upper_mesh.vertices, b.upper_mesh.vertices)
    assert np.array_equal(a.sole_mesh.faces, b.sole_mesh.faces)
    assert a.params == b.params and a.item == b.item
    ss = np.random.SeedSequence(1234).spawn(2)[1]
    c, d = make_pair(ss), make_pair(np.random.SeedSequence(1234).spawn(2)[1])
    assert np.array_equal(c.bite_line, d.bite_line)
    assert c.item.item_id != a.item.item_id
    assert make_pair(78).params != a.params


def test_params_are_json_ready_and_within_ranges():
    cfg = WorldConfig()
    for seed in range(20):
        p = draw_params(np.random.default_rng(seed), cfg)
        d = json.loads(json.dumps(p.to_dict()))
        assert d["style"] in STYLES and 36 <= d["size_eu"] <= 46 and d["side"] in ("left", "right")
        lo, hi = getattr(cfg, f"{p.material}_youngs_pa")
        assert lo <= p.youngs_modulus_pa <= hi
        assert cfg.leather_thickness_m[0] <= p.upper_thickness_m <= cfg.leather_thickness_m[1]
        assert cfg.press_pressure_pa[0] <= p.press_pressure_pa <= cfg.press_pressure_pa[1]
        assert abs(p.upper_placement.yaw_deg) <= cfg.yaw_max_deg


def test_fixing_style_keeps_other_hidden_draws():
    a = draw_params(np.random.default_rng(5), style="sneaker")
    b = draw_params(np.random.default_rng(5), style="boot")
    assert a.upper_thickness_m == b.upper_thickness_m and a.upper_placement == b.upper_placement


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"style": "sandal"}, "unknown style 'sandal'"),
        ({"size_eu": 35}, "outside the world's range EU 36-46"),
        ({"size_eu": 47.5}, "outside the world's range"),
        ({"size_eu": float("nan")}, "outside the world's range"),
        ({"side": "middle"}, "unknown side"),
    ],
)
def test_bad_choices_raise_clear_errors(kwargs, match):
    with pytest.raises(WorldParamError, match=match) as info:
        make_pair(0, **kwargs)
    assert isinstance(info.value, DatasetsError) and isinstance(info.value, ValueError)


def test_config_validation():
    with pytest.raises(WorldParamError, match="low"):
        WorldConfig(press_pressure_pa=(0.5e6, 0.3e6))
    with pytest.raises(WorldParamError, match="size_range_eu"):
        WorldConfig(size_range_eu=(30.0, 46.0))
    cfg = dataclasses.replace(WorldConfig(), size_range_eu=(40.0, 40.0))
    assert draw_params(np.random.default_rng(0), cfg).size_eu == 40.0
    half = dataclasses.replace(WorldConfig(), size_range_eu=(40.5, 40.5))
    assert draw_params(np.random.default_rng(0), half).size_eu == 40.5
