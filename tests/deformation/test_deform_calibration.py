"""Depth calibration, the style reference and the bench's distance measure."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import VersionError
from gluecell.deformation.calibration import (
    DepthCalibration,
    depth_error,
    fit_calibration,
    load_calibration,
    save_calibration,
)
from gluecell.deformation.predict import predict_attach

#: Shift of the bite line by a calibration offset must equal the offset (metres; scan noise averages out).
OFFSET_TOL = 0.1e-3
DIST_TOL = 1e-6


def test_fit_calibration_medians_per_material() -> None:
    samples = [("eva", 1e-3), ("eva", 2e-3), ("eva", 3e-3), ("tpu", 0.1e-3), ("tpu", 0.3e-3)]
    cal = fit_calibration(samples)
    assert cal.offset("eva") == pytest.approx(2e-3)
    assert "tpu" not in cal.offsets  # fewer than MIN_PAIRS: falls back to the overall median
    assert cal.offset("tpu") == pytest.approx(1e-3)
    assert cal.offset("unknown") == pytest.approx(1e-3)
    assert cal.sigma_scale == 1.0
    assert fit_calibration(samples, [2.0, 3.0, 4.0]).sigma_scale == pytest.approx(3.0)
    assert fit_calibration(samples, [0.5, 0.6, 0.7]).sigma_scale == 1.0  # never shrinks the solver's sigma


def test_calibration_file_round_trip_and_version(tmp_path) -> None:
    cal = DepthCalibration(offsets={"unknown": 0.5e-3, "eva": 0.7e-3}, n_pairs=7, residual_std=0.2e-3, sigma_scale=2.5)
    save_calibration(tmp_path / "c.json", cal, {"split": "train"})
    back = load_calibration(tmp_path / "c.json")
    assert back.offsets == cal.offsets and back.n_pairs == 7 and back.sigma_scale == 2.5
    (tmp_path / "bad.json").write_text('{"format": "gluecell.deform_calibration/2", "offsets": {}}')
    with pytest.raises(VersionError):
        load_calibration(tmp_path / "bad.json")


def test_calibration_offset_moves_the_bite_line_down_the_side(flat_pair) -> None:
    upper, sole, _ = flat_pair
    base = predict_attach(upper, sole, material="eva")
    cal = DepthCalibration(offsets={"unknown": 1e-3, "eva": 1e-3}, sigma_scale=2.0)
    moved = predict_attach(upper, sole, material="eva", calibration=cal, check_confidence=False)
    assert depth_error(moved.bite_line, base.bite_line) == pytest.approx(-1e-3, abs=OFFSET_TOL)
    assert np.median(moved.bite_line_sigma) == pytest.approx(2.0 * np.median(base.bite_line_sigma), rel=0.05)


def test_reference_fills_an_unseen_toe(geom) -> None:
    """Cut the side under the toe out of the scan (as cameras above lose it); the nominal upper fills it."""
    mesh = geom.make_upper()
    scan = geom.scan_mesh(mesh, "upper", seed=21)
    x_toe = scan.points[:, 0].max()
    hidden = (scan.points[:, 0] > x_toe - 0.03) & (scan.points[:, 2] < 0.17 - 3e-3)
    from gluecell.core.types import PartScan

    cut = PartScan(part="upper", points=scan.points[~hidden], normals=scan.normals[~hidden])
    sole = geom.scan_mesh(geom.make_sole(), "sole", seed=22)
    ref_mesh = geom.make_upper(station=(0.553, -0.197), yaw_deg=2.0)  # the style's model, placed elsewhere
    pts, fi = ref_mesh.sample(30000, return_index=True, seed=3)
    pred = predict_attach(cut, sole, material="rubber", reference=(pts, ref_mesh.face_normals[fi]))
    assert pred.diagnostics["reference_rms_m"] < 0.5e-3
    toe = pred.bite_line[:, 0] > x_toe - 0.02
    assert toe.sum() > 20
    assert np.median(np.abs(pred.bite_line[toe, 2] - 0.15)) < 0.3e-3


def test_polyline_distance_known_answer() -> None:
    from gluecell.cell.bench.deformation import pair_errors, polyline_distance

    ang = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    circle = np.column_stack([0.1 * np.cos(ang), 0.1 * np.sin(ang), np.zeros_like(ang)])
    pts = np.column_stack([0.103 * np.cos(ang[::7]), 0.103 * np.sin(ang[::7]), np.zeros(len(ang[::7]))])
    assert np.allclose(polyline_distance(pts, circle), 0.003, atol=DIST_TOL + 0.1 * (0.1 * (ang[1]) ** 2))
    p95, mx = pair_errors(circle + np.array([0.0, 0.0, 0.0005]), circle)
    assert p95 == pytest.approx(0.5, abs=1e-3) and mx == pytest.approx(0.5, abs=1e-3)
