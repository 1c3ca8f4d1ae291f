"""Ground-truth attach: the bite line, the bond regions and the pressed sole."""

import dataclasses

import numpy as np
import pytest
import trimesh

from gluecell.datasets.world import STYLES, WorldConfig
from gluecell.datasets.world.attach import compression_modulus, floor_compression, seat_height, simulate_attach
from gluecell.datasets.world.last import build_last, quad_face
from gluecell.datasets.world.pair import make_pair_detailed
from gluecell.datasets.world.parts import sole_grid, upper_grid
from gluecell.datasets.world.styles import STYLE_SPECS

#: The contract (brief / DESIGN.md): bite line on the upper within 0.1 mm, spacing <= 1 mm.
ON_SURFACE_TOL_M = 0.1e-3
MAX_SPACING_M = 1.0e-3
#: Bound on the hoop strain of the band: undersize + shrinkage + leather and bending (~2-4 %), generous.
HOOP_STRAIN_BOUND = 0.06
#: Numerical slack for the arc-length bookkeeping (linear interpolation along column edges).
ARC_TOL_M = 0.02e-3
#: Bite line above the feather edge: the sidewalls are 8-18 mm (styles.py) plus/minus the attach.
MIN_BITE_RISE_M, MAX_BITE_RISE_M = 0.004, 0.025
#: Extra hoop strain from 2.0 instead of 1.2 mm leather (2 pi 0.8 mm / ~0.65 m ~ 0.8 %), bounds.
THICKER_LEATHER_STRAIN = (0.004, 0.012)
#: How far a pressed-sole vertex may lie inside the upper (contact, no penetration).
PENETRATION_TOL_M = 0.05e-3


@pytest.fixture(scope="module")
def pairs():
    return [make_pair_detailed(seed, style=STYLES[seed % 3]) for seed in range(6)]


def test_bite_line_is_on_the_upper_closed_and_finely_sampled(pairs):
    for pair, _ in pairs:
        bl = pair.bite_line
        _, dist, _ = trimesh.proximity.closest_point(pair.upper_mesh, bl)
        assert dist.max() <= ON_SURFACE_TOL_M
        steps = np.linalg.norm(np.diff(np.vstack([bl, bl[:1]]), axis=0), axis=1)
        assert steps.max() <= MAX_SPACING_M  # includes the closing step: the line is closed
        assert steps.min() > 0.2e-3  # ordered: no doubled-back or repeated points
        perimeter = steps.sum()
        assert 0.5 < perimeter < 0.8  # an EU 36-46 bottom perimeter with the wrap, metres


def test_bite_line_sits_above_the_feather_edge(pairs):
    for pair, det in pairs:
        T = pair.T_base_upper
        bl = (pair.bite_line - T[:3, 3]) @ T[:3, :3]  # part frame, as worn (z up)
        fe = (pair.feather_edge - T[:3, 3]) @ T[:3, :3]
        nearest = np.argmin(np.linalg.norm(bl[:, None, :2] - fe[None, :, :2], axis=2), axis=1)
        rise = bl[:, 2] - fe[nearest, 2]
        assert rise.min() > MIN_BITE_RISE_M and rise.max() < MAX_BITE_RISE_M
        assert np.all(det.attach.bite_arc > MIN_BITE_RISE_M)


def test_bite_height_is_the_seat_plus_the_soles_own_wall_rise(pairs):
    """The rim sits at the seat height plus the sole's own (CAD) inner-wall rise, Poisson-stretched, plus the
    root lift; the bite point is where the upper's column reaches that height."""
    cfg = WorldConfig()
    for pair, det in pairs:
        p = pair.params
        a, s = det.attach, det.sole
        e_c = compression_modulus(p.youngs_modulus_pa, p.poisson_ratio, cfg.floor_shape_factor)
        lift = cfg.wall_root_lift * floor_compression(p.press_pressure_pa, e_c, cfg.floor_strain_limit)
        lift = lift * s.floor_thickness[-1]
        assert np.all(lift <= cfg.wall_root_lift * cfg.floor_strain_limit * s.floor_thickness[-1] + 1e-12)
        rise = s.points[s.j_rim_in, :, 2] - s.points[s.j_feather, :, 2]
        seat = seat_height(det.last, det.upper, s, p, cfg)
        dev = a.bite_points[:, 2] - seat - rise - lift
        stretch = p.poisson_ratio * HOOP_STRAIN_BOUND * np.abs(rise)
        assert np.all(np.abs(dev) <= stretch + ARC_TOL_M), (p.material, np.abs(dev).max())


def _stretch(det, a, p):
    """(N,) Poisson change of the rim height: bite height - seat - the sole's free wall rise - root lift."""
    cfg = WorldConfig()
    sole = sole_grid(det.last, p, cfg)
    rise = sole.points[sole.j_rim_in, :, 2] - sole.points[sole.j_feather, :, 2]
    seat = seat_height(det.last, det.upper, sole, p, cfg)
    return a.bite_points[:, 2] - seat - rise - a.floor_compression * cfg.wall_root_lift


