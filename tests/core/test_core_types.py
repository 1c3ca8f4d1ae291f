"""Value types validate on construction."""

import numpy as np
import pytest

from gluecell.core import (
    AttachPrediction,
    CameraIntrinsics,
    DepthFrame,
    GlueCellError,
    Inspection,
    PartScan,
    RobotProgram,
    SprayPath,
    ValidationError,
    WorkItem,
)


def _path(n: int = 4, **kw):
    args = dict(
        part="upper",
        t=np.linspace(0, 1, n),
        xyz=np.random.default_rng(0).normal(size=(n, 3)),
        quat_xyzw=np.tile([0, 0, 0, 1.0], (n, 1)),
        spray=np.ones(n, bool),
    )
    args.update(kw)
    return SprayPath(**args)


def test_partscan_accepts_good_values_and_freezes_arrays():
    pts = np.random.default_rng(1).normal(size=(10, 3))
    scan = PartScan(part="sole", points=pts, normals=np.tile([0, 0, 1.0], (10, 1)))
    assert scan.points.dtype == np.float64 and scan.points.shape == (10, 3)
    assert np.array_equal(scan.points, pts)
    with pytest.raises(ValueError):
        scan.points[0, 0] = 5.0  # read-only: a stage cannot change another's value
    pts[0, 0] = 99.0
    assert scan.points[0, 0] != 99.0  # copied on entry


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(points=np.zeros((0, 3))), "at least 1"),
        (dict(points=np.zeros((5, 2))), "(n, 3)"),
        (dict(points=np.array([[0, 0, np.nan]])), "NaN"),
        (dict(points=np.zeros((2, 3)), normals=np.zeros((2, 3))), "unit length"),
        (dict(points=np.zeros((2, 3)), normals=np.ones((3, 3)) / np.sqrt(3)), "does not match"),
        (dict(points=np.zeros((2, 3)), part="heel"), "not one of"),
    ],
)
def test_partscan_rejects_bad_values(kwargs, needle):
    args = dict(part="upper", points=np.zeros((3, 3)))
    args.update(kwargs)
    with pytest.raises(ValidationError) as err:
        PartScan(**args)
    assert needle in str(err.value)
    assert isinstance(err.value, GlueCellError)


def test_spraypath_checks_quaternions_lengths_and_time():
    p = _path()
    assert len(p) == 4 and p.spray.dtype == bool
    with pytest.raises(ValidationError, match="norm"):
        _path(quat_xyzw=np.tile([0, 0, 0, 2.0], (4, 1)))
    with pytest.raises(ValidationError, match="rows"):
        _path(spray=np.ones(3, bool))
    with pytest.raises(ValidationError, match="non-decreasing"):
        _path(t=np.array([0, 2, 1, 3.0]))
    with pytest.raises(ValidationError, match="NaN"):
        _path(xyz=np.full((4, 3), np.inf))


def test_attach_prediction_needs_one_sigma_per_point():
    bl = np.column_stack([np.cos(np.linspace(0, 6, 20)), np.sin(np.linspace(0, 6, 20)), np.zeros(20)])
    a = AttachPrediction(bite_line=bl, bite_line_sigma=np.full(20, 1e-4))
    assert a.bite_line.shape == (20, 3)
    with pytest.raises(ValidationError, match="one value per"):
        AttachPrediction(bite_line=bl, bite_line_sigma=np.ones(19))
    with pytest.raises(ValidationError, match=">= 0"):
        AttachPrediction(bite_line=bl, bite_line_sigma=-np.ones(20))


def test_robot_program_and_inspection_and_workitem():
    prog = RobotProgram(
        joint_names=("a", "b"), t=[0, 0.5, 1.0], q=np.zeros((3, 2)), gun_events=((0.1, True), (0.9, False))
    )
    assert prog.duration == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="strictly increasing"):
        RobotProgram(joint_names=("a",), t=[0, 0], q=np.zeros((2, 1)))
    with pytest.raises(ValidationError, match="sorted"):
        RobotProgram(joint_names=("a",), t=[0, 1], q=np.zeros((2, 1)), gun_events=((0.9, True), (0.1, False)))
    Inspection(item_id="x", part="upper", coverage=0.99, overspray_mm=0.2, gap_area_mm2=0.0, verdict="pass")
    with pytest.raises(ValidationError, match="coverage"):
        Inspection(item_id="x", part="upper", coverage=1.2, overspray_mm=0, gap_area_mm2=0, verdict="pass")
    with pytest.raises(ValidationError, match="verdict"):
        Inspection(item_id="x", part="upper", coverage=1.0, overspray_mm=0, gap_area_mm2=0, verdict="maybe")
    with pytest.raises(ValidationError, match="side"):
        WorkItem(item_id="a1", style="boot", size_eu=42, side="middle")
    with pytest.raises(ValidationError, match="item_id"):
        WorkItem(item_id="", style="boot", size_eu=42, side="left")


def test_depth_frame_checks_dtype_shape_and_pose():
    k = CameraIntrinsics(4, 3, 2.0, 2.0, 2.0, 1.5)
    f = DepthFrame(depth=np.zeros((3, 4), np.uint16), depth_scale=1e-4, intrinsics=k, T_base_cam=np.eye(4))
    assert f.depth.shape == (3, 4) and np.array_equal(f.intrinsics.K[0], [2.0, 0, 2.0])
    with pytest.raises(ValidationError, match="uint16"):
        DepthFrame(depth=np.zeros((3, 4), np.float32), depth_scale=1e-4, intrinsics=k, T_base_cam=np.eye(4))
    with pytest.raises(ValidationError, match="does not match"):
        DepthFrame(depth=np.zeros((4, 4), np.uint16), depth_scale=1e-4, intrinsics=k, T_base_cam=np.eye(4))
    bad = np.eye(4)
    bad[0, 0] = 2.0
    with pytest.raises(ValidationError, match="rotation"):
        DepthFrame(depth=np.zeros((3, 4), np.uint16), depth_scale=1e-4, intrinsics=k, T_base_cam=bad)
    with pytest.raises(ValidationError, match="focal"):
        CameraIntrinsics(4, 3, -1.0, 2.0, 2.0, 1.5)
