"""Fast planning, round 2 (issue 15 item 4): the compiled kernels split over two threads
(:mod:`gluecell.pathplan.kernelsplit`), the resampling's one-search interpolation (``geom.interp_rows``) and the
parsed stage parameters kept between tuning rounds give the same plan as the plain code, value for value."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import ConfigError
from gluecell.pathplan import filmkernel, ikkernel, kernelsplit
from gluecell.pathplan.deposition import DepositionParams, film_thickness
from gluecell.pathplan.geom import interp_rows
from gluecell.pathplan.kinematics import fk, ik
from gluecell.pathplan.pipeline import plan_pair
from gluecell.pathplan.stages import build_stage

pytestmark = pytest.mark.skipif(not filmkernel.available(), reason="numba is a dependency; the split needs it")


@pytest.fixture()
def two_cpus(monkeypatch):
    """The split path even where the test machine gives this process one CPU."""
    monkeypatch.setattr(kernelsplit, "_CPUS", 2)


def test_interp_rows_is_np_interp_number_for_number():
    rng = np.random.default_rng(3)
    for _ in range(400):
        k = int(rng.integers(1, 30))
        seg = rng.random(k - 1) * rng.choice([1e-3, 1.0])
        seg[rng.random(k - 1) < 0.2] = 0.0  # repeated waypoints: zero-length segments
        xp = np.concatenate([[0.0], np.cumsum(seg)])
        fp = rng.normal(size=(k, 4))
        if rng.random() < 0.3:
            fp[1:] = fp[:1]  # flat: numpy's rule across zero-length segments
        x = np.r_[np.linspace(0.0, xp[-1], int(rng.integers(1, 50))), xp, xp[-1] + 1.0, -1.0]
        ref = np.column_stack([np.interp(x, xp, fp[:, j]) for j in range(fp.shape[1])])
        assert np.array_equal(interp_rows(x, xp, fp), ref, equal_nan=True)


def test_split_kernels_give_the_same_numbers(two_cpus, clouds, ring_samples):
    u, un, *_ = clouds
    rng = np.random.default_rng(8)
    T = fk(rng.uniform(-np.pi, np.pi, (5000, 6)))
    T[:300, :3, 3] *= 2.5  # some unreachable: NaN rows
    with kernelsplit.plain():
        ref_ik = ik(T)
    assert kernelsplit.enabled(len(T), ikkernel.SPLIT_MIN_POSES)
    assert np.array_equal(ik(T), ref_ik, equal_nan=True)

    # a ring pass round the synthetic upper, sprayed from 35 mm: film (by label) and the standoff ray cast
    samples = ring_samples(u, 400, 8.0)
    with kernelsplit.plain():
        ref = film_thickness(samples, u, un, DepositionParams(), n_labels=3)
    assert kernelsplit.enabled(len(u), filmkernel.SPLIT_MIN_POINTS)
    new = film_thickness(samples, u, un, DepositionParams(), n_labels=3)
    assert (ref > 0).sum() > 1000  # the pass wets the part
    assert np.array_equal(new, ref)


def test_the_fast_plan_is_the_plain_plan(two_cpus, clouds):
    u, un, s, sn, line = clouds
    with kernelsplit.plain():
        ref = plan_pair(u, s, line, upper_normals=un, sole_normals=sn, parallel=False)
    new = plan_pair(u, s, line, upper_normals=un, sole_normals=sn, parallel=False)
    for part in ("upper", "sole"):
        assert len(new.paths[part].xyz) > 100
        assert np.array_equal(new.paths[part].xyz, ref.paths[part].xyz)
        assert np.array_equal(new.paths[part].t, ref.paths[part].t)
        assert np.array_equal(new.programs[part].q, ref.programs[part].q)
        assert np.array_equal(new.parts[part].film, ref.parts[part].film)
        assert new.metrics[part] == ref.metrics[part]


def test_kept_stage_parameters_still_check_types():
    a = build_stage({"name": "resample", "spacing_mm": 2.0}, kind="modifier")
    b = build_stage({"name": "resample", "spacing_mm": 2.0}, kind="modifier")
    assert a.params is b.params and a is not b  # parsed once, a fresh stage each time
    with pytest.raises(ConfigError):
        build_stage({"name": "resample", "spacing_mm": True}, kind="modifier")  # a bool is no number
    with pytest.raises(ConfigError):
        build_stage({"name": "resample", "spacing_mm": -1.0}, kind="modifier")


def test_a_forked_child_gets_its_own_helper_threads(two_cpus):
    import multiprocessing

    kernelsplit.run_halves(lambda a, b: None, 10)  # the parent's pool exists before the fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:  # a child whose inherited pool has no threads would wait forever here
        res = pool.apply_async(_halves_in_child)
        assert res.get(timeout=30) == list(range(4000))


def _halves_in_child() -> list[int]:
    out = np.zeros(4000, dtype=np.int64)

    def fill(a: int, b: int) -> None:
        out[a:b] = np.arange(a, b)

    kernelsplit.run_halves(fill, len(out))
    return out.tolist()


@pytest.mark.skipif(kernelsplit._CPUS < 2, reason="the split is for 2+ CPUs; with one nothing is split anywhere")
def test_the_warm_worker_runs_its_kernels_whole():
    from gluecell.pathplan import workers

    workers.start()
    try:
        assert workers.wait_ready(90.0), "the plan worker did not warm up"
        fut = workers.submit(kernelsplit.enabled, 10**6, 1)
        assert fut is not None and fut.result(timeout=30) is False  # the sole's kernels: whole
        assert kernelsplit.enabled(10**6, 1)  # the caller's (the upper's): split
    finally:
        workers.stop()
