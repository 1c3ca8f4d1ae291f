"""A given attach pose (``predict_attach(attach_pose=...)``, the error budget's true pose) replaces the outline ICP."""

from __future__ import annotations

import numpy as np
import pytest

#: Rim height slope of the sloped sole: the wall is 20 mm x (1 + A x / L) at x along the sole (L its half-length).
A, L, H = 0.4, 0.135, 0.02
#: Shift of the given pose along the upper's long axis, metres.
SHIFT = 6e-3


@pytest.fixture(scope="module")
def sloped_pair(geom):
    """(upper scan, sole scan) whose sole wall rises from heel to toe (so where the sole lands moves the line)."""
    from gluecell.core.types import PartScan

    upper = geom.make_upper()
    sole = geom.make_sole(height=H)
    sole_scan = geom.scan_mesh(sole, "sole", seed=2)
    p = sole_scan.points.copy()
    zf = 0.02 + 0.012  # tread_z + footbed_thickness of make_sole
    x = p[:, 0] - 0.55  # sole station x
    up = p[:, 2] > zf + 1e-4
    p[up, 2] = zf + (p[up, 2] - zf) * (1.0 + A * x[up] / L)
    return geom.scan_mesh(upper, "upper", seed=1), PartScan(part="sole", points=p, normals=sole_scan.normals,
                                                           item_id="test")  # fmt: skip


def _shifted(T: np.ndarray, dx: float) -> np.ndarray:
    S = np.eye(4)
    S[0, 3] = dx
    return S @ T


def test_the_icp_pose_given_back_gives_the_same_line(flat_pair) -> None:
    from gluecell.core.geometry import bite_line_error
    from gluecell.deformation.predict import predict_attach

    upper, sole, _ = flat_pair
    icp = predict_attach(upper, sole, check_confidence=False)
    T = np.asarray(icp.diagnostics["T_attach"])
    given = predict_attach(upper, sole, check_confidence=False, attach_pose=T)
    assert given.diagnostics["attach_pose_given"] and not icp.diagnostics["attach_pose_given"]
    assert np.allclose(given.diagnostics["T_attach"], T)
    assert bite_line_error(given.bite_line, icp.bite_line).max_mm < 0.05


def test_a_shifted_pose_moves_the_line_by_the_walls_slope(sloped_pair) -> None:
    from gluecell.deformation.predict import predict_attach

    upper, sole = sloped_pair
    icp = predict_attach(upper, sole, check_confidence=False)
    T = np.asarray(icp.diagnostics["T_attach"])
    lines = {d: predict_attach(upper, sole, check_confidence=False, attach_pose=_shifted(T, d)).bite_line
             for d in (0.0, SHIFT)}  # fmt: skip
    # the sole moved +SHIFT along x: each upper station now meets the sole's wall from SHIFT further back, lower by
    # H A SHIFT / L, so the line (upper bottom up: the bite hangs below the bottom) rises by that much on the sides
    from scipy.spatial import cKDTree

    a, b = lines[0.0], lines[SHIFT]
    j = cKDTree(a[:, :2]).query(b[:, :2])[1]
    side = np.abs(b[:, 0] - 0.55) < 0.08  # the long sides, away from toe and heel
    rise = float(np.median(b[side, 2] - a[j[side], 2]))
    assert rise == pytest.approx(H * A * SHIFT / L, rel=0.25)
    # and the deformed sole goes with the pose
    pred = predict_attach(upper, sole, check_confidence=False, attach_pose=_shifted(T, SHIFT))
    base = predict_attach(upper, sole, check_confidence=False, attach_pose=T)
    assert np.median(pred.deformed_sole[:, 0] - base.deformed_sole[:, 0]) == pytest.approx(SHIFT, abs=1e-3)


def test_a_pose_that_is_not_this_pairs_or_not_rigid_is_refused(flat_pair) -> None:
    from gluecell.deformation.errors import AttachPoseError
    from gluecell.deformation.predict import predict_attach

    upper, sole, _ = flat_pair
    T = np.asarray(predict_attach(upper, sole, check_confidence=False).diagnostics["T_attach"])
    with pytest.raises(AttachPoseError, match="not this pair's pose"):
        predict_attach(upper, sole, check_confidence=False, attach_pose=_shifted(T, 0.03))
    bad = T.copy()
    bad[:3, :3] *= 1.1
    with pytest.raises(AttachPoseError, match="rigid"):
        predict_attach(upper, sole, check_confidence=False, attach_pose=bad)
    with pytest.raises(AttachPoseError, match="4x4"):
        predict_attach(upper, sole, check_confidence=False, attach_pose=np.full((4, 4), np.nan))


def test_gluecell_predict_takes_a_measured_attach_pose(flat_pair, tmp_path, capsys) -> None:
    import json

    from gluecell.cell.cli import main
    from gluecell.core.geometry import bite_line_error
    from gluecell.core.ply import write_ply

    upper, sole, _ = flat_pair
    write_ply(tmp_path / "u.ply", upper.points, upper.normals)
    write_ply(tmp_path / "s.ply", sole.points, sole.normals)
    args = ["predict", "--upper", str(tmp_path / "u.ply"), "--sole", str(tmp_path / "s.ply"), "--no-calibration"]
    assert main([*args, "--out", str(tmp_path / "a.json")]) == 0
    first = json.loads((tmp_path / "a.json").read_text())
    # the pose of a previous attach JSON, given back: the same line, and the document says the pose was given
    assert main([*args, "--out", str(tmp_path / "b.json"), "--attach-pose", str(tmp_path / "a.json")]) == 0
    again = json.loads((tmp_path / "b.json").read_text())
    assert again["diagnostics"]["attach_pose_given"] and not first["diagnostics"]["attach_pose_given"]
    assert bite_line_error(np.asarray(again["bite_line"]), np.asarray(first["bite_line"])).max_mm < 0.05
    # a bare 4x4 far off this pair, and a file without a 4x4: refused with the reason, no output
    (tmp_path / "far.json").write_text(json.dumps(_shifted(np.asarray(first["T_attach"]), 0.03).tolist()))
    (tmp_path / "bad.json").write_text(json.dumps({"T_attach": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}))
    capsys.readouterr()
    for name, why in (("far", "not this pair's pose"), ("bad", "4x4")):
        out = tmp_path / f"{name}-out.json"
        assert main([*args, "--out", str(out), "--attach-pose", str(tmp_path / f"{name}.json")]) == 2
        assert why in capsys.readouterr().err and not out.exists()
