"""Style references: the nominal sole's wall-height profile (sole_reference) and the taught pair (taught)."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.deformation.predict import PredictConfig, predict_attach
from gluecell.deformation.profiles import sole_sections
from gluecell.deformation.sole_reference import blend_with_reference
from gluecell.deformation.taught import TaughtPair

#: Wall height of the test sole (conftest default), metres.
WALL = 0.02
#: The blended height sits on the true wall height within this (the scan's noise is 0.1 mm), metres.
BLEND_TOL = 0.3e-3
#: A taught line moved by the model: the predicted line's depth change against the known wall change, metres.
SHIFT_TOL = 0.25e-3
#: Same pair as the taught one: the line stays on the taught line (scan noise only), metres.
SAME_TOL = 0.3e-3


def test_sole_reference_sets_profile_scan_sets_level(geom) -> None:
    # A noisier scan of the same sole (0.6 mm noise) and a reference sole placed elsewhere, 1 mm taller.
    noisy = geom.scan_mesh(geom.make_sole(height=WALL), "sole", noise=0.6e-3, seed=5)
    ref_mesh = geom.make_sole(height=WALL + 1e-3, yaw_deg=7.0)
    ref_mesh.apply_translation([0.004, -0.003, 0.0])
    ref = geom.scan_mesh(ref_mesh, "sole", n=80000, noise=0.0, seed=6)
    ss = sole_sections(noisy.points, noisy.normals, PredictConfig().n_stations)
    out, rms = blend_with_reference(noisy, ss, ref.points, ref.normals)
    assert rms < 1e-3
    h_scan, h_out = ss.height[ss.valid], out.height[out.valid]
    # the level is the scan's (the 1 mm taller reference does not lift it) ...
    assert np.median(h_out) == pytest.approx(np.median(h_scan), abs=0.05e-3)
    assert np.median(h_out) == pytest.approx(WALL, abs=BLEND_TOL)
    # ... and the profile the reference's: no scatter left round the outline
    assert np.std(h_out) < 0.5 * np.std(h_scan)


def test_sole_reference_that_does_not_fit_is_ignored(flat_pair) -> None:
    upper, sole, _ = flat_pair
    ss = sole_sections(sole.points, sole.normals, PredictConfig().n_stations)
    out, rms = blend_with_reference(sole, ss, upper.points, upper.normals)  # an upper is not this sole
    assert rms > 2e-3
    np.testing.assert_array_equal(out.height, ss.height)


@pytest.fixture(scope="module")
def taught_flat(flat_pair):
    upper, sole, _ = flat_pair
    line = predict_attach(upper, sole, check_confidence=False).bite_line  # the teacher's line on this upper
    return TaughtPair(upper=(upper.points, upper.normals), sole=(sole.points, sole.normals), bite_line=line)


def test_taught_same_pair_gives_taught_line(taught_flat, flat_pair, geom) -> None:
    upper_mesh = flat_pair[2]
    upper = geom.scan_mesh(upper_mesh, "upper", seed=21)
    sole = geom.scan_mesh(geom.make_sole(height=WALL, undersize=0.0), "sole", seed=22)
    pred = predict_attach(upper, sole, taught=taught_flat, check_confidence=False)
    assert abs(pred.diagnostics["taught_shift_m"]) < 0.15e-3
    d = np.linalg.norm(pred.bite_line[:, None] - taught_flat.bite_line[None], axis=2).min(axis=1)
    assert np.percentile(d, 95) < SAME_TOL


def test_taught_line_follows_lower_wall(taught_flat, flat_pair, geom) -> None:
    upper = geom.scan_mesh(flat_pair[2], "upper", seed=31)
    sole = geom.scan_mesh(geom.make_sole(height=WALL - 2e-3, undersize=0.0), "sole", seed=32)
    pred = predict_attach(upper, sole, taught=taught_flat, check_confidence=False)
    # a wall 2 mm lower lands 2 mm less deep: the whole taught line moves 2 mm towards the bottom (+z here)
    dz = np.median(pred.bite_line[:, 2]) - np.median(taught_flat.bite_line[:, 2])
    assert dz == pytest.approx(2e-3, abs=SHIFT_TOL)
    assert pred.diagnostics["taught_shift_m"] == pytest.approx(-2e-3, abs=SHIFT_TOL)


def test_cli_predict_with_taught_pair_and_sole_reference(taught_flat, flat_pair, geom, tmp_path) -> None:
    import json

    from gluecell.cell.cli import main
    from gluecell.core.ply import write_ply

    upper, sole, mesh = flat_pair
    write_ply(tmp_path / "tu.ply", upper.points, upper.normals)
    write_ply(tmp_path / "ts.ply", sole.points, sole.normals)
    write_ply(tmp_path / "ref_sole.ply", sole.points, sole.normals)
    (tmp_path / "taught.json").write_text(json.dumps({"bite_line": taught_flat.bite_line.tolist()}))
    new_upper = geom.scan_mesh(mesh, "upper", seed=41)
    new_sole = geom.scan_mesh(geom.make_sole(height=WALL - 2e-3, undersize=0.0), "sole", seed=42)
    write_ply(tmp_path / "u.ply", new_upper.points, new_upper.normals)
    write_ply(tmp_path / "s.ply", new_sole.points, new_sole.normals)
    out = tmp_path / "attach.json"
    args = ["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out),
            "--no-calibration"]
    taught = ["--taught-upper", str(tmp_path / "tu.ply"), "--taught-sole", str(tmp_path / "ts.ply")]
    assert main([*args, *taught]) == 2  # the three taught inputs go together
    assert not out.exists()
    taught += ["--taught-line", str(tmp_path / "taught.json"), "--sole-reference", str(tmp_path / "ref_sole.ply")]
    assert main([*args, *taught]) == 0
    doc = json.loads(out.read_text())
    assert doc["diagnostics"]["taught"] is True
    dz = np.median(np.array(doc["bite_line"])[:, 2]) - np.median(taught_flat.bite_line[:, 2])
    assert dz == pytest.approx(2e-3, abs=SHIFT_TOL)


def test_taught_material_offsets_move_the_line(taught_flat, flat_pair) -> None:
    from dataclasses import replace

    from gluecell.deformation.calibration import DepthCalibration

    upper, sole, _ = flat_pair
    cal = DepthCalibration(offsets={"unknown": 0.5e-3, "eva": 1.0e-3, "rubber": 0.0})
    rubber_taught = replace(taught_flat, material="rubber", cache={})
    # same scans, same wall: only the learnt per-material offsets differ (EVA sinks 1 mm more than rubber here)
    pred = predict_attach(upper, sole, material="eva", calibration=cal, taught=rubber_taught, check_confidence=False)
    assert pred.diagnostics["taught_shift_m"] == pytest.approx(1.0e-3, abs=SHIFT_TOL)
    same = predict_attach(upper, sole, material="eva", calibration=cal, taught=taught_flat, check_confidence=False)
    assert abs(same.diagnostics["taught_shift_m"]) < 0.15e-3
