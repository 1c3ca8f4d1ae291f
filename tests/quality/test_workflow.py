"""The ML engineers' workflow: train (checkpoints, resume), model files, evaluate, export, registry, CLI."""

import json

import numpy as np
import pytest
import torch

from gluecell.cell.cli import main
from gluecell.quality.errors import ModelError, ModelVersionError, RegistryError, TrainingError
from gluecell.quality.model import load_model, save_model
from gluecell.quality.net import build_unet
from gluecell.quality.registry import Registry
from gluecell.quality.train import TrainConfig, train

TINY = {"batch": 2, "crop": 64, "width": 4, "threads": 1}


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r1"
    rec = train(tiny_data, out, TrainConfig(epochs=1, **TINY))
    return out, rec


def test_train_writes_a_model_with_its_record(run, tiny_data):
    out, rec = run
    m = load_model(out / "model.pt")
    assert m.record["hashes"]["data"] == rec["hashes"]["data"] and len(rec["hashes"]["data"]) == 64
    assert m.record["config"]["width"] == 4 and m.record["image_size"] == [256, 256]
    assert set(m.policy.fail) == {"gap", "above", "thin", "blob"}
    assert (out / "ckpt-last.pt").is_file() and json.loads((out / "config.json").read_text())["config"]["seed"] == 0


def test_resume_continues_and_refuses_changed_config(run, tiny_data):
    out, _ = run
    with pytest.raises(TrainingError, match="not empty"):
        train(tiny_data, out, TrainConfig(epochs=2, **TINY))
    with pytest.raises(TrainingError, match="another config"):
        train(tiny_data, out, TrainConfig(epochs=2, lr=1e-2, **TINY), resume=True)
    rec = train(tiny_data, out, TrainConfig(epochs=2, **TINY), resume=True)
    assert [h["epoch"] for h in rec["history"]] == [1, 2]
    (out / "model.pt").unlink()  # interrupted before the end: finalise from the checkpoint without more epochs
    rec = train(tiny_data, out, TrainConfig(epochs=1, **TINY), resume=True)
    assert len(rec["history"]) == 2 and (out / "model.pt").is_file()
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny_data, out.parent / "fresh", TrainConfig(epochs=1, **TINY), resume=True)


def test_empty_or_missing_dataset_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="not an inspection dataset"):
        train(tmp_path / "nothing", tmp_path / "out", TrainConfig(epochs=1, **TINY))


def test_bad_model_files_are_refused_and_never_replace_a_good_one(run, tmp_path):
    out, _ = run
    good = load_model(out / "model.pt")
    d = torch.load(out / "model.pt", weights_only=True)
    for key, value, err in (("format", "gluecell.qa-model/2", ModelVersionError),
                            ("features_version", 999, ModelVersionError), ("format", "other/1", ModelError)):
        bad = dict(d, **{key: value})
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(err):
            load_model(tmp_path / "bad.pt")
    (tmp_path / "corrupt.pt").write_bytes((out / "model.pt").read_bytes()[:1000])
    with pytest.raises(ModelError, match="corrupt"):
        load_model(tmp_path / "corrupt.pt")
    target = tmp_path / "keep.pt"
    target.write_bytes((out / "model.pt").read_bytes())
    with pytest.raises(ModelError):  # weights of another width than the record says: refused, old file kept
        save_model(target, build_unet(8), dict(good.record))
    assert load_model(target).sha256 == good.sha256


def test_evaluate_reports_per_defect_recall_and_plots(run, tiny_data, tmp_path):
    from gluecell.quality.evaluate import evaluate

    out, _ = run
    res = evaluate(load_model(out / "model.pt"), tiny_data, split="all", json_out=tmp_path / "e.json",
                   plots=tmp_path / "plots")  # fmt: skip
    saved = json.loads((tmp_path / "e.json").read_text())
    assert set(saved["recall"]) == {"gap", "above", "thin", "blob"} and 0 <= saved["false_reject_rate"] <= 1
    assert res["n_views"] == 6 and sum(sum(r.values()) for r in res["confusion"].values()) == 6
    assert (tmp_path / "plots" / "roc.png").stat().st_size > 1000
    assert set(res["classical"]["recall"]) == set(res["recall"])


def test_export_matches_the_model(run, tmp_path):
    from gluecell.quality.export import export_torchscript

    out, _ = run
    m = load_model(out / "model.pt")
    rec = export_torchscript(m, tmp_path / "m.ts")
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.rand(1, 8, 256, 256)
    assert torch.allclose(ts(x), m.net(x), atol=1e-4) and rec["max_abs_error"] < 1e-4


def test_registry_promote_rollback_and_tamper(run, tmp_path):
    out, _ = run
    reg = Registry(tmp_path / "reg")
    reg.register(out / "model.pt", "a")
    reg.register(out / "model.pt", "b")
    with pytest.raises(RegistryError):
        reg.register(out / "model.pt", "a")
    reg.promote("a")
    reg.promote("b")
    reg.promote("a", alias="challenger")
    assert reg.resolve("champion").name == "b.pt"
    assert reg.rollback("champion") == "a" and reg.resolve("champion").name == "a.pt"
    with pytest.raises(RegistryError, match="no earlier"):
        reg.rollback("champion")
    with pytest.raises(RegistryError, match="unknown"):
        reg.promote("zzz")
    (tmp_path / "reg" / "a.pt").write_bytes(b"x" + (tmp_path / "reg" / "a.pt").read_bytes()[1:])
    with pytest.raises(ModelError, match="SHA-256"):
        reg.resolve("champion")


def test_cli_promote_list_inspect(run, tiny_data, tmp_path, capsys):
    from gluecell.datasets.inspection import open_inspection

    out, _ = run
    reg = str(tmp_path / "reg")
    assert main(["qa", "promote", "m1", "--file", str(out / "model.pt"), "--registry", reg]) == 0
    assert main(["qa", "list", "--registry", reg]) == 0
    assert "champion" in capsys.readouterr().out
    ds = open_inspection(tiny_data)
    vid = ds.ids()[0]
    pair, _, view = vid.partition("/")
    args = ["inspect", "--plan", str(tiny_data / "inputs" / pair / "plan.json"), "--view",
            str(tiny_data / "inputs" / pair / f"{view}.npz"), "--registry", reg, "--out", str(tmp_path / "i.json")]
    assert main(args) == 0
    got = json.loads((tmp_path / "i.json").read_text())
    assert got["verdict"] in ("pass", "fail", "uncertain") and got["diagnostics"]["model"].endswith("m1.pt")
    assert main(["inspect", "--plan", str(tmp_path / "missing.json"), "--view", "x.npz", "--registry", reg]) == 2
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    args[4] = str(tmp_path / "bad.npz")
    assert main(args) == 2


def test_shipped_champion_inspects_a_generated_view(tiny_data):
    """The repository ships a promoted model: inspection works on a fresh machine."""
    from gluecell.datasets.inspection import open_inspection
    from gluecell.quality import inspect

    ds = open_inspection(tiny_data)
    vid = ds.ids()[0]
    ins = inspect(ds.view(vid), ds.plan(vid))
    assert ins.verdict in ("pass", "fail", "uncertain")
    assert ins.diagnostics["model"] is not None and np.isfinite(ins.coverage)
