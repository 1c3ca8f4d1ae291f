"""Registration: a known placement is recovered from a noisy partial scan, a wrong part is
rejected with an actionable message, and no reference means no registration."""

import numpy as np
import pytest

from gluecell.perception.registration import (
    Reference,
    RegistrationConfig,
    RegistrationError,
    RegistrationRejected,
    pose_error,
    reference_from_mesh,
    register,
    register_optional,
    station_init,
)

#: Goal of the brief for a known transform on noisy points.
TRANS_TOL_MM = 0.3
ROT_TOL_DEG = 0.2
#: Depth-like noise on the scan points (metres): D405 at ~0.2-0.3 m (FACTS.md).
NOISE_M = 0.0003


def last_like_mesh() -> tuple[np.ndarray, np.ndarray]:
    """A closed, elongated, asymmetric shoe-last-like surface, 0.26 x ~0.09 x ~0.08 m.

    An ellipsoid tapered towards the heel, with toe spring and a sideways (left-foot) curve, so
    that no rotation maps it onto itself.
    """
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    v = np.asarray(m.vertices).copy()
    x = v[:, 0]
    v[:, 1] *= 0.045 * (0.8 + 0.2 * x)  # wider at the toe (+x)
    v[:, 2] *= 0.04
    v[:, 2] += 0.012 * x**2 * (x > 0)  # toe spring
    v[:, 1] += 0.01 * x**2  # inside curve
    v[:, 0] *= 0.13
    return v, np.asarray(m.faces)


