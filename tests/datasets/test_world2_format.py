"""World 2 in the dataset format: the existing loader and perception read it; same seed -> same bytes;
resumable; the CLI writes it; the pipeline runs on a world-2 pair without an unhandled exception;
the scanner's noise, per-camera errors and the laser cloud behave as documented."""

import ast
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from gluecell.core.ply import read_ply
from gluecell.datasets.format import open_dataset
from gluecell.datasets.generate import GenerateOptions, generate_dataset
from gluecell.datasets.world2 import Scanner2Config, World2Config
from gluecell.datasets.world2.scanner import _scene, cell_errors, intrinsics, render_depth

SEED = 5
STYLES = ("ranger_boot", "rocker_trail")
#: Small images keep the test quick; the part still fills enough pixels for the pipeline.
SMALL = {"width": 640, "height": 360}
#: Perception's scan against the true mesh: mean absolute distance (m) it must stay under.
MAX_SCAN_ERR_M = 0.001
REPO = Path(__file__).resolve().parents[2]


def _opts(n=2, workers=2):
    return GenerateOptions(n=n, seed=SEED, world=World2Config(), scanner=Scanner2Config(**SMALL), styles=STYLES,
                           workers=workers, world_id=2)  # fmt: skip


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2") / "world2"
    generate_dataset(root, _opts())
    return root


def test_existing_loader_opens_world2(dataset):
    ds = open_dataset(dataset)
    assert ds.info["generator"].startswith("gluecell-world2/") and ds.info["world"] == "world2"
    for sid in ds.ids():
        inp = ds.inputs(sid)
        assert inp["workitem"].style in STYLES
        for part in ("upper", "sole"):
            frames = inp["frames"][part]
            assert len(frames) == 4 and frames[0].depth.shape == (360, 640)
            assert np.count_nonzero(frames[0].depth) > 0.5 * frames[0].depth.size
        t = ds.truth(sid)
        assert t["upper_mesh"].is_watertight and t["sole_mesh"].is_watertight
        assert t["upper_bond_faces"].shape == (len(t["upper_mesh"].faces),)
        assert t["sole_bond_faces"].shape == (len(t["sole_mesh"].faces),)
        assert t["deformed_sole_vertices"].shape == t["sole_mesh"].vertices.shape
        assert t["T_base_cam_true_upper"].shape == (4, 4, 4) and t["bite_line"].shape[1] == 3
        assert t["params"]["world"] == "world2" and 0.003 < t["params"]["attach"]["bite_height_mean_m"] < 0.03


def test_same_seed_same_bytes_any_workers_and_resume(dataset, tmp_path):
    serial = tmp_path / "serial"
    generate_dataset(serial, _opts(workers=1))
    assert _digest(serial) == _digest(dataset)
    shutil.rmtree(serial / "truth" / "00001")  # a crash between inputs and truth
    (serial / "meta" / "info.json").unlink()
    res = generate_dataset(serial, _opts(workers=1))
    assert res["generated"] == 1 and _digest(serial) == _digest(dataset)


