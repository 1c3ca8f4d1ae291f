"""Dataset generation: valid samples, identical bytes per seed, resumable, clear errors on bad input."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gluecell.core.errors import ConfigError, FormatError, VersionError
from gluecell.datasets.format import DatasetError, assign_splits, open_dataset
from gluecell.datasets.generate import GenerateOptions, generate_dataset, generate_sample, load_generate_config

N = 3
SEED = 11


def _opts(n=N, seed=SEED, workers=1, **kw):
    world, scanner = load_generate_config(None)
    return GenerateOptions(n=n, seed=seed, world=world, scanner=scanner, workers=workers, **kw)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "world"
    generate_dataset(root, _opts(workers=2))
    return root


def test_splits_are_disjoint_complete_and_seeded():
    s = assign_splits(20, 1)
    ids = s["train"] + s["val"] + s["test"]
    assert sorted(ids) == [f"{i:05d}" for i in range(20)] and len(set(ids)) == 20
    assert len(s["test"]) == 3 and len(s["val"]) == 3
    assert assign_splits(20, 1) == s and assign_splits(20, 2) != s


def test_generated_dataset_is_valid(dataset):
    ds = open_dataset(dataset)
    assert ds.info["format"] == "gluecell.dataset/1" and ds.info["seed"] == SEED
    assert ds.info["counts"]["total"] == N and len(ds.ids()) == N
    assert set(ds.info["config"]) == {"world", "scanner"}
    for sid in ds.ids():
        inp = ds.inputs(sid)
        assert inp["workitem"].item_id == sid
        assert len(inp["frames"]["upper"]) >= 1 and len(inp["frames"]["sole"]) >= 1
        # pipeline inputs carry no truth: only the work item and one frame file per camera
        names = {p.name for p in (dataset / "inputs" / sid).iterdir()}
        frames = {f"{part}_cam{k}.npz" for part, fs in inp["frames"].items() for k in range(len(fs))}
        assert names == {"workitem.json"} | frames
        frame = inp["frames"]["upper"][0]
        assert np.count_nonzero(frame.depth) > 1000  # the cameras see something
        t = ds.truth(sid)
        assert t["upper_mesh"].is_watertight and t["sole_mesh"].is_watertight
        assert t["bite_line"].shape[1] == 3 and len(t["bite_line"]) > 100
        assert t["upper_bond_faces"].shape == (len(t["upper_mesh"].faces),)
        assert t["T_base_cam_true_upper"].shape == (len(inp["frames"]["upper"]), 4, 4)


def test_same_seed_identical_bytes_regardless_of_workers(dataset, tmp_path):
    again = tmp_path / "again"
    generate_dataset(again, _opts(workers=1))
    assert _digest(again) == _digest(dataset)
    other = tmp_path / "other"
    generate_dataset(other, _opts(n=1, seed=SEED + 1))
    assert _digest(other)["truth/00000/truth.npz"] != _digest(dataset)["truth/00000/truth.npz"]


def test_resume_after_interruption(dataset, tmp_path):
    root = tmp_path / "resume"
    shutil.copytree(dataset, root)
    # simulate a crash: one sample half-written, no info.json yet
    shutil.rmtree(root / "truth" / "00001")
    (root / "meta" / "info.json").unlink()
    (root / ".work" / "00001" / "inputs").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not a gluecell dataset"):
        open_dataset(root)
    res = generate_dataset(root, _opts())
    assert res["generated"] == 1 and res["skipped"] == N - 1
    assert _digest(root) == _digest(dataset)
    assert generate_sample(root, 0, _opts()) == 0.0  # a complete sample is left alone


def test_bad_inputs_give_clear_errors(dataset, tmp_path):
    with pytest.raises(DatasetError, match="other settings"):
        generate_dataset(dataset, _opts(seed=SEED + 5))
    with pytest.raises(DatasetError, match="--n"):
        generate_dataset(tmp_path / "x", _opts(n=0))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="not an empty folder"):
        generate_dataset(tmp_path / "full", _opts())
    bad = tmp_path / "bad.toml"
    bad.write_text("[world]\nno_such_key = 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        load_generate_config(bad)
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    info = json.loads((broken / "meta" / "info.json").read_text())
    info["format"] = "gluecell.dataset/2"
    (broken / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(VersionError):
        open_dataset(broken)
    info["format"] = "gluecell.dataset/1"
    (broken / "meta" / "info.json").write_text(json.dumps(info))
    (broken / "truth" / "00000" / "truth.npz").write_bytes(b"PK\x03\x04corrupt")
    with pytest.raises(FormatError, match="corrupt"):
        open_dataset(broken).truth("00000")
    shutil.rmtree(broken / "truth" / "00002")
    with pytest.raises(DatasetError, match="incomplete"):
        open_dataset(broken)


def test_cli_generate_info_show(dataset, tmp_path):
    exe = [sys.executable, "-m", "gluecell.cell.cli"]
    out = subprocess.run([*exe, "datasets", "info", str(dataset)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"seed {SEED}" in out.stdout and f"total {N}" in out.stdout
    png = tmp_path / "s.png"
    out = subprocess.run(
        [*exe, "datasets", "show", str(dataset), "--sample", "1", "--out", str(png)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    bad = subprocess.run(
        [*exe, "datasets", "generate", "--n", "1", "--seed", "1", "--out", str(tmp_path / "b"), "--styles", "clog"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown style" in bad.stderr and not (tmp_path / "b").exists()
    missing = subprocess.run([*exe, "datasets", "info", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "not a gluecell dataset" in missing.stderr


def test_one_cell_per_dataset_fixed_camera_errors(dataset):
    """Every pair of a dataset is scanned by the same cell: each camera keeps one hand-eye and depth error."""
    from gluecell.datasets.format import WORLD_GENERATOR

    ds = open_dataset(dataset)
    assert ds.info["generator"] == WORLD_GENERATOR
    seen = {}
    for sid in ds.ids():
        truth, frames = ds.truth(sid), ds.inputs(sid)["frames"]
        for part in ("upper", "sole"):
            errs = truth[f"handeye_error_{part}"]
            assert errs.shape == (len(frames[part]), 4, 4) and truth[f"depth_error_{part}"].shape == (len(errs), 2)
            for f, T, E in zip(frames[part], truth[f"T_base_cam_true_{part}"], errs):
                np.testing.assert_allclose(f.T_base_cam, T @ E, atol=1e-12)  # believed = true x the fixed error
            if part in seen:
                assert np.array_equal(seen[part], errs)
            seen[part] = errs


def test_older_world_loads_with_a_warning_and_is_not_resumed(dataset, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(dataset, old)
    info = json.loads((old / "meta" / "info.json").read_text())
    info["generator"] = "gluecell-world/1.0"
    (old / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="gluecell-world/1.0"):
        assert open_dataset(old).ids() == open_dataset(dataset).ids()
    settings = json.loads((old / "meta" / "generate.json").read_text())
    settings["generator"] = "gluecell-world/1.0"
    (old / "meta" / "generate.json").write_text(json.dumps(settings))
    with pytest.raises(DatasetError, match="other settings"):
        generate_dataset(old, _opts())
