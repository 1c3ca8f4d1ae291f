"""Learned path correction against the world: label semantics and collect -> train -> eval on a tiny dataset."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from gluecell.pathplan.correction import (
    FEATURE_NAMES,
    CorrectionModel,
    CorrectionRefusedError,
    build_mlp,
    correct_plan,
    correct_toolpath,
    load_model,
)

#: Shifts of the passes beside the line in the semantic test (mm, - = towards the line) and how closely the
#: measured glue edge must follow them (slope 1; faces are ~1.25 mm tall, so the edge moves in steps).
SHIFTS_MM = (-1.5, 1.0)
SLOPE_TOL = 0.3
#: Labelled fraction of the edge pass's waypoints (a glue edge found near them).
MIN_LABELLED = 0.9


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    world, scanner = load_generate_config(None)
    out = tmp_path_factory.mktemp("corr") / "ds"
    generate_dataset(out, GenerateOptions(n=3, seed=5, world=world, scanner=scanner, workers=1))
    return out


def _constant(value_mm: float) -> CorrectionModel:
    import torch

    n = len(FEATURE_NAMES)
    net = build_mlp(n, (4,))
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
        net[-1].bias.fill_(value_mm)
    return CorrectionModel(net, np.zeros(n), np.ones(n), np.full(n, -1e9), np.full(n, 1e9))


@pytest.mark.slow
def test_labels_mean_the_shift_that_moves_the_true_glue_edge(dataset):
    from dataclasses import replace

    from gluecell.cell.sim.outcomes import edge_positions, face_geometry, pair_labels, plan_upper
    from gluecell.datasets.format import open_dataset
    from gluecell.datasets.world.spray import simulate_spray

    ds = open_dataset(dataset)
    truth = ds.truth(ds.ids("train")[0])
    pp = plan_upper(truth, 3, scan_points=40_000)
    lab = pair_labels(truth, pp, runs=1, seed=3, margin_mm=0.5)
    assert lab["features"].shape == (len(lab["indices"]), len(FEATURE_NAMES))
    assert np.all(np.isfinite(lab["features"]))
    assert np.isfinite(lab["label_mm"]).mean() >= MIN_LABELLED
    assert np.allclose(lab["label_mm"], 0.5 - lab["edge_mm"][0], equal_nan=True)
    geo = face_geometry(truth)
    assert np.all(geo.signed[np.asarray(truth["upper_bond_faces"], bool)] >= 0)
    # shifting the passes by a few tenths of a mm to 1.5 mm moves the measured glue edge about as much
    # (same spray draw); faces are ~1.25 mm tall, so the edge moves in steps: compare two shifts
    moved = {}
    for shift in SHIFTS_MM:
        res = correct_toolpath(pp.toolpath, pp.region, _constant(shift), t=pp.path.t)
        assert res.applied and np.allclose(res.offsets_m, shift * 1e-3)
        out = simulate_spray(truth["upper_mesh"], replace(pp.path, xyz=res.toolpath.tip), 3000, part="upper")
        moved[shift] = np.nanmean(edge_positions(geo, pp.toolpath.contact[res.indices], out.film_m, out.visible_m))
    slope = (moved[SHIFTS_MM[1]] - moved[SHIFTS_MM[0]]) * 1e3 / (SHIFTS_MM[1] - SHIFTS_MM[0])
    assert abs(slope - 1.0) < SLOPE_TOL, slope
    # the corrected plan is re-solved for the robot: same waypoints, moved tips, a new program (a shift away from
    # the line, which passes the film re-check; 0.5 mm towards it is rolled back on this pair)
    pp2, res = correct_plan(pp, _constant(0.5))
    assert res.applied and pp2.program is not None and pp2.program is not pp.program
    assert correct_plan(pp, _constant(-0.5))[1].diagnostics.get("refused") == "film"
    step = np.linalg.norm(pp2.path.xyz - pp.path.xyz, axis=1)
    assert np.allclose(step[res.indices], 0.5e-3) and np.all(step <= 0.5e-3 + 1e-9)


@pytest.mark.slow
def test_collect_train_eval_records_the_verdict(dataset, tmp_path):
    """Perceived scans (the pair's frames through perception), the operator-marked line: collect -> train ->
    eval --write records the world's verdict and beats_baseline follows the per-world rule."""
    from gluecell.cell.cli import correction as cmd_correction
    from gluecell.pathplan.correction_train import beats_baseline_true, worlds_verdict

    parser = argparse.ArgumentParser()
    cmd_correction.register(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        args = parser.parse_args(["correction", *argv])
        return args.func(args)

    out, model = tmp_path / "outcomes", tmp_path / "model.pt"
    assert run("collect", "--dataset", str(dataset), "--out", str(out), "--split", "train", "--runs", "1",
               "--n", "1", "--lines", "marked") == 0  # fmt: skip
    assert run("train", "--outcomes", str(out), "--out", str(model), "--epochs", "60") == 0
    with pytest.raises(CorrectionRefusedError):
        load_model(model)  # not evaluated yet: off
    assert run("eval", "--dataset", str(dataset), "--model", str(model), "--split", "test", "--lines", "marked",
               "--world", "world1", "--write") == 0  # fmt: skip
    rec = load_model(model, require_beats_baseline=False).record
    held = rec["heldout_worlds"]["world1"]["all"]
    assert held["n"] == 1 and set(held["uncorrected"]) == set(held["corrected"])
    ok, _ = beats_baseline_true(held["uncorrected"], held["corrected"])
    assert held["verdict"] == ("off" if held["applied_fraction"] == 0 else ("wins" if ok else "loses"))
    assert rec["beats_baseline"] is worlds_verdict(rec["heldout_worlds"])[0]
    if rec["beats_baseline"]:
        assert load_model(model).record["beats_baseline"] is True
    else:
        with pytest.raises(CorrectionRefusedError):
            load_model(model)
