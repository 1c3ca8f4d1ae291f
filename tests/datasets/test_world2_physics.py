"""World 2's physics against cases with known answers (shapes, shrinkage, stretch, settle, placement)."""

from dataclasses import replace

import numpy as np
import pytest
import trimesh

from gluecell.datasets.errors import WorldParamError
from gluecell.datasets.world2 import sole as sole_mod
from gluecell.datasets.world2 import upper as upper_mod
from gluecell.datasets.world2.attach import Placement, attach, constrained_modulus, settle
from gluecell.datasets.world2.config import STYLES, World2Config
from gluecell.datasets.world2.geometry import perimeter
from gluecell.datasets.world2.pair import make_pair2
from gluecell.datasets.world2.sole import SoleParams, build_sole, cavity_perimeter_mould
from gluecell.datasets.world2.upper import UpperParams, bottom_profile, build_upper, last_outline

N = 256
#: Geometric tolerance of closed-form comparisons (m): sampling of outlines and rings.
TOL_M = 2e-5


def _flat_style(rim_m: float = 0.005) -> object:
    return replace(STYLES["rocker_trail"], toe_spring_m=0.0, heel_rise_m=0.0, flare_m=0.0, side_taper=0.0,
                   rim=((0.0, rim_m), (1.0, rim_m)))  # fmt: skip


def _upper(style, leather=0.0015, **kw) -> upper_mod.Upper:
    p = UpperParams(length=0.28, ball_width=0.1, toe_spring=0.0, heel_rise=0.0, feather_radius=0.001,
                    leather=leather, margin=1.0, waist_loose=0.0, toe_full=0.0, heel_full=0.0)  # fmt: skip
    return build_upper(style, replace(p, **kw), N)


def _sole(style, **kw) -> tuple[SoleParams, sole_mod.Sole]:
    p = SoleParams(cad_length=0.28, cad_width=0.1, cad_spring=0.0, heel_rise=0.0, undersize=0.0008,
                   leather_nominal=0.0015, shrink_x=0.01, shrink_y=0.01, shrink_z=0.005, bow=0.0, draft_deg=1.0,
                   material="eva", E=3e6, nu=0.1)  # fmt: skip
    p = replace(p, **kw)
    return p, build_sole(style, p, N)


@pytest.fixture
def flat(monkeypatch):
    """No crown: a flat last bottom (the margin covers it all) on a flat footbed."""
    monkeypatch.setattr(upper_mod, "CROWN_M", 0.0)
    monkeypatch.setattr(sole_mod, "CROWN_M", 0.0)
    return _flat_style()


def test_shapes_are_closed_outward_and_toe_spring_is_exact():
    cfg = World2Config()
    for name, st in STYLES.items():
        rng = np.random.default_rng(4)
        up = build_upper(st, upper_mod.upper_params(st, st.ref_size, rng, cfg), N)
        so = build_sole(st, sole_mod.sole_params(st, st.ref_size, rng, cfg), N)
        for v, f in ((up.vertices, up.faces), (so.vertices, so.faces)):
            m = trimesh.Trimesh(v, f, process=False)
            assert m.is_watertight and m.is_winding_consistent and m.volume > 0, name
        assert up.outline.length > so.cavity.length, name  # every cup is smaller than its upper: it grips
    L, S, H = 0.27, 0.024, 0.01
    assert bottom_profile(np.array([L]), L, S, H)[0] == pytest.approx(S)
    assert bottom_profile(np.array([upper_mod.BALL_XI * L]), L, S, H)[0] == pytest.approx(0.0, abs=1e-12)
    assert bottom_profile(np.array([0.1 * L]), L, S, H)[0] == pytest.approx(H)


def test_leather_grows_the_perimeter_by_two_pi_t():
    st = STYLES["ranger_boot"]
    bare = last_outline(st, 0.28, 0.1, 1024).length
    for t in (0.001, 0.002):
        assert last_outline(st, 0.28, 0.1, 1024, grow=t).length - bare == pytest.approx(2 * np.pi * t, rel=0.02)


