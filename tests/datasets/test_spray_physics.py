"""True spray outcome on simple geometry: footprint, volume, standoff and incidence, occlusion, gun timing."""

import dataclasses

import numpy as np
import pytest
import trimesh

from gluecell.core.types import SprayPath
from gluecell.datasets.world.spray import SprayWorldConfig, simulate_spray
from gluecell.datasets.world.spray_gun import footprint_sigma
from gluecell.datasets.world.spray_motion import nozzle_quaternions

#: Nominal standoff of the band passes (pathplan's default), metres.
STANDOFF_M = 0.035
#: Deposited volume against flow x efficiency x open time (rays that miss: none on these plates).
VOLUME_RTOL = 0.01
#: Footprint sigma against the double-beta formula: levelling (0.6 mm disc) and ray sampling.
SIGMA_RTOL = 0.02
#: Support of the film beyond h·tan(alpha): face size (0.5 mm) + levelling radius (0.6 mm).
SUPPORT_SLACK_M = 1.2e-3
#: Mean film of a raster against Q / (v · spacing).
RASTER_RTOL = 0.03
#: Film-centroid shift by the gun delays (v (on + off) / 2), metres.
CENTROID_TOL_M = 0.1e-3
#: Margin kept from the geometric shadow edge in the occlusion test (levelling + path error).
SHADOW_MARGIN_M = 1.5e-3


