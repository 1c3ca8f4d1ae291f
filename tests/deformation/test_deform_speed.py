"""The deformation step's faster paths give the results of the plain ones (issue 14's latency goal)."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.deformation import profiles


def _same_sections(a, b) -> None:
    """Every array field of two section records equal (NaN where the other is NaN, else within 1e-9 m)."""
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if not isinstance(x, np.ndarray):
            continue
        if x.dtype == bool:
            assert np.array_equal(x, y), name
            continue
        assert np.array_equal(np.isfinite(x), np.isfinite(y)), name
        fin = np.isfinite(x)
        assert np.allclose(x[fin], y[fin], rtol=0, atol=1e-9), name


def _both(monkeypatch, fn, *args):
    out = []
    for vec in (False, True):
        monkeypatch.setattr(profiles, "VECTORISED", vec)
        out.append(fn(*args))
    return out


@pytest.mark.parametrize("compiled", [False, True])  # numpy's passes (profiles_vec) and the compiled loops
def test_vectorised_sections_equal_the_per_wedge_rules(monkeypatch, flat_pair, rough_pair, compiled) -> None:
    monkeypatch.setattr(profiles, "COMPILED", compiled)
    for up, so in ((flat_pair[0], flat_pair[1]), rough_pair):
        ref_u, vec_u = _both(monkeypatch, profiles.upper_sections, up.points, up.normals, 128)
        assert ref_u.valid.sum() > 100 and ref_u.full.sum() > 50
        _same_sections(ref_u, vec_u)
        ref_s, vec_s = _both(monkeypatch, profiles.sole_sections, so.points, so.normals, 128)
        assert ref_s.valid.sum() > 100
        _same_sections(ref_s, vec_s)


@pytest.mark.parametrize("compiled", [False, True])
def test_vectorised_sections_drop_the_same_thin_wedges(monkeypatch, flat_pair, compiled) -> None:
    """Half the upper's points gone on one side: the stations there fail the same way in both."""
    monkeypatch.setattr(profiles, "COMPILED", compiled)
    up = flat_pair[0]
    keep = up.points[:, 1] > np.median(up.points[:, 1]) - 0.01
    pts, nrm = up.points[keep][::3], up.normals[keep][::3]
    ref_u, vec_u = _both(monkeypatch, profiles.upper_sections, pts, nrm, 128)
    assert 0 < ref_u.valid.sum() < 128
    _same_sections(ref_u, vec_u)


@pytest.fixture(scope="module")
def refs(geom):
    """Nominal upper and sole of the flat pair's style, placed a little off the scans (references are registered)."""
    up_mesh, so_mesh = geom.make_upper(yaw_deg=3.0), geom.make_sole(height=0.02, yaw_deg=-2.0)
    up_mesh.apply_translation([0.003, -0.002, 0.0])
    so_mesh.apply_translation([-0.002, 0.003, 0.0])
    up = geom.scan_mesh(up_mesh, "upper", n=40000, noise=0.0, seed=11, min_nz=-2.0)
    so = geom.scan_mesh(so_mesh, "sole", n=40000, noise=0.0, seed=12, min_nz=-2.0)
    return (up.points, up.normals), (so.points, so.normals)


def _predict_both_ways(monkeypatch, upper, sole, **kw):
    from gluecell.deformation import parallel
    from gluecell.deformation.predict import predict_attach

    out = []
    for enabled in (False, True):
        monkeypatch.setattr(parallel, "ENABLED", enabled)
        try:
            out.append(predict_attach(upper, sole, check_confidence=False, **kw))
        except Exception as exc:  # the same error either way is what is checked
            out.append(exc)
    return out


