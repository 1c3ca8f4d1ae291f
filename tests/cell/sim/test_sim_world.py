"""The simulated cell with a world: cameras at the scan station, faults from configuration, the world's spray of
what was really executed, counted per pair. Driven through the real robot link (roslibpy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gluecell.cell.robot import GoalStatus, RobotLinkConfig
from gluecell.cell.robot.cameras import CameraTimeoutError, wait_for_frames
from gluecell.cell.robot.rosbridge import RosbridgeLink
from gluecell.cell.sim.cell import SimCell, SimCellConfig
from gluecell.cell.sim.executed import spray_executed
from gluecell.cell.sim.faults import FaultSpec
from gluecell.cell.sim.run import start_in_thread
from gluecell.core.types import RobotProgram

#: the seat sensor's displacement of the part_off_station fault below (m)
OFFSET_M = 0.02


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    root = tmp_path_factory.mktemp("simworld") / "world"
    w, scanner = load_generate_config(None)
    generate_dataset(root, GenerateOptions(n=1, seed=5, world=w, scanner=scanner, workers=1))
    return root


def _pass_over_upper(truth: dict, q_now: np.ndarray) -> RobotProgram:
    """A straight pass 12 mm above the upper's bottom, nozzle down, gun on over its middle (IK per waypoint)."""
    from gluecell.pathplan.kinematics import solve_path

    v = np.asarray(truth["upper_mesh"].vertices)
    x = np.linspace(v[:, 0].min() + 0.03, v[:, 0].max() - 0.03, 60)
    xyz = np.stack([x, np.full_like(x, v[:, 1].mean()), np.full_like(x, v[:, 2].max() + 0.012)], axis=1)
    q = solve_path(xyz, np.tile([1.0, 0.0, 0.0, 0.0], (len(x), 1))).q
    t = np.linspace(0.0, 1.0, len(x))  # ~0.2 m in 1 s
    return RobotProgram(joint_names=RobotLinkConfig().joint_names, t=t, q=q, gun_events=((0.1, True), (0.9, False)))


def test_cameras_faults_from_config_and_the_spray_outcome(world, tmp_path):
    from gluecell.datasets.format import open_dataset
    from gluecell.perception.camera.sim import find_frame_files

    ds = open_dataset(world)
    ids = [*ds.ids(), "X-no-frames"]  # the second pair's cameras time out (it has no world sample either)
    faults = [FaultSpec("camera_timeout", item=1, during="arrive"),
              FaultSpec("part_off_station", item=ids[0], during="arrive", value=OFFSET_M)]  # fmt: skip
    cell = SimCell(SimCellConfig(speed=20.0), ids=ids, world=world, camera_root=tmp_path / "cams", faults=faults)
    with start_in_thread(cell) as sim, RosbridgeLink(RobotLinkConfig(port=sim.port)) as link:
        assert link.camera_root == str((tmp_path / "cams").resolve())
        link.index_conveyor()
        first = link.wait_item(2.0)
        folder = wait_for_frames(link.camera_root, first, timeout_s=2.0)
        assert first == ids[0] and len(find_frame_files(folder, "upper")) >= 1
        assert json.loads((folder / "workitem.json").read_text())["item_id"] == first
        state = link.index_conveyor()
        assert state.at_spray == first and state.seated is False  # knocked off its fixtures: the seat sensor says so
        with pytest.raises(CameraTimeoutError):
            wait_for_frames(link.camera_root, link.wait_item(2.0), timeout_s=0.3)
        prog = _pass_over_upper(ds.truth(first), link.state().q)
        assert link.execute(prog, goal_id=f"{first}:upper:1").wait(10.0).ok
        assert link.goal_status(f"{first}:upper:1").status == GoalStatus.SUCCEEDED
        out = sim.call(lambda: cell.server.services["/gluecell_sim/outcome"][1]({"item_id": first}), timeout_s=120)
        goal = cell.goals[f"{first}:upper:1"]
    assert out["sprays"] == {"upper": 1, "sole": 0} and out["offset_m"] == [OFFSET_M, 0.0, 0.0]
    scores = out["scores"]["upper"]
    assert 0.0 <= scores["coverage"] <= 1.0 and scores["film_mean_mm"] >= 0.0
    # the same executed stretch sprayed by a clogged nozzle (20 % flow) leaves less than half the film
    from gluecell.cell.sim.executed import gun_on_paths

    paths = gun_on_paths(goal.gun_on_tau, goal.gun_on_q, cell.cfg.robot.tick_s)
    assert len(paths) == 1 and paths[0]["part"] == "upper"
    clogged = spray_executed(ds.truth(first), paths, int(first), flow_factor=0.2, offset_m=(OFFSET_M, 0.0, 0.0))
    assert scores["film_mean_mm"] > 0.0
    assert clogged["upper"]["film_mean_mm"] < 0.5 * scores["film_mean_mm"]
