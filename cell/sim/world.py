"""The simulated cell's physical world, as the evaluator (``cell/bench_*.py``) reaches it.

The bench needs what only the actual system has: the teacher's nominal pair (teach-once baseline), the
cameras, the real spray and a calibration run. On a real line these are physical things; here the
simulated cell plays them from the synthetic world, and this module is the one door to it.
"""

from __future__ import annotations

from gluecell.datasets.world import make_pair
from gluecell.datasets.world.calibration import CalibrationSimConfig, simulate_calibration_run
from gluecell.datasets.world.pair import make_pair_detailed, nominal_params
from gluecell.datasets.world.params import SampleParams
from gluecell.datasets.world.scanner import render_mesh_depth, scan_part
from gluecell.datasets.world.spray import score_sole, score_upper, simulate_spray
from gluecell.datasets.world.variation import BUDGET_GROUPS, neutral

__all__ = [
    "BUDGET_GROUPS",
    "CalibrationSimConfig",
    "SampleParams",
    "make_pair",
    "make_pair_detailed",
    "neutral",
    "nominal_params",
    "render_mesh_depth",
    "world2_styles_and_config",
    "scan_part",
    "score_sole",
    "score_upper",
    "simulate_calibration_run",
    "simulate_spray",
]


def world2_styles_and_config() -> tuple[tuple[str, ...], object, object]:
    """World 2's styles and its default (world, scanner) configuration: what the bench generates its independent
    test world with."""
    from gluecell.datasets.world2 import STYLES, load_world2_config

    world, scanner = load_world2_config(None)
    return tuple(STYLES), world, scanner
