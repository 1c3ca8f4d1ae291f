"""Issue 14, item 5: the user's defaults (shipped calibration, unknown style) and raw clouds (no normals,
outliers, the support they stand on)."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _write(path, points, normals=None) -> None:
    from gluecell.core.ply import write_ply

    write_ply(path, points, normals)


def _dirty(points: np.ndarray, rng: np.random.Generator, below: float) -> np.ndarray:
    """``points`` with a wide support plane ``below`` m under their lowest point and 0.3 % outliers ~4 mm up."""
    lo, hi = points[:, :2].min(0) - 0.03, points[:, :2].max(0) + 0.03
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], 2e-3), np.arange(lo[1], hi[1], 2e-3))
    plane = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, points[:, 2].min() - below)])
    plane = plane[np.all(np.abs(plane[:, :2] - points[:, :2].mean(0)) > 0.0, axis=1)]
    out = points.copy()
    k = rng.choice(len(out), size=max(1, int(0.003 * len(out))), replace=False)
    out[k, 2] += rng.uniform(3e-3, 5e-3, len(k))
    return np.vstack([out, plane])


def _block(rng: np.random.Generator) -> np.ndarray:
    """A dense laser-like cloud (0.5 mm grid) of a 100 x 60 x 30 mm block's top and sides."""
    g = np.arange(0.0, 0.1, 5e-4)
    h = np.arange(0.0, 0.06, 5e-4)
    top = np.array([[x, y, 0.03] for x in g for y in h])
    zs = np.arange(0.001, 0.03, 5e-4)
    sides = [np.array([[x, y0, z] for x in g for z in zs]) for y0 in (0.0, 0.06)]
    pts = np.vstack([top, *sides])
    return pts + rng.normal(0.0, 5e-5, pts.shape)


def test_clean_cloud_removes_support_and_outliers_and_keeps_a_clean_part(flat_pair) -> None:
    from gluecell.deformation.cloud_clean import clean_cloud

    rng = np.random.default_rng(0)
    block = _block(rng)
    dirty = _dirty(block, rng, below=0.0)
    # lifted points of the top stand free (a wall point lifted along the wall stays on the wall)
    lifted = (dirty[: len(block), 2] - block[:, 2] > 2e-3) & (block[:, 2] > 0.029)
    pts, nrm, removed = clean_cloud(dirty)
    assert nrm is None and removed["support"] >= len(dirty) - len(block)
    assert removed["outliers"] >= 0.8 * lifted.sum()
    assert len(pts) > 0.95 * len(block) and np.percentile(pts[:, 2], 99.9) < 0.03 + 1e-3
    # a clean sole scan passes (nearly) unchanged: its footbed, flat and inside the outline, is not a support
    _, sole, _ = flat_pair
    same, _, rem = clean_cloud(sole.points, sole.normals)
    assert rem["support"] == 0 and len(same) > 0.99 * len(sole.points)


def test_predict_uses_the_shipped_calibration_by_default(flat_pair, tmp_path, capsys) -> None:
    from gluecell.cell.cli import main
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration

    upper, sole, _ = flat_pair
    _write(tmp_path / "u.ply", upper.points, upper.normals)
    _write(tmp_path / "s.ply", sole.points, sole.normals)
    out = tmp_path / "a.json"
    args = ["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out)]
    # no reference given: the shipped calibration's part learnt without references (issue 14 item 4) applies
    terms = load_calibration(DEFAULT_CALIBRATION).for_prediction(with_references=False).sigma_terms
    floor_mm = terms.factor * terms.floor * 1e3 * 0.5  # its floor, at most halved by the terms on this clean pair
    # default: the shipped calibration, whose sigma floor sets the uncertainty; an unknown style warns and runs on
    assert main([*args, "--max-sigma-mm", "5", "--style", "no_such_style"]) == 0
    err = capsys.readouterr().err
    assert "style 'no_such_style' is unknown to the calibration" in err
    doc = json.loads(out.read_text())
    assert doc["diagnostics"]["sigma"]["model"] == "calibration terms (references: none)"
    sig = np.asarray(doc["bite_line_sigma"]) * 1e3
    assert np.percentile(sig, 95) >= floor_mm - 1e-6
    # --no-calibration: the pure solver, no calibration floor and no warning
    assert main([*args, "--no-calibration", "--style", "no_such_style"]) == 0
    assert "unknown to the calibration" not in capsys.readouterr().err
    assert np.percentile(np.asarray(json.loads(out.read_text())["bite_line_sigma"]) * 1e3, 95) < np.percentile(sig, 95)


def test_predict_on_raw_clouds_without_normals_matches_the_clean_scan(flat_pair, tmp_path) -> None:
    from gluecell.cell.cli import main
    from gluecell.core.geometry import bite_line_error

    upper, sole, _ = flat_pair
    rng = np.random.default_rng(1)
    _write(tmp_path / "u.ply", upper.points, upper.normals)
    _write(tmp_path / "s.ply", sole.points, sole.normals)
    _write(tmp_path / "ud.ply", _dirty(upper.points, rng, below=0.02))  # no normals, outliers, a floor
    _write(tmp_path / "sd.ply", _dirty(sole.points, rng, below=0.0))  # no normals, outliers, a tray
    lines = []
    for u, s in (("u", "s"), ("ud", "sd")):
        out = tmp_path / f"{u}.json"
        assert main(["predict", "--upper", str(tmp_path / f"{u}.ply"), "--sole", str(tmp_path / f"{s}.ply"),
                     "--out", str(out), "--no-calibration"]) == 0  # fmt: skip
        lines.append(np.asarray(json.loads(out.read_text())["bite_line"]))
    e = bite_line_error(lines[1], lines[0])
    assert e.p95_mm < 0.3, e


@pytest.mark.parametrize("name,cls", [("tpu", "tpu"), ("tr_rubber", "rubber"), ("PU", "pu"), ("cork", None)])
def test_world_materials_map_to_the_model_classes(name, cls) -> None:
    from gluecell.cell.bench.worlds import material_class

    assert material_class(name) == cls


def test_plan_predicts_with_the_shipped_calibration_by_default(flat_pair, tmp_path, capsys) -> None:
    from gluecell.cell.cli import main

    upper, sole, _ = flat_pair
    _write(tmp_path / "u.ply", upper.points, upper.normals)
    _write(tmp_path / "s.ply", sole.points, sole.normals)
    out = tmp_path / "plan.json"
    args = ["plan", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out)]
    # the shipped calibration's sigma floor (1.06 mm) is over the 1 mm limit: refused for a human, no plan
    assert main([*args, "--style", "no_such_style"]) == 2
    err = capsys.readouterr().err
    assert "unknown to the calibration" in err and "send the pair to a human" in err and not out.exists()