def test_known_shrinkage_gives_the_known_perimeter_change():
    st = _flat_style()
    for s in (0.005, 0.02):
        p, so = _sole(st, shrink_x=s, shrink_y=s)
        assert so.cavity.length == pytest.approx(cavity_perimeter_mould(st, p, N) * (1 - s), rel=1e-9)
    p, so = _sole(st, shrink_x=0.02, shrink_y=0.0)  # along the length only: between the two bounds
    mould = cavity_perimeter_mould(st, p, N)
    assert mould * 0.98 < so.cavity.length < mould
    # the draft widens the cavity upward by 2 pi tan(draft) h
    grown = so.cavity_perimeter(0.01) - so.cavity_perimeter(0.0)
    assert grown == pytest.approx(2 * np.pi * np.tan(np.radians(1)) * 0.01)


def test_spring_bed_settle_closed_forms():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.1, 0.1, (400, 2))
    area = np.full(400, 1e-6)
    k = np.full(400, 3e6 / 0.01)
    P = 0.4e6
    rigid, delta = settle(xy, np.zeros(400), k, area, P)  # flat on flat: uniform P / k
    assert np.allclose(delta, P / k[0], atol=1e-12) and rigid[1:] == pytest.approx([0, 0], abs=1e-12)
    tilt = 0.002 + 0.01 * xy[:, 0] - 0.004 * xy[:, 1]  # a tilted footbed is taken up by a rigid tilt
    rigid, delta = settle(xy, tilt, k, area, P)
    assert np.allclose(delta, P / k[0], atol=1e-12)
    step = np.where(xy[:, 0] > 0.05, -0.01, 0.0)  # a 10 mm hollow: no contact there, force still balances
    rigid, delta = settle(xy, step, k, area, P)
    on = delta > 0
    assert not on[xy[:, 0] > 0.06].any()
    assert (k * area * np.clip(delta, 0, None)).sum() == pytest.approx(P * area.sum(), rel=1e-9)
    assert constrained_modulus(5e6, 0.0) == pytest.approx(5e6)
    assert constrained_modulus(5e6, 0.25) == pytest.approx(6e6)


def test_flat_sole_on_flat_bottom_gives_the_analytic_line_height(flat):
    rim, P = 0.005, 0.4e6
    up = _upper(flat)
    p, so = _sole(flat, material="tr_rubber", E=4e6, nu=0.48)
    res = attach(up, so, Placement(), P)
    delta = P * (1 - p.shrink_z) * flat.footbed_m / constrained_modulus(p.E, p.nu)
    h_wall = rim * (1 - p.shrink_z)
    p_upper = perimeter(last_outline(flat, 0.28, 0.1, N, grow=0.0015).points)
    p_cavity = cavity_perimeter_mould(flat, p, N) * (1 - p.shrink_x) + 2 * np.pi * np.tan(np.radians(1)) * h_wall
    eps = p_upper / p_cavity - 1
    assert res.eps == pytest.approx(eps, abs=2e-4) and eps > 0
    assert np.allclose(res.height, h_wall * (1 - p.nu * eps) + delta, atol=TOL_M)
    assert res.contact_fraction == 1.0
    # the line lies on the upper's side at that height above the bottom's edge
    assert np.allclose(res.bite_line[:, 2] - up.edge_z(res.u), res.height, atol=TOL_M)


def test_loose_cavity_keeps_its_wall_height_and_soft_foam_raises_the_line(flat):
    up = _upper(flat)
    p, so = _sole(flat, undersize=-0.004)  # 4 mm too big all round: no grip, no Poisson shortening
    res = attach(up, so, Placement(), 0.4e6)
    assert res.eps < 0
    delta = 0.4e6 * (1 - p.shrink_z) * flat.footbed_m / constrained_modulus(p.E, p.nu)
    assert np.allclose(res.height, 0.005 * (1 - p.shrink_z) + delta, atol=TOL_M)
    soft = attach(up, _sole(flat, E=2e6)[1], Placement(), 0.4e6).height.mean()
    stiff = attach(up, _sole(flat, E=5e6)[1], Placement(), 0.4e6).height.mean()
    t = (1 - p.shrink_z) * flat.footbed_m
    expect = 0.4e6 * t * (1 / constrained_modulus(2e6, p.nu) - 1 / constrained_modulus(5e6, p.nu))
    assert soft - stiff == pytest.approx(expect, rel=1e-6)