def _same_prediction(a, b) -> None:
    """Line, sigma, bond regions and deformed sole bit-equal (the thread runs the same functions on the same data)."""
    for name in ("bite_line", "bite_line_sigma", "upper_bond", "sole_bond", "deformed_sole"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_sole_in_a_second_thread_gives_the_same_prediction(monkeypatch, flat_pair, refs) -> None:
    serial, threaded = _predict_both_ways(monkeypatch, flat_pair[0], flat_pair[1], reference=refs[0],
                                          sole_reference=refs[1])  # fmt: skip
    _same_prediction(serial, threaded)
    assert len(serial.deformed_sole) == len(flat_pair[1].points) and serial.upper_bond.shape[1] == 3
    assert serial.diagnostics["reference_rms_m"] < 1e-3  # the references were used
    assert serial.diagnostics["reference_rms_m"] == threaded.diagnostics["reference_rms_m"]
    # without references the thread sections the sole's scan alone (and lays the bonds): the same again
    serial, threaded = _predict_both_ways(monkeypatch, flat_pair[0], flat_pair[1])
    _same_prediction(serial, threaded)
    assert "reference_rms_m" not in serial.diagnostics or serial.diagnostics["reference_rms_m"] is None


def test_scan_sections_from_the_thread_are_only_used_for_the_same_arrays(flat_pair) -> None:
    from dataclasses import replace

    from gluecell.deformation import parallel
    from gluecell.deformation.inputs import scan_sole_sections

    sole = flat_pair[1]
    fresh = profiles.sole_sections(sole.points, sole.normals, 128)
    with parallel.sole_prefetch(sole, 128, None, enabled=True):
        got = parallel.lookup_scan_sections(sole.points, sole.normals, 128)
        assert got is not parallel.MISS
        _same_sections(got, fresh)
        assert np.array_equal(got.frame.centre, fresh.frame.centre) and np.array_equal(got.frame.u, fresh.frame.u)
        assert scan_sole_sections(sole, 128) is got
        assert parallel.lookup_scan_sections(sole.points.copy(), sole.normals, 128) is parallel.MISS
        assert parallel.lookup_scan_sections(sole.points, sole.normals, 64) is parallel.MISS
        other = replace(sole, normals=sole.normals.copy())
        assert scan_sole_sections(other, 128) is not got  # computed here instead
        _same_sections(scan_sole_sections(other, 128), fresh)
    assert parallel.lookup_scan_sections(sole.points, sole.normals, 128) is parallel.MISS  # gone after the block


def test_work_beside_returns_or_raises_as_a_plain_call() -> None:
    from gluecell.deformation import parallel

    def f(x: float) -> float:
        if x < 0:
            raise ValueError("negative")
        return float(np.sqrt(x))

    for enabled in (False, True):
        assert parallel.beside(f, 4.0, enabled=enabled).result() == 2.0
        with pytest.raises(ValueError, match="negative"):
            parallel.beside(f, -1.0, enabled=enabled).result()


def test_sole_in_a_second_thread_raises_the_same_errors(monkeypatch, flat_pair, geom, refs) -> None:
    from gluecell.deformation.errors import SoleUpsideDownError

    flipped = geom.scan_mesh(geom.make_sole(upside_down=True), "sole", seed=6)
    serial, threaded = _predict_both_ways(monkeypatch, flat_pair[0], flipped, sole_reference=refs[1])
    assert isinstance(serial, SoleUpsideDownError) and type(threaded) is type(serial)
    # a bad upper is reported first, as before, although the sole's chain ran beside it
    bad_upper = flat_pair[0].__class__(part="upper", points=flat_pair[0].points[::40],
                                       normals=flat_pair[0].normals[::40])  # fmt: skip
    serial, threaded = _predict_both_ways(monkeypatch, bad_upper, flipped, reference=refs[0])
    assert type(serial) is type(threaded) and not isinstance(serial, SoleUpsideDownError)


def test_prefetched_reference_is_only_used_for_the_same_objects(flat_pair, refs) -> None:
    from dataclasses import replace

    from gluecell.deformation import parallel
    from gluecell.deformation.sections import outline_frame
    from gluecell.deformation.sole_reference import reference_sections

    sole = flat_pair[1]
    ss = profiles.sole_sections(sole.points, sole.normals, 128)
    fresh = reference_sections(sole, *refs[1], ss.frame, 128)
    with parallel.sole_prefetch(sole, 128, refs[1], enabled=True):
        got = parallel.lookup_reference_sections(sole, ss, *refs[1])
        assert got is not parallel.MISS and got[1] == fresh[1]
        _same_sections(got[0], fresh[0])
        other_ref = (refs[1][0].copy(), refs[1][1])
        assert parallel.lookup_reference_sections(sole, ss, *other_ref) is parallel.MISS
        other_scan = replace(sole, points=sole.points.copy())
        assert parallel.lookup_reference_sections(other_scan, ss, *refs[1]) is parallel.MISS
        shifted = replace(ss, frame=outline_frame(sole.points[::2]))  # sections in another frame
        assert parallel.lookup_reference_sections(sole, shifted, *refs[1]) is parallel.MISS
    assert parallel.lookup_reference_sections(sole, ss, *refs[1]) is parallel.MISS  # gone after the block


def test_reference_cache_is_keyed_by_the_arrays_themselves(refs) -> None:
    from gluecell.deformation import refcache
    from gluecell.deformation.reference import seen_sample

    pts, nrm = refs[0]
    e = refcache.reference_entry(pts, nrm)
    assert refcache.reference_entry(pts, nrm) is e
    assert refcache.reference_entry(pts.copy(), nrm) is not e  # equal values, another array: another entry
    assert np.array_equal(e.seen(8000), seen_sample(pts, nrm))
    assert refcache.reference_entry(*refs[1]) is not e
    assert e.get("x", lambda: 1) == 1 and e.get("x", lambda: 2) == 1  # made once


def test_moved_reference_tree_answers_as_a_tree_of_the_moved_points(refs) -> None:
    from scipy.spatial import cKDTree

    from gluecell.deformation import refcache
    from gluecell.deformation.reference import apply_T

    pts, nrm = refs[0]
    c, s = np.cos(0.3), np.sin(0.3)
    T = np.array([[c, -s, 0.0, 0.01], [s, c, 0.0, -0.02], [0.0, 0.0, 1.0, 0.005], [0, 0, 0, 1.0]])
    moved = apply_T(T, pts)
    assert refcache.moved_tree(moved) is None  # not registered
    refcache.remember_moved(moved, refcache.reference_entry(pts, nrm), T)
    q = moved[::97] + np.random.default_rng(0).normal(0, 1e-3, size=(len(moved[::97]), 3))
    d0, i0 = cKDTree(moved).query(q, k=24)
    d1, i1 = refcache.moved_tree(moved).query(q, k=24)
    assert np.array_equal(i0, i1) and np.allclose(d0, d1, rtol=0, atol=1e-15)
    assert refcache.moved_tree(moved.copy()) is None


def test_cached_references_give_the_fresh_prediction(monkeypatch, flat_pair, refs, geom) -> None:
    """A second pair of the style reuses the cache; a different reference is not served from the first one's."""
    from gluecell.deformation import refcache
    from gluecell.deformation.predict import predict_attach

    def run(up_ref, so_ref):
        return predict_attach(flat_pair[0], flat_pair[1], reference=up_ref, sole_reference=so_ref,
                              check_confidence=False).bite_line  # fmt: skip

    refcache.clear()
    first = run(*refs)
    again = run(*refs)  # from the cache
    assert np.array_equal(first, again)
    other_mesh = geom.make_upper(yaw_deg=-4.0, toe_spring=0.01)
    other = geom.scan_mesh(other_mesh, "upper", n=40000, noise=0.0, seed=13, min_nz=-2.0)
    cached_other = run((other.points, other.normals), refs[1])
    refcache.clear()
    fresh_other = run((other.points, other.normals), refs[1])
    assert np.array_equal(cached_other, fresh_other)
    # the other reference did change the line (so a cache serving the first one's would be caught)
    assert cached_other.shape != first.shape or not np.allclose(cached_other, first, atol=1e-5)


def test_wedge_index_lays_the_wedges_end_to_end() -> None:
    from gluecell.deformation.sections import wedge_index, wedge_members

    rng = np.random.default_rng(0)
    edges = np.array([-np.pi, -np.pi + 1e-9, 0.0, 0.0, np.pi - 1e-9])  # both wraps and ties
    for n in (128, 7):
        theta = np.concatenate([rng.uniform(-np.pi, np.pi, 5000), edges])
        members = wedge_members(theta, n, 2.5)
        idx, sizes = wedge_index(theta, n, 2.5)
        assert np.array_equal(sizes, [len(m) for m in members])
        assert np.array_equal(idx, np.concatenate(members))


def test_latency_tool_times_the_cells_prediction_and_compares_lines(flat_pair, refs, tmp_path) -> None:
    from gluecell.cell.bench.deform_latency import _summary, compare_lines, time_pairs

    pair = {"id": "p", "style": "sneaker", "upper": flat_pair[0], "sole": flat_pair[1], "reference": refs[0],
            "sole_reference": refs[1]}  # fmt: skip
    res = time_pairs([pair], repeat=2)
    assert len(res["ms"]["p"]) == 2 and min(res["ms"]["p"]) > 0 and min(res["cpu_ms"]["p"]) > 0
    summary = _summary(res["ms"])
    assert summary["deform_cell_pairs"] == 1 and summary["deform_cell_latency_p95_ms"] >= min(res["ms"]["p"])
    line, sigma = res["lines"]["p"]
    np.savez(tmp_path / "lines.npz", **{"p/line": line, "p/sigma": sigma})
    assert compare_lines(res["lines"], tmp_path / "lines.npz")["p"] == (0.0, 0.0)
    moved = {"p": (line + np.array([0.0, 0.0, 1e-4]), sigma)}
    assert compare_lines(moved, tmp_path / "lines.npz")["p"][0] == pytest.approx(0.1, abs=0.01)
    from gluecell.deformation import parallel

    serial = time_pairs([pair], repeat=1, serial=True)  # without the second thread: the same line
    assert compare_lines(serial["lines"], tmp_path / "lines.npz")["p"] == (0.0, 0.0) and parallel.ENABLED


def _cloud(seed: int, n: int = 6000) -> np.ndarray:
    """Points on a wavy sheet ~1 mm apart with a few strays, like a scan's surface."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform([0.4, -0.3], [0.7, -0.1], size=(n, 2))
    z = 0.1 + 0.01 * np.sin(xy[:, 0] * 40) + 0.005 * np.cos(xy[:, 1] * 30)
    pts = np.column_stack([xy, z])
    pts[:20] += rng.normal(0, 0.02, size=(20, 3))
    return pts


@pytest.mark.parametrize("lim", [0.05, 0.01, 0.002])
def test_grid_neighbours_are_the_kd_trees(lim) -> None:
    """The compiled grid search finds the KD-tree's neighbour of every query, with or without a first candidate
    (right, stale, far or none) and with the ring search cut short (rows left to the KD-tree say so)."""
    from scipy.spatial import cKDTree

    from gluecell.deformation import icpkernel

    assert icpkernel.available()
    dst = _cloud(1)
    rng = np.random.default_rng(2)
    x = dst[rng.integers(0, len(dst), 3000)] + rng.normal(0, 3e-3, size=(3000, 3))
    x[:50] += rng.normal(0, 0.05, size=(50, 3))  # far from the sheet: beyond the bound or nearly
    d0, j0 = cKDTree(dst).query(x, distance_upper_bound=lim)
    grid = icpkernel.build_grid(dst)
    prev = np.where(rng.uniform(size=len(x)) < 0.3, rng.integers(0, len(dst), len(x)), j0)  # some stale
    prev[::7] = len(dst)  # none
    for p in (None, prev):
        d, j = icpkernel.nearest(grid, x, lim, p)
        assert np.array_equal(j, j0)
        assert np.array_equal(np.isinf(d), np.isinf(d0)) and np.allclose(d[np.isfinite(d)], d0[np.isfinite(d0)],
                                                                          rtol=0, atol=1e-15)  # fmt: skip
        d, j = icpkernel.nearest(grid, x, lim, p, rings=1)
        asked = j < 0  # not found within one ring of cells: the caller asks the KD-tree
        assert np.array_equal(j[~asked], j0[~asked]) and np.all(np.isinf(d[asked]))
        assert np.all(d0[asked] > icpkernel.CELL)  # only rows whose neighbour lies beyond the first ring


def test_normal_equations_are_the_lstsq_rows() -> None:
    from gluecell.deformation import icpkernel

    rng = np.random.default_rng(3)
    x, dst = rng.normal(size=(500, 3)), rng.normal(size=(400, 3))
    nrm = rng.normal(size=(400, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    j, ok = rng.integers(0, 400, 500), rng.uniform(size=500) < 0.8
    AtA, Atb, ss = icpkernel.normal_equations(x, j, dst, nrm, ok)
    p, q, n = x[ok], dst[j[ok]], nrm[j[ok]]
    A, b = np.column_stack([np.cross(p, n), n]), np.sum((q - p) * n, axis=1)
    assert np.allclose(AtA, A.T @ A, rtol=1e-12, atol=1e-12) and np.allclose(Atb, A.T @ b, rtol=1e-12, atol=1e-12)
    assert ss == pytest.approx(float(b @ b), rel=1e-12)


def _icp_both(monkeypatch, src, scan):
    from gluecell.deformation import reference

    out = []
    for compiled in (False, True):
        monkeypatch.setattr(reference, "COMPILED", compiled)
        out.append(reference.rigid_icp(src, scan.points, scan.normals))
    return out


def test_compiled_icp_reaches_the_kd_tree_pose(monkeypatch, flat_pair, rough_pair, refs) -> None:
    from gluecell.deformation.reference import apply_T, seen_sample

    for (scan, ref) in ((flat_pair[0], refs[0]), (flat_pair[1], refs[1]), (rough_pair[0], refs[0])):
        src = seen_sample(*ref)
        (T0, rms0), (T1, rms1) = _icp_both(monkeypatch, src, scan)
        assert rms0 < 2e-3  # registered
        assert np.abs(apply_T(T0, src) - apply_T(T1, src)).max() < 1e-12  # the same steps to the same pose
        assert rms1 == pytest.approx(rms0, rel=1e-9)


def test_trimmed_sole_sections_are_those_of_all_points(monkeypatch, refs, flat_pair) -> None:
    from gluecell.deformation import profiles_vec

    monkeypatch.setattr(profiles, "COMPILED", False)  # the numpy passes (the compiled loops measure every point)
    pts, nrm = refs[1]  # a reference sampled all round: its tread faces down
    frame = profiles.outline_frame(flat_pair[1].points)
    z_tray = float(np.percentile(pts[:, 2], 0.5))
    assert profiles_vec.trimmed_sole(frame, pts, nrm, 128, z_tray, profiles._constants()) is not None  # taken
    out = []
    for trim in (False, True):
        monkeypatch.setattr(profiles, "TRIM", trim)
        out.append(profiles.sole_sections(pts, nrm, 128, frame=frame))
    assert out[0].valid.sum() > 100
    _same_sections(out[0], out[1])
    for name in ("height", "rim", "corner"):
        assert np.array_equal(getattr(out[0], name), getattr(out[1], name), equal_nan=True), name


def test_trimmed_sole_measures_all_points_when_a_dropped_one_would_count(monkeypatch, refs) -> None:
    """Rim points given normals facing down would still enter the rim rule: the trimmed path must refuse and
    the sections stay those of all the points."""
    from gluecell.deformation import profiles_vec

    monkeypatch.setattr(profiles, "COMPILED", False)  # the numpy passes
    pts, nrm = refs[1]
    nrm = nrm.copy()
    z_tray = float(np.percentile(pts[:, 2], 0.5))
    top = pts[:, 2] > pts[:, 2].max() - 1e-3  # the rim's top
    assert top.sum() > 500
    nrm[top] = [0.0, 0.0, -1.0]
    frame = profiles.outline_frame(pts)
    assert profiles_vec.trimmed_sole(frame, pts, nrm, 128, z_tray, profiles._constants()) is None
    out = []
    for trim in (False, True):
        monkeypatch.setattr(profiles, "TRIM", trim)
        out.append(profiles.sole_sections(pts, nrm, 128, frame=frame))
    _same_sections(out[0], out[1])


def test_fast_paths_give_the_plain_prediction(monkeypatch, flat_pair, refs) -> None:
    from gluecell.deformation import reference, solver
    from gluecell.deformation.predict import predict_attach

    out = []
    for fast in (False, True):
        monkeypatch.setattr(reference, "COMPILED", fast)
        monkeypatch.setattr(profiles, "TRIM", fast)
        monkeypatch.setattr(profiles, "COMPILED", fast)
        monkeypatch.setattr(solver, "BATCHED", fast)
        out.append(predict_attach(flat_pair[0], flat_pair[1], reference=refs[0], sole_reference=refs[1],
                                  check_confidence=False))  # fmt: skip
    # the ICP's 6x6 solve rounds differently from lstsq (poses within ~1e-15 m): lines equal to far below a um
    print("line moved", np.abs(out[0].bite_line - out[1].bite_line).max())
    assert out[0].bite_line.shape == out[1].bite_line.shape
    assert np.allclose(out[0].bite_line, out[1].bite_line, rtol=0, atol=1e-9)
    assert np.allclose(out[0].bite_line_sigma, out[1].bite_line_sigma, rtol=0, atol=1e-9)


def test_batched_side_fits_are_the_per_station_fits(monkeypatch) -> None:
    """Sides of varied shape, with gaps, short and missing profiles: the same offsets (or NaN where the per-station
    fit raises) whatever the depth asked."""
    from gluecell.deformation import solver

    rng = np.random.default_rng(4)
    d = (np.arange(profiles.N_DEPTH_BINS) + 0.5) * profiles.DEPTH_BIN
    prof = 0.002 + 0.1 * d[None, :] * rng.uniform(0.5, 2, (200, 1)) - 3 * d[None, :] ** 2 * rng.uniform(0, 1, (200, 1))
    prof += rng.normal(0, 1e-4, prof.shape)
    prof[rng.uniform(size=prof.shape) < 0.2] = np.nan  # gaps
    prof[::9, 20:] = np.nan  # sides seen only 20 mm deep
    prof[::13] = np.nan  # nothing
    depths = rng.uniform(0.0, 0.075, 200)
    out = []
    for batched in (False, True):
        monkeypatch.setattr(solver, "BATCHED", batched)
        out.append(solver.station_sides(prof, depths))
    assert 20 < np.isnan(out[0]).sum() < 150  # both kinds of station are in
    assert np.array_equal(np.isnan(out[0]), np.isnan(out[1]))
    assert np.allclose(out[0], out[1], rtol=0, atol=1e-14, equal_nan=True)


def test_grid_of_a_scan_with_a_stray_point_stays_small(monkeypatch, flat_pair, refs) -> None:
    """A point metres off the scan coarsens the grid instead of allocating billions of cells; the neighbours and
    the ICP's pose are still the KD-tree's."""
    from scipy.spatial import cKDTree

    from gluecell.deformation import icpkernel
    from gluecell.deformation.reference import apply_T, seen_sample

    scan = flat_pair[0]
    stray = scan.__class__(part="upper", points=np.vstack([scan.points, [[5.0, 3.0, -2.0]]]),
                           normals=np.vstack([scan.normals, [[0.0, 0.0, 1.0]]]))  # fmt: skip
    grid = icpkernel.build_grid(stray.points)
    assert len(grid.start) <= 1.1 * icpkernel.MAX_CELLS and grid.cell > icpkernel.MAX_CELL
    x = scan.points[::50] + 1e-3
    _, j0 = cKDTree(stray.points).query(x, distance_upper_bound=0.01)
    assert np.array_equal(icpkernel.nearest(grid, x, 0.01)[1], j0)
    src = seen_sample(*refs[0])
    (T0, _), (T1, _) = _icp_both(monkeypatch, src, stray)
    assert np.abs(apply_T(T0, src) - apply_T(T1, src)).max() < 1e-12
    with pytest.raises(ValueError):
        icpkernel.build_grid(np.array([[0.0, 0.0, np.nan], [1.0, 0.0, 0.0]]))


def test_stage_summary_splits_the_profiled_prediction(monkeypatch, flat_pair, refs) -> None:
    import cProfile
    import pstats
    import time

    from gluecell.cell.bench.deform_latency import STAGES, predict_cell, stage_summary
    from gluecell.deformation import parallel

    monkeypatch.setattr(parallel, "ENABLED", False)  # cProfile sees one thread (as the tool's --profile)

    pair = {"id": "p", "style": "sneaker", "upper": flat_pair[0], "sole": flat_pair[1], "reference": refs[0],
            "sole_reference": refs[1]}  # fmt: skip
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    predict_cell(pair, None)
    prof.disable()
    got = stage_summary(pstats.Stats(prof), 1)
    assert set(got) == {"total", "rest", *STAGES} - {"predict_attach"}
    assert got["total"] > 0 and got["rigid_icp"] > 0 and got["upper_sections"] > 0 and got["sole_sections"] > 0
    assert sum(v for k, v in got.items() if k != "total") == pytest.approx(got["total"], abs=0.1 * len(got))


def test_scan_checks_beside_raise_first_and_alike(monkeypatch, flat_pair, geom, refs) -> None:
    """With references, the raw upper's and the sole's checks run in the sole's thread: the same errors, the
    upper's before the sole's and before anything its registration would raise."""
    from gluecell.deformation import parallel
    from gluecell.deformation.errors import NotAnUpperError, NotASoleError
    from gluecell.deformation.inputs import check_sole_shape, check_upper_scan, checked

    up, so = flat_pair[0], flat_pair[1]
    plate = so.__class__(part="sole", points=so.points * [1.0, 1.0, 0.05], normals=so.normals)  # 1-2 mm tall
    flat_upper = up.__class__(part="upper", points=up.points * [1.0, 1.0, 0.05], normals=up.normals)
    for upper, sole, err in ((up, plate, NotASoleError), (flat_upper, plate, NotAnUpperError),
                             (flat_upper, so, NotAnUpperError)):  # fmt: skip
        serial, threaded = _predict_both_ways(monkeypatch, upper, sole, reference=refs[0], sole_reference=refs[1])
        assert isinstance(serial, err) and type(threaded) is type(serial) and str(threaded) == str(serial)
    with parallel.sole_prefetch(plate, 128, refs[1], enabled=True, upper=up):
        assert parallel.lookup_check("upper", up) is not parallel.MISS
        assert parallel.lookup_check("upper", flat_upper) is parallel.MISS  # another object: checked here
        checked(check_upper_scan, "upper", up)  # the worker's check passed
        with pytest.raises(NotASoleError):
            checked(check_sole_shape, "sole", plate)
    with parallel.sole_prefetch(so, 128, refs[1], enabled=True):  # no upper given: no checks beside
        assert parallel.lookup_check("sole", so) is parallel.MISS


def test_thread_split_accounts_for_both_threads(flat_pair, refs) -> None:
    from gluecell.cell.bench.deform_latency import thread_split
    from gluecell.deformation import inputs, parallel, predict

    before = (parallel._sole_chain, predict.sole_bonds_and_deformed, predict.upper_bond_region,
              inputs.blend_with_reference)
    pair = {"id": "p", "style": "sneaker", "upper": flat_pair[0], "sole": flat_pair[1], "reference": refs[0],
            "sole_reference": refs[1]}  # fmt: skip
    got = thread_split([pair], repeat=1)
    assert all(got[k] > 0 for k in ("calling_before", "calling_after", "sole_before", "sole_after"))
    assert got["critical_ms"] == pytest.approx(max(got["calling_before"], got["sole_before"])
                                               + max(got["calling_after"], got["sole_after"]), abs=0.11)  # fmt: skip
    assert (parallel._sole_chain, predict.sole_bonds_and_deformed, predict.upper_bond_region,
            inputs.blend_with_reference) == before  # restored
