"""Measurement fixes behind the bite-line accuracy: footbed plane, reference surface, learnt sigma."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.deformation import profiles
from gluecell.deformation.biteline import surface_polyline
from gluecell.deformation.calibration import DepthCalibration, fit_sigma_model
from gluecell.deformation.predict import predict_attach
from gluecell.deformation.reference import augment_with_reference

#: Rim height above the footbed of a sole with a wide (8 mm) footbed/wall fillet, median over stations (metres).
RIM_MEDIAN_TOL = 0.3e-3
#: ... and its scatter over the stations (std, metres); the former 37-degree footbed patch took fillet points in.
RIM_STD_TOL = 0.3e-3
#: Share of fresh synthetic errors within 2 learnt sigma (target 0.95).
COVERAGE_TOL = 0.03
#: Bite line of the flat pair with the upper's reference replacing its scan: height error, metres (clean surface).
REFERENCE_MEDIAN_TOL = 0.2e-3


def _heights(geom, monkeypatch, strict: bool) -> np.ndarray:
    if not strict:
        monkeypatch.setattr(profiles, "FOOTBED_COS", profiles.UP_COS)
        monkeypatch.setattr(profiles, "SOLE_EDGE_BAND", profiles.EDGE_BAND)
    sole = geom.scan_mesh(geom.make_sole(height=0.02, fillet=0.008), "sole", seed=5)
    ss = profiles.sole_sections(sole.points, sole.normals, 128)
    return ss.height[ss.valid]


def test_rim_height_is_read_clear_of_the_fillet(geom, monkeypatch) -> None:
    h = _heights(geom, monkeypatch, strict=True)
    # the footbed plane to the rim's flat top: the design height above the flat footbed
    assert abs(np.median(h) - 0.02) < RIM_MEDIAN_TOL
    assert np.std(h) < RIM_STD_TOL


def test_former_footbed_patch_reads_the_fillet(geom, monkeypatch) -> None:
    """The former rule (37-degree patch from 4 mm off the wall) reads the same sole further from its design."""
    strict = _heights(geom, monkeypatch, strict=True)
    loose = _heights(geom, monkeypatch, strict=False)
    assert abs(np.median(loose) - 0.02) > abs(np.median(strict) - 0.02)


def test_sigma_model_covers_95_percent_of_fresh_errors() -> None:
    rng = np.random.default_rng(3)

    def draw(n_pairs: int) -> tuple[list, list, list]:
        errs, model, slope = [], [], []
        for _ in range(n_pairs):
            m = rng.uniform(0.1e-3, 0.3e-3, 400)
            k = np.abs(rng.normal(0.0, 0.1, 400))
            sig = np.sqrt(0.5e-3**2 + (8e-3 * k) ** 2)  # true: floor 0.5 mm, match 8 mm, model unused
            errs.append(np.abs(rng.normal(0.0, sig)))
            model.append(m)
            slope.append(k)
        return errs, model, slope

    a, b, c = fit_sigma_model(*draw(20))
    cal = DepthCalibration(offsets={}, sigma_scale=a, sigma_floor=b, sigma_match=c)
    errs, model, slope = draw(20)
    sig = np.concatenate([cal.total_sigma(m, k) for m, k in zip(model, slope)])
    share = float(np.mean(np.concatenate(errs) <= 2.0 * sig))
    assert share == pytest.approx(0.95, abs=COVERAGE_TOL)
    assert b == pytest.approx(0.5e-3, rel=0.3) and c == pytest.approx(8e-3, rel=0.3)


def test_default_sigma_is_the_model_sigma_on_a_level_line() -> None:
    m = np.array([0.2e-3, 0.4e-3])
    assert np.allclose(DepthCalibration(offsets={}).total_sigma(m, np.zeros(2)), m)


def test_reference_replaces_the_scan(flat_pair, geom) -> None:
    upper, sole, _ = flat_pair
    ref = geom.scan_mesh(geom.make_upper(station=(0.553, -0.198)), "upper", n=30000, noise=0.0, seed=9)
    out, rms = augment_with_reference(upper, ref.points, ref.normals, replace=True)
    assert len(out.points) == len(ref.points) and rms < 0.5e-3
    pred = predict_attach(upper, sole, reference=(ref.points, ref.normals), check_confidence=False)
    # the flat pair: the bite line one wall height (20 mm) below the bottom at z = 0.17
    assert abs(np.median(pred.bite_line[:, 2]) - (0.17 - 0.02)) < REFERENCE_MEDIAN_TOL
    # bond regions stay on the scan's points (not the reference's, which lie 0.1 mm or more off them)
    from scipy.spatial import cKDTree

    assert len(pred.upper_bond) > 1000
    assert cKDTree(upper.points).query(pred.upper_bond)[0].max() == 0.0


def test_projection_reach_is_a_parameter() -> None:
    # a plane z = 0 of points with up normals and a ring of stations 8 mm above it
    g = np.linspace(-0.05, 0.05, 101)
    pts = np.array([[x, y, 0.0] for x in g for y in g])
    nrm = np.tile([0.0, 0.0, 1.0], (len(pts), 1))
    ang = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = np.column_stack([0.03 * np.cos(ang), 0.03 * np.sin(ang), np.full(64, 8e-3)])
    near, _ = surface_polyline(ring, np.full(64, 1e-3), pts, nrm, 0.8e-3, max_dist=15e-3)
    far, _ = surface_polyline(ring, np.full(64, 1e-3), pts, nrm, 0.8e-3, max_dist=6e-3)
    assert np.abs(near[:, 2]).max() < 1e-6
    assert np.abs(far[:, 2] - 8e-3).max() < 1e-6


def test_style_offsets_are_learnt_and_saved(tmp_path) -> None:
    from gluecell.deformation.calibration import fit_calibration, load_calibration, save_calibration

    samples = [("rubber", 1e-3)] * 3 + [("rubber", 0.5e-3)] * 3 + [("eva", 1e-3)] * 2
    styles = ["boot"] * 3 + ["court"] * 3 + ["sneaker"] * 2
    cal = fit_calibration(samples, styles=styles)
    # rubber's median is 0.75 mm; boots sit 0.25 mm deeper, court 0.25 mm shallower; sneaker has < 3 pairs
    assert cal.offset("rubber", "boot") == pytest.approx(1.0e-3)
    assert cal.offset("rubber", "court") == pytest.approx(0.5e-3)
    assert cal.offset("rubber", "sneaker") == pytest.approx(cal.offset("rubber"))
    save_calibration(tmp_path / "c.json", cal)
    back = load_calibration(tmp_path / "c.json")
    assert back.style_offsets == cal.style_offsets and back.sigma_match == cal.sigma_match
