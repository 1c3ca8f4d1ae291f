"""The synthetic shoe world: the "actual system" whose ground truth the cell is measured against.

Pipeline packages must never import this package (DESIGN.md "Ground truth stays on its side");
only ``cell/sim/``, ``cell/bench*.py``, dataset generation and tests may.
"""

from .config import WorldConfig
from .pair import WorldPair, make_nominal_pair, make_pair
from .params import SampleParams, draw_params
from .styles import STYLES

__all__ = ["STYLES", "WorldConfig", "SampleParams", "WorldPair", "make_pair", "make_nominal_pair", "draw_params"]