def _attach_with(det, params, **changes):
    p = dataclasses.replace(params, **changes)
    cfg = WorldConfig()
    return simulate_attach(det.last, det.upper, sole_grid(det.last, p, cfg), p, cfg)


def test_stiffer_sole_stays_closer_to_its_free_height(pairs):
    pair, det = pairs[1]
    devs = []
    for E in (2e6, 6e6, 20e6):
        a = _attach_with(det, pair.params, youngs_modulus_pa=E, poisson_ratio=0.2)
        devs.append(np.mean(np.abs(_stretch(det, a, dataclasses.replace(pair.params, youngs_modulus_pa=E)))))
    assert devs[0] > devs[1] > devs[2]


def test_more_undersize_thins_an_incompressible_sidewall_more(pairs):
    pair, det = pairs[2]
    lows = []
    for undersize in (0.0, 0.01, 0.02):
        p = dataclasses.replace(pair.params, sole_undersize=undersize, sole_scale_error=0.0, poisson_ratio=0.49,
                                sole_last_copy_m=0.0)  # fmt: skip
        a = _attach_with(det, p)
        lows.append(np.mean(_stretch(det, a, p)))
        assert np.all(np.abs(a.hoop_strain) < HOOP_STRAIN_BOUND)
    assert lows[0] > lows[1] > lows[2]  # more stretch, more Poisson thinning of the wall height
    p = dataclasses.replace(pair.params, sole_undersize=0.02, sole_scale_error=0.0, poisson_ratio=0.05,
                            sole_last_copy_m=0.0)  # fmt: skip
    low_foam = np.mean(_stretch(det, _attach_with(det, p), p))
    assert abs(low_foam) < abs(lows[2])  # a foam barely thins


def test_thicker_leather_stretches_the_sole_more():
    cfg = WorldConfig()
    last = build_last(STYLE_SPECS["sneaker"], 42)
    pair, det = make_pair_detailed(9, style="sneaker", size_eu=42)
    strains = []
    for t in (1.2e-3, 2.0e-3):
        up = upper_grid(last, t, cfg)
        strains.append(simulate_attach(last, up, det.sole, pair.params, cfg).hoop_strain.mean())
    # 0.8 mm more leather all round lengthens the band's seat by ~2 pi 0.8 mm on ~0.65 m
    assert THICKER_LEATHER_STRAIN[0] < strains[1] - strains[0] < THICKER_LEATHER_STRAIN[1]


def test_bond_regions(pairs):
    for pair, det in pairs:
        T = pair.T_base_upper
        n_up = pair.upper_mesh.face_normals @ T[:3, :3]  # back to the upper's part frame (as worn)
        if pair.params.side == "left":
            n_up = n_up * np.array([1.0, -1.0, 1.0])
        bottom = n_up[:, 2] < -0.95
        assert np.all(pair.upper_bond_faces[bottom])  # the whole bottom is bonded
        assert not np.any(pair.upper_bond_faces[n_up[:, 2] > 0.9])  # nothing on top (the toe dome reaches 0.8)
        frac = pair.upper_mesh.area_faces[pair.upper_bond_faces].sum() / pair.upper_mesh.area
        assert 0.2 < frac < 0.6
        n_so = pair.sole_mesh.face_normals @ pair.T_base_sole[:3, :3]
        n = det.sole.points.shape[1]
        rows = np.arange(len(pair.sole_mesh.faces))
        footbed = rows < quad_face(det.sole.j_feather - 2, 0, n)  # bottom rings, without the corner
        rim_top = (rows >= quad_face(det.sole.j_rim_in, 0, n)) & (rows < quad_face(det.sole.j_rim_out, 0, n))
        tread = n_so[:, 2] < -0.95
        assert np.all(n_so[footbed, 2] > 0.5)  # the footbed faces up
        assert np.all(pair.sole_bond_faces[footbed])
        assert not np.any(pair.sole_bond_faces[tread]) and not np.any(pair.sole_bond_faces[rim_top])


def test_pressed_sole_touches_but_does_not_penetrate_the_upper(pairs):
    for pair, det in pairs[:3]:
        s = det.sole
        v = pair.deformed_sole_vertices.reshape(det.attach.deformed_sole.shape)
        inner = v[: s.j_rim_in + 1].reshape(-1, 3)
        _, dist, _ = trimesh.proximity.closest_point(pair.upper_mesh, inner[::7])
        assert dist.max() <= ON_SURFACE_TOL_M
        rest = v[s.j_rim_in + 1 :].reshape(-1, 3)[::11]
        sd = trimesh.proximity.signed_distance(pair.upper_mesh, rest)  # > 0 inside
        assert sd.max() <= PENETRATION_TOL_M
        deformed = trimesh.Trimesh(pair.deformed_sole_vertices, pair.sole_mesh.faces, process=False)
        assert deformed.volume > 0.8 * pair.sole_mesh.volume  # compressed, not collapsed


def test_attach_is_deterministic():
    a = make_pair_detailed(4)[1].attach
    b = make_pair_detailed(4)[1].attach
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y), f.name
