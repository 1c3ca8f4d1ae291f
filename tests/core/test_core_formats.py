"""PLY, plan, frame and npz files: round trips, determinism, and clear errors on bad files."""

import json
import warnings

import numpy as np
import pytest

from gluecell.core import CameraIntrinsics, DepthFrame, FormatError, SprayPath, VersionError
from gluecell.core.arrays import load_npz, npz_bytes
from gluecell.core.fileio import atomic_open, check_version
from gluecell.core.frames import load_frame, save_frame
from gluecell.core.plan import Plan, read_plan, write_plan
from gluecell.core.ply import read_ply, write_ply

FLOAT32_TOL = 1e-6  # metres: PLY stores float32


def test_ply_roundtrip_points_normals_colors_faces(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.3, 0.3, size=(50, 3))
    nrm = rng.normal(size=(50, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    col = rng.integers(0, 255, size=(50, 3)).astype(np.uint8)
    faces = rng.integers(0, 50, size=(20, 3))
    write_ply(tmp_path / "a.ply", pts, normals=nrm, colors=col, faces=faces)
    c = read_ply(tmp_path / "a.ply")
    assert np.abs(c.points - pts).max() < FLOAT32_TOL
    assert np.abs(c.normals - nrm).max() < FLOAT32_TOL
    assert np.array_equal(c.colors, col) and np.array_equal(c.faces, faces)
    assert (tmp_path / "a.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")


def test_ply_reads_ascii_and_rejects_corrupt_files(tmp_path):
    (tmp_path / "ascii.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty double x\nproperty double y\nproperty double z\n"
        "end_header\n0.1 0.2 0.3\n1 2 3\n"
    )
    c = read_ply(tmp_path / "ascii.ply")
    assert np.allclose(c.points, [[0.1, 0.2, 0.3], [1, 2, 3]])
    write_ply(tmp_path / "b.ply", np.zeros((100, 3)))
    raw = (tmp_path / "b.ply").read_bytes()
    (tmp_path / "trunc.ply").write_bytes(raw[:-20])
    with pytest.raises(FormatError, match="truncated"):
        read_ply(tmp_path / "trunc.ply")
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01garbage")
    with pytest.raises(FormatError, match="not a PLY"):
        read_ply(tmp_path / "junk.ply")
    with pytest.raises(FormatError, match="not found"):
        read_ply(tmp_path / "missing.ply")
    nan = raw[: raw.index(b"end_header\n") + len(b"end_header\n")]  # the header, then NaN rows as the body
    (tmp_path / "nan.ply").write_bytes(nan + np.full((100, 3), np.nan, "<f4").tobytes())
    with pytest.raises(FormatError, match="NaN"):
        read_ply(tmp_path / "nan.ply")
    with pytest.raises(FormatError, match="NaN"):
        write_ply(tmp_path / "c.ply", np.full((2, 3), np.nan))
    assert not (tmp_path / "c.ply").exists()


def _plan() -> Plan:
    n = 5
    path = SprayPath(
        part="upper",
        t=np.linspace(0, 1, n),
        xyz=np.column_stack([np.linspace(0.5, 0.6, n), np.full(n, -0.2), np.full(n, 0.15)]),
        quat_xyzw=np.tile([1.0, 0, 0, 0], (n, 1)),
        spray=[False, True, True, True, False],
    )
    bl = np.column_stack([np.linspace(0.4, 0.7, 10), np.full(10, -0.2), np.full(10, 0.14)])
    return Plan(bite_line=bl, paths=(path,), timing_ms={"total": 12.5}, extra={"item_id": "00001"})


def test_plan_roundtrip_and_schema(tmp_path):
    write_plan(tmp_path / "plan.json", _plan())
    d = json.loads((tmp_path / "plan.json").read_text())
    assert d["format"] == "gluecell.plan/1" and d["frame"] == "base_link" and d["units"] == "m"
    assert set(d["paths"][0]["waypoints"][0]) == {"t", "xyz", "quat_xyzw", "spray"}
    back = read_plan(tmp_path / "plan.json")
    assert np.allclose(back.paths[0].xyz, _plan().paths[0].xyz)
    assert back.paths[0].spray.tolist() == [False, True, True, True, False]
    assert back.extra == {"item_id": "00001"} and back.timing_ms == {"total": 12.5}


def test_plan_version_and_field_errors(tmp_path):
    write_plan(tmp_path / "plan.json", _plan())
    d = json.loads((tmp_path / "plan.json").read_text())
    d["format"] = "gluecell.plan/2"
    (tmp_path / "v2.json").write_text(json.dumps(d))
    with pytest.raises(VersionError):
        read_plan(tmp_path / "v2.json")
    d["format"] = "gluecell.plan/1"
    d["paths"][0]["waypoints"][0]["quat_xyzw"] = [0, 0, 0, 0]
    (tmp_path / "badq.json").write_text(json.dumps(d))
    with pytest.raises(FormatError, match="norm"):
        read_plan(tmp_path / "badq.json")
    (tmp_path / "trunc.json").write_text((tmp_path / "plan.json").read_text()[:50])
    with pytest.raises(FormatError, match="JSON"):
        read_plan(tmp_path / "trunc.json")


def test_check_version_major_raises_minor_warns():
    check_version("gluecell.x/1.2", "gluecell.x/1.2", what="t")
    with pytest.warns(UserWarning, match="minor"):
        check_version("gluecell.x/1.3", "gluecell.x/1.2", what="t")
    with pytest.raises(VersionError):
        check_version("gluecell.x/2.0", "gluecell.x/1.2", what="t")
    with pytest.raises(VersionError):
        check_version("other/1.2", "gluecell.x/1.2", what="t")
    with pytest.raises(VersionError):
        check_version(None, "gluecell.x/1", what="t")


def test_npz_bytes_are_deterministic_and_frames_roundtrip(tmp_path):
    arrays = {"a": np.arange(10), "b": np.eye(3)}
    assert npz_bytes(arrays) == npz_bytes(dict(reversed(list(arrays.items()))))
    k = CameraIntrinsics(8, 6, 5.0, 5.0, 4.0, 3.0)
    depth = np.arange(48, dtype=np.uint16).reshape(6, 8)
    f = DepthFrame(depth, 1e-4, k, np.eye(4), color=np.zeros((6, 8, 3), np.uint8), stamp=1.5, serial="sim0")
    save_frame(tmp_path / "f.npz", f)
    g = load_frame(tmp_path / "f.npz")
    assert np.array_equal(g.depth, depth) and g.intrinsics == k and g.serial == "sim0" and g.stamp == 1.5
    raw = (tmp_path / "f.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError):
        load_frame(tmp_path / "t.npz")
    with pytest.raises(FormatError, match="missing"):
        load_npz(tmp_path / "f.npz", required=("nope",))


def test_atomic_open_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with warnings.catch_warnings():  # a clean write warns about nothing and replaces the file whole
        warnings.simplefilter("error")
        with atomic_open(target) as fh:
            fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
