"""Hand-eye (eye-to-hand) calibration on the simulated run: accuracy against the world's truth,
method comparison, the calibration file, the CLI, and bad input."""

import argparse
import json

import numpy as np
import pytest

from gluecell.core.errors import FormatError, GlueCellError, ValidationError, VersionError
from gluecell.datasets.world.calibration import CalibrationSimConfig, simulate_calibration_run
from gluecell.perception.calibration import (
    HANDEYE_FORMAT,
    METHODS,
    HandEyeError,
    calibrate_eye_to_hand,
    load_handeye,
    save_handeye,
    solve_eye_to_hand,
)
from gluecell.perception.charuco import BoardNotFound, BoardSpec, board_pose, detect_board
from gluecell.perception.registration import pose_error

#: Goal of the issue: hand-eye error against the simulated truth.
GOAL_MM = 0.3
GOAL_DEG = 0.1
#: Per-image board pose accuracy expected from sub-pixel ChArUco corners at 0.3-0.4 m, once the
#: intrinsics are refined (the world's camera differs from its factory intrinsics).
PNP_MEAN_TOL_MM = 0.25
#: Refined intrinsics against the camera's true ones, pixels.
INTRINSICS_TOL_PX = 1.0
N_POSES = 25
#: The CLI test uses a short run (12 poses) to stay fast; its error is correspondingly larger.
CLI_TOL_MM = 0.6


@pytest.fixture(scope="module")
def run():
    return simulate_calibration_run(7, CalibrationSimConfig(n_poses=N_POSES))


@pytest.fixture(scope="module")
def outcome(run):
    return calibrate_eye_to_hand(list(run.images), run.T_base_flange, run.K, run.dist, run.board, METHODS)


def _centre(spec: BoardSpec) -> np.ndarray:
    return np.array([*spec.size_m, 0.0]) / 2


def _poses(run, outcome) -> list[np.ndarray]:
    return [detect_board(run.images[i], outcome.K, outcome.dist, run.board).T_cam_board for i in outcome.used]


def test_intrinsics_are_refined_and_board_poses_match_the_truth(run, outcome):
    assert len(outcome.used) >= N_POSES - 2, outcome.skipped
    assert np.abs(outcome.K - run.K_true).max() < INTRINSICS_TOL_PX
    assert outcome.reproj_rms_px < 0.2
    X, Y = run.T_base_cam_true, run.T_flange_board_true
    errs = [
        pose_error(P, np.linalg.inv(X) @ run.T_base_flange_true[i] @ Y, _centre(run.board)[None])[0]
        for i, P in zip(outcome.used, _poses(run, outcome))
    ]
    assert np.mean(errs) < PNP_MEAN_TOL_MM


def test_handeye_meets_goal_and_methods_are_compared(run, outcome):
    results = outcome.results
    assert list(results) == list(METHODS)
    errors = {m: pose_error(r.T_base_cam, run.T_base_cam_true) for m, r in results.items()}
    # the method the calibration file keeps (the lowest residual) is the one that must meet the goal
    kept = next(m for m, r in results.items() if r is outcome.best)
    mm, deg = errors[kept]
    assert mm <= GOAL_MM and deg <= GOAL_DEG, (kept, errors)
    # two methods really were run: different algorithms give (slightly) different answers
    assert not np.allclose(results["tsai"].T_base_cam, results["park"].T_base_cam, atol=1e-12)
    for r in results.values():
        assert r.n_poses == len(outcome.used)
        assert 0 < r.residuals["rms_mm"] < 1.0 and 0 < r.residuals["rms_deg"] < 0.5
    assert outcome.best.residuals["rms_mm"] == min(r.residuals["rms_mm"] for r in results.values())
    assert pose_error(outcome.best.T_flange_board, run.T_flange_board_true)[0] < 2 * GOAL_MM