def plate(half: float = 0.04, step: float = 0.5e-3, z: float = 0.0, x0: float = 0.0, y0: float = 0.0,
          half_y: float | None = None) -> trimesh.Trimesh:  # fmt: skip
    """Flat grid plate in the z = ``z`` plane, normal +z, triangles of ``step`` legs."""
    hy = half if half_y is None else half_y
    nx, ny = round(2 * half / step), round(2 * hy / step)
    xs, ys = np.linspace(-half, half, nx + 1) + x0, np.linspace(-hy, hy, ny + 1) + y0
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    v = np.stack([X.ravel(), Y.ravel(), np.full(X.size, z)], axis=1)
    idx = np.arange(X.size).reshape(nx + 1, ny + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    f = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return trimesh.Trimesh(v, f, process=False)


def still(h: float = STANDOFF_M, seconds: float = 1.0, axis=(0.0, 0.0, -1.0), tip=(0.0, 0.0, None)) -> SprayPath:
    """A nozzle held still at height ``h`` over the origin, gun on for ``seconds``."""
    axis = np.asarray(axis, dtype=float)
    p = np.array([tip[0], tip[1], h if tip[2] is None else tip[2]])
    q = nozzle_quaternions(np.tile(axis, (2, 1)), np.array([1.0, 0.0, 0.0]))
    return SprayPath(part="upper", t=[0.0, seconds], xyz=[p, p], quat_xyzw=q, spray=[True, False])


def moments(mesh: trimesh.Trimesh, film: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = film * mesh.area_faces
    c = mesh.triangles_center
    mu = (c * w[:, None]).sum(0) / w.sum()
    return mu, np.sqrt(((c - mu) ** 2 * w[:, None]).sum(0) / w.sum())


@pytest.fixture(scope="module")
def flat():
    return plate()


def test_still_nozzle_volume_is_flow_times_time_times_efficiency(flat):
    out = simulate_spray(flat, still(), 11)  # default config: hidden variation on
    r = out.run
    open_s = 1.0 - r.on_delay_s + r.off_delay_s
    expected = r.flow_m3_s * r.transfer_efficiency * open_s
    assert out.open_time_s == pytest.approx(open_s, abs=1e-12)
    assert out.deposited_m3 == pytest.approx(expected, rel=VOLUME_RTOL)
    assert np.sum(out.film_m * flat.area_faces) == pytest.approx(out.deposited_m3, rel=1e-9)  # levelling conserves
    nominal = SprayWorldConfig()
    assert abs(r.flow_m3_s / (nominal.flow_ml_s * 1e-6) - 1.0) <= nominal.flow_var + 1e-12


def test_footprint_widths_match_the_fan_angles_at_the_standoff(flat):
    cfg = dataclasses.replace(SprayWorldConfig().nominal(), mist_fraction=0.0)
    out = simulate_spray(flat, still(), 3, cfg)
    half_tan = np.tan(np.radians(cfg.fan_half_angle_deg))
    mu, sd = moments(flat, out.film_m)
    expect = footprint_sigma(STANDOFF_M, tuple(half_tan), cfg.fan_beta)
    # nozzle x = base x; pointing down flips y, which does not change the widths
    assert sd[:2] == pytest.approx(expect, rel=SIGMA_RTOL)
    assert np.linalg.norm(mu[:2]) < 0.05e-3
    hit = flat.triangles_center[out.film_m > 0]
    ext = np.abs(hit[:, :2]).max(axis=0)
    support = STANDOFF_M * half_tan
    assert np.all(ext <= support + SUPPORT_SLACK_M) and np.all(ext >= 0.9 * support)
    assert ext[0] > ext[1]  # the elliptic fan is wider about x (11 deg) than y (9.5 deg)


def test_hidden_fan_variation_changes_the_footprint_as_drawn(flat):
    cfg = dataclasses.replace(SprayWorldConfig(), mist_fraction=0.0)
    for seed in (1, 2):
        out = simulate_spray(flat, still(), seed, cfg)
        _, sd = moments(flat, out.film_m)
        expect = footprint_sigma(STANDOFF_M, tuple(out.run.half_tan), cfg.fan_beta)
        assert sd[:2] == pytest.approx(expect, rel=SIGMA_RTOL)


def test_mist_lands_in_a_wider_ring_with_its_share(flat):
    cfg = SprayWorldConfig().nominal()
    out = simulate_spray(flat, still(), 4, cfg)
    c = flat.triangles_center
    U, W = STANDOFF_M * np.tan(np.radians(cfg.fan_half_angle_deg))
    rho = np.sqrt((c[:, 0] / U) ** 2 + (c[:, 1] / W) ** 2)
    vol = out.film_m * flat.area_faces
    outside = vol[rho > 1.0 + SUPPORT_SLACK_M / W].sum() / vol.sum()
    assert 0.0 < outside < cfg.mist_fraction
    assert vol[rho > cfg.mist_angle_scale * 1.05 + SUPPORT_SLACK_M / W].sum() == 0.0


def test_film_thins_with_the_square_of_the_standoff_and_with_incidence(flat):
    cfg = SprayWorldConfig().nominal()
    c = flat.triangles_center

    def centre_film(out, h):
        near = np.linalg.norm(c[:, :2], axis=1) < 0.3 * h * np.tan(np.radians(9.5))
        return np.average(out.film_m[near], weights=flat.area_faces[near])

    f20 = centre_film(simulate_spray(flat, still(0.020), 5, cfg), 0.020)
    f40 = centre_film(simulate_spray(flat, still(0.040), 5, cfg), 0.040)
    assert f20 / f40 == pytest.approx(4.0, rel=0.05)
    # a nozzle tilted 40 deg about x at the same slant distance spreads the same volume over 1/cos more area
    tilt = np.radians(40.0)
    axis = np.array([0.0, np.sin(tilt), -np.cos(tilt)])
    tip = -axis * STANDOFF_M
    out_t = simulate_spray(flat, still(axis=axis, tip=tuple(tip)), 5, cfg)
    out_n = simulate_spray(flat, still(), 5, cfg)
    ratio = centre_film(out_t, STANDOFF_M) / centre_film(out_n, STANDOFF_M)
    stick = 1.0 - cfg.bounce_loss * (1.0 - np.cos(tilt)) ** 2
    assert ratio == pytest.approx(np.cos(tilt) * stick, rel=0.06)
    assert out_t.deposited_m3 / out_n.deposited_m3 == pytest.approx(stick, rel=0.01)


def test_raster_lays_flow_over_speed_times_spacing():
    cfg = SprayWorldConfig().nominal()
    big = plate(half=0.06, step=1.0e-3)
    v, dy, xs = 0.3, 9.5e-3, np.arange(-0.05, 0.0501, 1e-3)
    xyz, spray = [], []
    for k, y in enumerate(np.arange(-0.038, 0.0381, dy)):
        line = xs if k % 2 == 0 else xs[::-1]
        xyz.append(np.stack([line, np.full_like(line, y), np.full_like(line, STANDOFF_M)], 1))
        spray.append(np.r_[np.ones(len(line) - 1, bool), False])
    xyz = np.vstack(xyz)
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))] / v
    q = nozzle_quaternions(np.tile([0.0, 0.0, -1.0], (len(xyz), 1)), np.array([1.0, 0.0, 0.0]))
    out = simulate_spray(big, SprayPath("upper", t, xyz, q, np.concatenate(spray)), 6, cfg)
    c = big.triangles_center
    inner = (np.abs(c[:, 0]) < 0.03) & (np.abs(c[:, 1]) < 0.025)
    mean = np.average(out.film_m[inner], weights=big.area_faces[inner])
    q_dep = cfg.flow_ml_s * 1e-6 * cfg.transfer_efficiency
    assert mean == pytest.approx(q_dep / (v * dy), rel=RASTER_RTOL)
    assert cfg.covered_m < mean < 0.3e-3  # a layer in FACTS' manual range 0.1-0.3 mm


