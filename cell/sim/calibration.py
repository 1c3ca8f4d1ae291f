"""A simulated hand-eye calibration run: the robot moves a ChArUco board in front of a fixed camera."""

from __future__ import annotations

import numpy as np

__all__ = ["simulated_calibration_inputs"]


def simulated_calibration_inputs(
    seed: int, n_poses: int = 25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, np.ndarray]:
    """What a real calibration run gives the cell, plus the simulator's truth for the report.

    Returns:
        (images (n, h, w) uint8, reported T_base_flange (n, 4, 4), factory K (3, 3), dist (5,),
        camera serial, and the truth: T_base_cam (4, 4), used only to report the error).
    """
    from gluecell.datasets.world.calibration import CalibrationSimConfig, simulate_calibration_run

    run = simulate_calibration_run(seed, CalibrationSimConfig(n_poses=n_poses))
    return run.images, run.T_base_flange, run.K, run.dist, run.serial, run.T_base_cam_true