def test_simulated_run_is_deterministic_and_reports_noisy_robot_poses():
    cfg = CalibrationSimConfig(n_poses=2)
    a, b = simulate_calibration_run(3, cfg), simulate_calibration_run(3, cfg)
    c = simulate_calibration_run(4, cfg)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.T_base_flange, b.T_base_flange)
    assert not np.allclose(a.T_base_cam_true, c.T_base_cam_true)
    d = np.linalg.norm(a.T_base_flange[:, :3, 3] - a.T_base_flange_true[:, :3, 3], axis=1)
    assert np.all(d > 0) and np.all(d < 1e-3)  # accuracy-sized (0.1 mm per axis), not zero
    exact = simulate_calibration_run(3, CalibrationSimConfig(n_poses=2, accuracy_sigma_m=0.0, accuracy_sigma_deg=0.0))
    d = np.linalg.norm(exact.T_base_flange[:, :3, 3] - exact.T_base_flange_true[:, :3, 3], axis=1)
    assert np.all(d > 0) and np.all(d < 1e-4)  # repeatability only: ±0.03 mm


def test_unrefined_run_uses_the_given_intrinsics(run):
    n = 6
    imgs, flange = list(run.images[:n]), run.T_base_flange[:n]
    out = calibrate_eye_to_hand(imgs, flange, run.K, run.dist, run.board, ["park"], refine=False)
    assert np.array_equal(out.K, run.K) and out.reproj_rms_px == 0.0
    # the board poses are those of the given (factory) intrinsics
    dets = [detect_board(run.images[i], run.K, run.dist, run.board) for i in out.used]
    poses = [board_pose(d.ids, d.corners_px, run.K, run.dist, run.board)[0] for d in dets]
    direct = solve_eye_to_hand(run.T_base_flange[out.used], poses, "park", board_point=_centre(run.board))
    assert np.array_equal(out.best.T_base_cam, direct.T_base_cam)


def test_calibration_file_round_trips_and_checks_version(tmp_path, outcome):
    res = outcome.results["park"]
    path = tmp_path / "handeye.json"
    save_handeye(path, res, "123456", date="2026-01-02T03:04:05+00:00")
    cal = load_handeye(path)
    assert np.allclose(cal.T_base_cam, res.T_base_cam, atol=1e-12)
    assert (cal.method, cal.camera_serial, cal.date) == ("park", "123456", "2026-01-02T03:04:05+00:00")
    assert cal.residuals == pytest.approx(res.residuals)
    doc = json.loads(path.read_text())
    assert doc["format"] == HANDEYE_FORMAT
    for bad_format in ("gluecell.handeye/2", "gluecell.other/1", None):
        doc["format"] = bad_format
        path.write_text(json.dumps(doc))
        with pytest.raises(VersionError):
            load_handeye(path)
    doc["format"] = HANDEYE_FORMAT
    doc["T_base_cam"][0][0] = 2.0
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="bad hand-eye calibration"):
        load_handeye(path)


def test_bad_input_is_refused(run, outcome):
    used, poses = outcome.used, _poses(run, outcome)
    with pytest.raises(HandEyeError, match=">= 3 poses"):
        solve_eye_to_hand(run.T_base_flange[used][:2], poses[:2])
    with pytest.raises(HandEyeError, match="pair up"):
        solve_eye_to_hand(run.T_base_flange[used], poses[:-1])
    with pytest.raises(HandEyeError, match="unknown hand-eye method"):
        solve_eye_to_hand(run.T_base_flange[used], poses, "magic")
    nan = run.T_base_flange[used].copy()
    nan[1, 0, 3] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        solve_eye_to_hand(nan, poses)
    blank = np.full((run.images.shape[1], run.images.shape[2]), 128, np.uint8)
    with pytest.raises(BoardNotFound, match="retake"):
        detect_board(blank, run.K, run.dist, run.board)
    with pytest.raises(HandEyeError, match="pair up"):
        calibrate_eye_to_hand(list(run.images[:4]), run.T_base_flange[:5], run.K, run.dist, run.board)