def test_cli_writes_the_same_sample(dataset, tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text("[scanner]\nwidth = 640\nheight = 360\n")
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "datasets", "generate", "--world", "2", "--n", "1", "--seed",
           str(SEED), "--out", str(out), "--config", str(cfg), "--styles", *STYLES, "-q"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = _digest(out), _digest(dataset)
    assert all(a[k] == b[k] for k in a if k.startswith(("inputs/", "truth/"))) and "truth/00000/truth.npz" in a
    bad = subprocess.run([*cmd[:5], "--world", "3", *cmd[7:]], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--world" in bad.stderr


def test_perception_scans_world2_frames(dataset):
    from gluecell.perception.scan import scan_part_frames

    ds = open_dataset(dataset)
    sid = ds.ids()[0]
    inp, t = ds.inputs(sid), ds.truth(sid)
    for part in ("upper", "sole"):
        scan = scan_part_frames(inp["frames"][part], part, item_id=sid)
        d = np.abs(trimesh.proximity.signed_distance(t[f"{part}_mesh"], scan.points[::4]))
        assert d.mean() < MAX_SCAN_ERR_M, (part, d.mean())


def test_pipeline_end_to_end_on_a_world2_pair(dataset, tmp_path):
    """Scan both parts from the frames, then plan: a plan or a clean refusal (exit 2 with the reason and no
    output file), never a traceback."""
    exe = [sys.executable, "-m", "gluecell.cell.cli"]
    src = dataset / "inputs" / "00001"
    steps = [[*exe, "scan", "--source", f"sim:{src}", "--part", p, "--out", str(tmp_path / f"{p}.ply")]
             for p in ("upper", "sole")]  # fmt: skip
    steps.append([*exe, "plan", "--upper", str(tmp_path / "upper.ply"), "--sole", str(tmp_path / "sole.ply"),
                  "--out", str(tmp_path / "plan.json")])  # fmt: skip
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in r.stderr, r.stderr
        if r.returncode != 0:
            assert r.returncode == 2 and "error:" in r.stderr and not Path(cmd[-1]).exists(), r.stderr
            return
    assert (tmp_path / "plan.json").stat().st_size > 1000


def test_laser_cloud_is_raw_uneven_and_has_outliers(dataset):
    ds = open_dataset(dataset)
    sid = ds.ids()[0]
    cloud = read_ply(dataset / "inputs" / sid / "sole_laser.ply")
    assert cloud.normals is None and len(cloud.points) > 10_000
    lines = np.unique(np.round(cloud.points[:, 0], 6))
    pitch = np.diff(lines)
    assert pitch.std() / pitch.mean() > 0.15  # uneven density along the travel
    mesh = ds.truth(sid)["sole_mesh"]
    lo, hi = mesh.bounds
    p = cloud.points
    inside = (np.abs(p[:, 1] - mesh.centroid[1]) < 0.02) & (p[:, 0] > lo[0] + 0.015) & (p[:, 0] < hi[0] - 0.015)
    on_part = p[inside][::3]  # the footbed's middle strip: every true point lies on the sole
    d = trimesh.proximity.signed_distance(mesh, on_part)
    above = np.mean(np.abs(d) > 0.002)
    assert 0.0005 < above < 0.02  # multipath outliers, about Scanner2Config.laser_outlier_fraction


def test_depth_noise_follows_the_formula_scale_and_texture():
    cfg = Scanner2Config(width=320, height=240, speckle_fraction=0.0)
    K = intrinsics(cfg)
    z0 = 0.2
    plate = (np.array([[-1, -1, z0], [1, -1, z0], [1, 1, z0], [-1, 1, z0]], float), np.array([[0, 1, 2], [0, 2, 3]]))
    scene = _scene([plate])
    T = np.eye(4)  # camera at the origin looking along +z at the plate
    c = (slice(100, 140), slice(140, 180))
    sig = z0**2 * cfg.subpixel / (K.fx * cfg.baseline_m)
    for tex in (1.0, 3.0):
        d = render_depth(scene, [(tex, 1.0)], T, K, cfg, np.random.default_rng(1))
        assert np.std(d[c] - z0) == pytest.approx(tex * sig, rel=0.12)
    d = render_depth(scene, [(1.0, 1.0)], T, K, cfg, np.random.default_rng(1), scale_err=0.01, bias=0.001)
    assert np.mean(d[c]) == pytest.approx(z0 * 1.01 + 0.001, abs=5e-5)


def test_hand_eye_error_is_fixed_per_camera_of_the_cell(dataset):
    ds = open_dataset(dataset)
    rel = []
    for sid in ds.ids():
        frames = ds.inputs(sid)["frames"]["upper"]
        true = ds.truth(sid)["T_base_cam_true_upper"]
        rel.append(np.stack([np.linalg.inv(T) @ f.T_base_cam for T, f in zip(true, frames)]))
    assert np.allclose(rel[0], rel[1], atol=1e-9)  # the same error in every pair
    assert not np.allclose(rel[0][0], np.eye(4), atol=1e-6) and not np.allclose(rel[0][0], rel[0][1], atol=1e-6)
    e = cell_errors(SEED, 8, Scanner2Config())
    assert np.allclose(e.handeye[:4], rel[0], atol=1e-9)


def test_no_pipeline_package_imports_world2():
    """Ground truth stays on its side: only cell/sim may reach gluecell.datasets.world2 (the bench goes through it)."""
    offenders = []
    for pkg in ("perception", "deformation", "pathplan", "quality", "cell"):
        for f in (REPO / pkg).rglob("*.py"):
            if f.is_relative_to(REPO / "cell" / "sim"):
                continue
            for node in ast.walk(ast.parse(f.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                offenders += [f"{f}: {n}" for n in names if "world2" in n]
    assert not offenders