def placement(yaw_deg: float, xyz) -> np.ndarray:
    a = np.radians(yaw_deg)
    T = np.eye(4)
    T[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    T[:3, 3] = xyz
    return T


def partial_noisy_scan(ref: Reference, T_base_ref: np.ndarray, rng, noise_m=NOISE_M) -> np.ndarray:
    """What cameras above the station see: points facing up or sideways, with depth noise.

    ``ref`` here is a dense sampling of the true surface drawn with another seed than the
    reference the scan is registered to, so that scan and reference share no sample points.
    """
    p = ref.points @ T_base_ref[:3, :3].T + T_base_ref[:3, 3]
    n = ref.normals @ T_base_ref[:3, :3].T
    seen = n[:, 2] > -0.2
    p, n = p[seen], n[seen]
    sub = rng.choice(len(p), size=min(30000, len(p)), replace=False)
    return p[sub] + n[sub] * rng.normal(0.0, noise_m, (len(sub), 1))


@pytest.fixture(scope="module")
def surface() -> Reference:
    """Dense samples of the true surface that scans are drawn from (seed differs from the reference)."""
    v, f = last_like_mesh()
    return reference_from_mesh(v, f, spacing_m=0.001, seed=123)


@pytest.fixture(scope="module")
def reference() -> Reference:
    v, f = last_like_mesh()
    return reference_from_mesh(v, f, seed=0, name="style 'test-last'")


def test_recovers_known_transform_from_noisy_partial_scan(reference, surface):
    rng = np.random.default_rng(0)
    T_true = placement(12.0, [0.553, -0.196, 0.12])
    scan = partial_noisy_scan(surface, T_true, rng)
    res = register(scan, reference)
    mm, deg = pose_error(res.T_base_ref, T_true, reference.points)
    assert mm < TRANS_TOL_MM, mm
    assert deg < ROT_TOL_DEG, deg
    assert res.fitness > 0.95
    assert res.rmse_m < 2 * NOISE_M
    assert res.method == "fpfh"


@pytest.mark.parametrize(("part", "flip"), [("upper", True), ("sole", False)])
def test_station_prior_registers_a_part_on_its_station(reference, surface, part, flip):
    rng = np.random.default_rng(5)
    T_true = placement(-11.0, [0.548, -0.204, 0.16 if flip else 0.02])
    if flip:  # an upper lies bottom-up: its part frame is turned 180 deg about x
        T_true = T_true @ np.diag([1.0, -1.0, -1.0, 1.0])
    scan = partial_noisy_scan(surface, T_true, rng)
    init = station_init(part, scan, reference)
    assert pose_error(init, T_true)[1] < 15.0  # the prior is right up to the yaw the station allows
    res = register(scan, reference, init=init)
    mm, deg = pose_error(res.T_base_ref, T_true, reference.points)
    assert mm < TRANS_TOL_MM and deg < ROT_TOL_DEG, (mm, deg)
    assert res.method == "init"
    with pytest.raises(RegistrationError, match="part must be"):
        station_init("heel", scan, reference)


def test_pca_coarse_recovers_a_complete_scan(reference, surface):
    rng = np.random.default_rng(1)
    T_true = placement(-170.0, [0.5, 0.2, 0.05])
    p = surface.points @ T_true[:3, :3].T + T_true[:3, 3]
    n = min(10000, len(p))
    scan = p[rng.choice(len(p), n, replace=False)] + rng.normal(0.0, NOISE_M, (n, 3))
    res = register(scan, reference, RegistrationConfig(coarse="pca"))
    mm, deg = pose_error(res.T_base_ref, T_true, reference.points)
    assert mm < TRANS_TOL_MM and deg < ROT_TOL_DEG, (mm, deg)


def test_init_only_needs_an_init(reference, surface):
    rng = np.random.default_rng(2)
    T_true = placement(5.0, [0.55, -0.2, 0.1])
    scan = partial_noisy_scan(surface, T_true, rng)
    res = register(scan, reference, RegistrationConfig(coarse="init"), init=placement(0.0, [0.55, -0.2, 0.1]))
    assert pose_error(res.T_base_ref, T_true, reference.points)[0] < TRANS_TOL_MM
    with pytest.raises(RegistrationError, match="needs an initial transform"):
        register(scan, reference, RegistrationConfig(coarse="init"))


def test_wrong_part_is_rejected_with_an_actionable_message(reference):
    import trimesh

    rng = np.random.default_rng(3)
    # a different shape on the fixture: a box of about the same size
    box = trimesh.creation.box(extents=(0.26, 0.09, 0.08))
    other = reference_from_mesh(box.vertices, box.faces, seed=1)
    scan = partial_noisy_scan(other, placement(0.0, [0.55, -0.2, 0.1]), rng)
    cfg = RegistrationConfig()
    with pytest.raises(RegistrationRejected) as info:
        register(scan, reference, cfg, init=station_init("sole", scan, reference))
    err = info.value
    assert err.diagnostics["fitness"] < cfg.min_fitness or err.diagnostics["rmse_m"] > cfg.max_rmse_m
    msg = str(err)
    assert "test-last" in msg and "rescan" in msg
    assert f"< {cfg.min_fitness:.2f}" in msg or "mm >" in msg
    assert err.partial is not None and err.partial.T_base_ref.shape == (4, 4)


def test_no_reference_means_no_registration_and_tiny_scans_are_refused(reference, surface):
    rng = np.random.default_rng(4)
    scan = partial_noisy_scan(surface, placement(0.0, [0.55, -0.2, 0.1]), rng)
    assert register_optional(scan, None) is None
    assert register_optional(scan, reference) is not None
    with pytest.raises(RegistrationError, match="needs >= 200"):
        register(scan[:50], reference)


def test_pose_error_measures_what_it_says():
    T = placement(0.0, [0.0, 0.0, 0.0])
    U = placement(1.0, [0.001, 0.0, 0.0])
    mm, deg = pose_error(U, T)
    assert mm == pytest.approx(1.0) and deg == pytest.approx(1.0)
    pts = np.array([[0.1, 0.0, 0.0]])
    mm_pts, _ = pose_error(placement(0.0, [0.0, 0.002, 0.0]), T, pts)
    assert mm_pts == pytest.approx(2.0)
    with pytest.raises(ValueError):
        RegistrationConfig(coarse="magic")