def _cli(argv: list[str], errors: list[str] | None = None) -> int:
    """Run ``gluecell calibrate ...`` as cli.main does: a GlueCellError is exit code 2."""
    from gluecell.cell.cli import calibrate as cmd_calibrate

    parser = argparse.ArgumentParser(prog="gluecell")
    cmd_calibrate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GlueCellError as exc:
        if errors is not None:
            errors.append(str(exc))
        return 2


@pytest.mark.slow
def test_cli_sim_then_run_on_the_saved_images(tmp_path, capsys):
    sim_out, run_dir = tmp_path / "sim.json", tmp_path / "run"
    sim_args = ["--out", str(sim_out), "--seed", "5", "--poses", "12", "--save-run", str(run_dir)]
    assert _cli(["calibrate", "sim", *sim_args]) == 0
    printed = capsys.readouterr().out
    assert "tsai" in printed and "daniilidis" in printed and "vs truth" in printed
    truth = simulate_calibration_run(5, CalibrationSimConfig(n_poses=12)).T_base_cam_true
    sim_cal = load_handeye(sim_out)
    assert pose_error(sim_cal.T_base_cam, truth)[0] < CLI_TOL_MM
    assert sim_cal.extra["intrinsics_refined"] and len(sim_cal.extra["methods"]) == len(METHODS)
    out = tmp_path / "run.json"
    inputs = ["--images", str(run_dir), "--robot-poses", str(run_dir / "poses.json")]
    inputs += ["--intrinsics", str(run_dir / "intrinsics.json")]
    assert _cli(["calibrate", "run", *inputs, "--out", str(out), "--method", "park", "--serial", "cam-9"]) == 0
    cal = load_handeye(out)
    assert cal.method == "park" and cal.camera_serial == "cam-9"
    # the saved images are lossless PNGs: the real-data path reproduces the simulated run's park result
    park = sim_cal.extra["methods"]["park"]
    assert pose_error(cal.T_base_cam, truth)[0] == pytest.approx(park["error_mm"], abs=1e-5)
    assert cal.residuals["rms_mm"] == pytest.approx(park["rms_mm"], abs=1e-5)
    # bad input is refused with a message naming the problem, and nothing is written
    good = json.loads((run_dir / "poses.json").read_text())
    bad_out = tmp_path / "bad.json"

    def refused(doc: dict, expected: str) -> None:
        (run_dir / "poses.json").write_text(json.dumps(doc))
        errors: list[str] = []
        assert _cli(["calibrate", "run", *inputs, "--out", str(bad_out)], errors) == 2
        assert expected in errors[0], errors
        assert not bad_out.exists()

    nan = json.loads(json.dumps(good))
    nan["poses"][3]["T_base_flange"][0][3] = float("nan")
    refused(nan, "NaN")
    missing = json.loads(json.dumps(good))
    missing["poses"][2]["image"] = "nope.png"
    refused(missing, "missing or unreadable")
    refused({**good, "format": "gluecell.robot_poses/9"}, "not readable by this version")
    refused({**good, "poses": []}, "non-empty")
    intr = json.loads((run_dir / "intrinsics.json").read_text())
    (run_dir / "intrinsics.json").write_text(json.dumps({**intr, "width": 640}))
    refused(good, "intrinsics say 640x")


def test_board_file_is_strict(tmp_path):
    from gluecell.cell.cli.calibrate import load_board
    from gluecell.core.errors import ConfigError

    path = tmp_path / "board.json"
    path.write_text(json.dumps({"squares_x": 9, "squares_y": 6, "square_m": 0.025, "marker_m": 0.018}))
    spec = load_board(path)
    assert (spec.squares_x, spec.squares_y, spec.square_m, spec.n_corners) == (9, 6, 0.025, 40)
    assert load_board(None) == BoardSpec()
    path.write_text(json.dumps({"squares_x": 9, "colour": "red"}))
    with pytest.raises(ConfigError, match="colour"):
        load_board(path)
    path.write_text(json.dumps({"marker_m": 0.05}))
    with pytest.raises(ConfigError, match="marker_m"):
        load_board(path)
