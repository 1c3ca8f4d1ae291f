"""The simulated cell's physical world, as the evaluator (``cell/bench_*.py``) reaches it.

The bench needs what only the actual system has: the teacher's nominal pair (teach-once baseline), the
cameras, the real spray and a calibration run. On a real line these are physical things; here the
simulated cell plays them from the synthetic world, and this module is the one door to it.
"""

from __future__ import annotations

from gluecell.datasets.world import make_pair
from gluecell.datasets.world.calibration import CalibrationSimConfig, simulate_calibration_run
from gluecell.datasets.world.scanner import scan_part
from gluecell.datasets.world.spray import score_upper, simulate_spray

__all__ = [
    "CalibrationSimConfig",
    "make_pair",
    "scan_part",
    "score_upper",
    "simulate_calibration_run",
    "simulate_spray",
]