def test_placement_slides_the_rim_profile_along_the_upper(flat):
    ramp = replace(flat, rim=((0.0, 0.005), (0.15, 0.005), (0.35, 0.015), (1.0, 0.015)))
    up = _upper(ramp)
    so = _sole(ramp)[1]
    base = attach(up, so, Placement(), 0.4e6)
    dx = 0.0015
    moved = attach(up, so, Placement(dx=dx), 0.4e6)
    # on the lateral side the outline runs towards the toe (+x): the wall slides dx forward, so each
    # point sees the rim of dx / P earlier; on the ramp that is slope * dx / P lower
    t = up.outline.tangents_at(base.u)
    i = np.flatnonzero((base.u > 0.2) & (base.u < 0.3) & (t[:, 0] > 0.99))
    slope = 0.010 / 0.2
    expect = -slope * dx * t[i, 0] / up.perimeter_at(float(np.mean(so.rim(base.u))))
    assert len(i) > 10
    assert np.allclose(moved.height[i] - base.height[i], expect, rtol=0.03)
    flat_rim = attach(up, _sole(flat)[1], Placement(dx=dx, dy=-dx, yaw=0.01), 0.4e6)  # a flat rim does not care
    assert np.ptp(flat_rim.height) < TOL_M


def test_toe_spring_mismatch_tilts_the_sole_and_lifts_the_contact(flat):
    up = _upper(flat, toe_spring=0.012)
    res = attach(up, _sole(flat, cad_spring=0.0, E=4e6, nu=0.48, material="tr_rubber")[1], Placement(), 0.4e6)
    assert res.contact_fraction < 0.9  # the footbed no longer reaches the upper's sprung toe everywhere
    u_toe = np.argmin(np.abs(res.u - 0.5))
    assert res.delta_edge[u_toe] < 0  # a gap under the toe: the rim sits lower there


def test_pair_is_deterministic_and_its_line_lies_on_the_upper():
    a = make_pair2(np.random.SeedSequence(3, spawn_key=(1,)))
    b = make_pair2(np.random.SeedSequence(3, spawn_key=(1,)))
    assert np.array_equal(a.bite_line, b.bite_line) and a.params == b.params
    m = trimesh.Trimesh(a.upper_vertices, a.upper_faces, process=False)
    d = np.abs(trimesh.proximity.signed_distance(m, a.bite_line[::10]))
    assert d.max() < 1e-4
    assert a.bite_line[:, 2].max() < a.upper_vertices[:, 2].max()  # upside down: the line is below the bottom
    assert a.upper_bond_faces.any() and not a.upper_bond_faces.all() and a.sole_bond_faces.any()


def test_style_reference_is_the_cad_nominal_not_a_pair():
    from gluecell.datasets.world2.reference import nominal_parts

    ref = nominal_parts("court_flat", 38.0, "left")
    again = nominal_parts("court_flat", 38.0, "left")
    assert all(np.array_equal(ref[k], again[k]) for k in ref)  # no hidden draw in it
    for part in ("upper", "sole"):
        m = trimesh.Trimesh(ref[f"{part}_vertices"], ref[f"{part}_faces"], process=False)
        assert m.is_watertight and m.volume > 0
    pair = make_pair2(np.random.SeedSequence(9), style="court_flat")
    ext = np.ptp(ref["upper_vertices"], axis=0)
    assert ext[0] == pytest.approx(38.0 * 20 / 3 * 1e-3 + 2 * 0.00125, abs=0.002)  # length + leather at the ends
    assert not np.array_equal(np.ptp(pair.upper_vertices, axis=0), ext)
    with pytest.raises(WorldParamError, match="size"):
        nominal_parts("court_flat", 45.0)
