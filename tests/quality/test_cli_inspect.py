"""`gluecell inspect` on plain files: an RGB PNG, two 16-bit depth PNGs, a calibration JSON, a plan."""

import json

import cv2

from gluecell.cell.cli import main
from gluecell.core.plan import write_plan

from .conftest import wall_plan, wall_view


def _files(tmp_path, view):
    cv2.imwrite(str(tmp_path / "uv.png"), cv2.cvtColor(view.image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "d0.png"), view.depth_before)
    cv2.imwrite(str(tmp_path / "d1.png"), view.depth_after)
    K = view.intrinsics
    cal = {"width": K.width, "height": K.height, "fx": K.fx, "fy": K.fy, "cx": K.cx, "cy": K.cy,
           "depth_scale": view.depth_scale, "T_base_cam": view.T_base_cam.tolist()}  # fmt: skip
    (tmp_path / "cam.json").write_text(json.dumps(cal))
    write_plan(tmp_path / "plan.json", wall_plan())
    return ["inspect", "--plan", str(tmp_path / "plan.json"), "--image", str(tmp_path / "uv.png"),
            "--depth-before", str(tmp_path / "d0.png"), "--depth-after", str(tmp_path / "d1.png"),
            "--calibration", str(tmp_path / "cam.json"), "--classical", "--out", str(tmp_path / "out.json"),
            "--crops", str(tmp_path / "crops")]  # fmt: skip


def test_inspect_files_finds_overspray_and_writes_crops(tmp_path):
    args = _files(tmp_path, wall_view(-3e-3))
    assert main(args) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["verdict"] == "fail" and "above" in [d["kind"] for d in out["defects"]]
    assert list((tmp_path / "crops").glob("defect*_above.png"))


def test_inspect_files_bad_input_is_a_clear_error(tmp_path, capsys):
    args = _files(tmp_path, wall_view(None))
    (tmp_path / "cam.json").unlink()
    assert main(args) == 2
    assert "calibration file not found" in capsys.readouterr().err
    args = _files(tmp_path, wall_view(None))
    cv2.imwrite(str(tmp_path / "d0.png"), wall_view(None).image)  # an 8-bit colour image given as depth
    assert main(args) == 2
    assert "depth_before" in capsys.readouterr().err
    args = _files(tmp_path, wall_view(None))
    (tmp_path / "uv.png").write_bytes(b"\x89PNG broken")
    assert main(args) == 2
    assert "not a readable image" in capsys.readouterr().err
