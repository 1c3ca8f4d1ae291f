"""The simulated human worker who marks a bite line on a pair when the controller asks for one.

On a line, a pair whose predicted bite line is too uncertain to spray goes to the operator, who marks the line
on the lasted upper (pen or stylus); the cell then plans to the marked line. In the embedded default the
simulated cell plays that operator: the world's true line with smooth pen noise
(:func:`gluecell.cell.sim.outcome.marked_bite_line`, 0.3 mm). It lives here, beside the world, because only the
actual system knows where the line is; the controller receives nothing but the marked polyline.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["sim_line_marker"]


def sim_line_marker(world: str | Path) -> Callable[[dict[str, Any]], np.ndarray | None]:
    """``mark(item) -> (m, 3) line in base_link, metres`` for the pairs of the world dataset ``world`` (None for
    an item the world does not hold: the operator cannot mark a pair that is not there)."""
    from gluecell.cell.sim.outcome import marked_bite_line
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(world)

    def mark(item: dict[str, Any]) -> np.ndarray | None:
        try:
            truth = ds.truth(str(item["id"]))
        except (GlueCellError, OSError, KeyError):
            return None
        return marked_bite_line(truth, seed=zlib.crc32(str(item["id"]).encode()))

    return mark