def test_gun_delays_shift_and_trim_the_stroke(flat):
    on, off, v = 8e-3, 3e-3, 0.2
    cfg = dataclasses.replace(SprayWorldConfig().nominal(), on_delay_s=(on, on), off_delay_s=(off, off))
    x = np.array([-0.03, -0.02, 0.02, 0.03])
    xyz = np.stack([x, np.zeros(4), np.full(4, STANDOFF_M)], 1)
    q = nozzle_quaternions(np.tile([0.0, 0.0, -1.0], (4, 1)), np.array([1.0, 0.0, 0.0]))
    path = SprayPath("upper", (x - x[0]) / v, xyz, q, [False, True, False, False])
    out = simulate_spray(flat, path, 7, cfg)
    ref = simulate_spray(flat, path, 7, SprayWorldConfig().nominal())
    assert out.open_time_s == pytest.approx(0.04 / v - on + off, abs=1e-12)
    assert out.deposited_m3 / ref.deposited_m3 == pytest.approx(out.open_time_s / ref.open_time_s, rel=VOLUME_RTOL)
    shift = moments(flat, out.film_m)[0][0] - moments(flat, ref.film_m)[0][0]
    assert shift == pytest.approx(v * (on + off) / 2, abs=CENTROID_TOL_M)


def test_no_glue_on_faces_hidden_from_the_nozzle(flat):
    # a 10 x 10 mm shield 20 mm below the tip, just beside the axis: its shadow on the plate is
    # x in [2, 12] mm scaled by 35/15 = [4.7, 28] mm, |y| <= 11.7 mm
    zs = 0.015
    shield = plate(half=0.005, step=0.5e-3, z=zs, x0=0.007)
    both = trimesh.util.concatenate([flat, shield])
    cfg = SprayWorldConfig().nominal()
    out = simulate_spray(both, still(), 8, cfg)
    open_ = simulate_spray(flat, still(), 8, cfg)
    c = flat.triangles_center
    k = STANDOFF_M / (STANDOFF_M - zs)
    shadow = ((c[:, 0] > 0.002 * k + SHADOW_MARGIN_M) & (c[:, 0] < 0.012 * k - SHADOW_MARGIN_M)
              & (np.abs(c[:, 1]) < 0.005 * k - SHADOW_MARGIN_M))  # fmt: skip
    n = len(flat.faces)
    assert open_.film_m[shadow].sum() > 0  # without the shield the fan reaches these faces ...
    assert np.all(out.film_m[:n][shadow] == 0.0)  # ... with it they get nothing
    assert out.film_m[n:].max() > cfg.covered_m  # the shield's top takes the glue
    assert out.deposited_m3 == pytest.approx(open_.deposited_m3, rel=VOLUME_RTOL)


def test_gun_off_lays_no_glue(flat):
    p = still()
    off = SprayPath("upper", p.t, p.xyz, p.quat_xyzw, [False, False])
    out = simulate_spray(flat, off, 9)
    assert out.deposited_m3 == 0.0 and out.open_time_s == 0.0 and not np.any(out.faces_hit)
    # a pulse shorter than the valve's delays never opens it
    cfg = dataclasses.replace(SprayWorldConfig().nominal(), on_delay_s=(8e-3, 8e-3), off_delay_s=(2e-3, 2e-3))
    pulse = SprayPath("upper", [0.0, 0.005, 0.01], np.tile([0.0, 0.0, STANDOFF_M], (3, 1)),
                      np.tile(p.quat_xyzw[0], (3, 1)), [True, False, False])  # fmt: skip
    assert simulate_spray(flat, pulse, 9, cfg).deposited_m3 == 0.0
