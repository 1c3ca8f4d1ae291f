"""The prediction's contract: a closed, ordered bite line on the upper, <= 1 mm spacing; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gluecell.deformation.biteline import max_spacing
from gluecell.deformation.predict import predict_attach

#: Contract: bite-line spacing (metres).
MAX_SPACING = 1.0e-3
#: A point "on the upper surface": distance to the true mesh (scan noise is 0.1 mm).
ON_SURFACE_TOL = 0.3e-3
#: Largest turn between consecutive segments of an ordered line (no back-tracking), degrees.
MAX_TURN_DEG = 60.0


def _check_line(pred, mesh) -> None:
    import trimesh

    bl = pred.bite_line
    assert max_spacing(bl) <= MAX_SPACING
    d = np.abs(trimesh.proximity.signed_distance(mesh, bl))
    assert np.percentile(d, 99) < ON_SURFACE_TOL
    seg = np.roll(bl, -1, axis=0) - bl
    cos = np.sum(seg * np.roll(seg, 1, axis=0), axis=1) / (
        np.linalg.norm(seg, axis=1) * np.linalg.norm(np.roll(seg, 1, axis=0), axis=1)
    )
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < MAX_TURN_DEG
    # closed and all round: the line's plan angle about the upper's centre covers the full circle
    c = bl[:, :2].mean(axis=0)
    ang = np.unwrap(np.arctan2(bl[:, 1] - c[1], bl[:, 0] - c[0]))
    assert abs(abs(ang[-1] - ang[0]) - 2 * np.pi) < 0.1
    assert np.all(pred.bite_line_sigma > 0)


def test_flat_pair_contract(flat_pair) -> None:
    upper, sole, mesh = flat_pair
    pred = predict_attach(upper, sole, material="pu")
    _check_line(pred, mesh)
    assert len(pred.upper_bond) > 1000 and len(pred.sole_bond) > 1000
    # the upper's bond region stops at the bite line, the sole's is its cavity (footbed + inner wall)
    assert pred.upper_bond[:, 2].min() > 0.15 - 1e-3
    assert pred.sole_bond[:, 2].max() < 0.02 + 0.012 + 0.02
    # the deformed sole sits on the upper: footbed at the bottom (z = 0.17), rim 20 mm below it
    assert np.percentile(pred.deformed_sole[:, 2], 1) == pytest.approx(0.15, abs=2e-3)


def test_placed_yawed_and_toe_sprung(geom) -> None:
    upper_mesh = geom.make_upper(toe_spring=0.008, yaw_deg=8.0)
    upper = geom.scan_mesh(upper_mesh, "upper", seed=11)
    sole = geom.scan_mesh(geom.make_sole(undersize=0.02, yaw_deg=-6.0), "sole", seed=12)
    pred = predict_attach(upper, sole, material="rubber")
    _check_line(pred, upper_mesh)
    # where the bottom is flat (heel half) the wall lands 20 mm (less the Poisson shrink) below it
    heel = (pred.bite_line[:, :2] - [0.55, -0.20]) @ [np.cos(np.radians(8)), np.sin(np.radians(8))] < -0.02
    assert np.median(0.17 - pred.bite_line[heel, 2]) == pytest.approx(0.02 * (1 - 0.48 * 0.02), abs=0.2e-3)


def test_cli_predict_writes_attach_json(flat_pair, tmp_path) -> None:
    from gluecell.cell.cli import main
    from gluecell.core.ply import write_ply

    upper, sole, _ = flat_pair
    write_ply(tmp_path / "u.ply", upper.points, upper.normals)
    write_ply(tmp_path / "s.ply", sole.points, sole.normals)
    out = tmp_path / "attach.json"
    rc = main(["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out),
               "--no-calibration"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "gluecell.attach/1" and doc["frame"] == "base_link" and doc["units"] == "m"
    bl = np.array(doc["bite_line"])
    assert bl.shape[1] == 3 and len(doc["bite_line_sigma"]) == len(bl)
    assert abs(np.median(bl[:, 2]) - 0.15) < 0.3e-3


def test_cli_bad_input_leaves_no_file(flat_pair, tmp_path, capsys) -> None:
    from gluecell.cell.cli import main
    from gluecell.core.ply import write_ply

    upper, sole, _ = flat_pair
    write_ply(tmp_path / "u.ply", upper.points, upper.normals)
    write_ply(tmp_path / "s.ply", sole.points[:1000], sole.normals[:1000])
    out = tmp_path / "attach.json"
    rc = main(["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--out", str(out)])
    assert rc != 0
    assert not out.exists()
    assert "points" in capsys.readouterr().err
