"""World 2: a second, independent synthetic shoe world (a test set; nothing is fitted on it).

Written from ``FACTS.md`` and physical reasoning without reading world 1 (``datasets/world/``):
other lasts (board-lasted boots with near-sharp feather edges, flat court shoes, high toe spring),
thin sharp-cornered cup-sole walls designed on their own CAD last, a hoop-stretch + spring-bed
settle attach, and other sensors (passive stereo at short range with texture-dependent noise, a
laser profiler's raw cloud). Every number is argued in ``datasets/world2/README.md``.
Ground truth: pipeline packages never import this package.
"""

from .config import STYLES, Scanner2Config, World2Config
from .generate import GENERATOR2_VERSION, generate_sample2, load_world2_config
from .pair import Pair2, make_pair2

__all__ = ["STYLES", "World2Config", "Scanner2Config", "GENERATOR2_VERSION", "generate_sample2",
           "load_world2_config", "Pair2", "make_pair2"]  # fmt: skip
