"""The tuner's evaluation points split at the line, for the film of a tuning round (issue 15 item 4, fast planning).

A round whose visible glue lands beyond the line is never kept (its coverage is never used), so the round sums the
film on the points beyond the line first and on the rest only when it is safe; the cell grids of both subsets and of
the whole (the ray cast's surface) are built once per part. Each point's film is the same bit for bit
(:func:`~gluecell.pathplan.deposition.footprints`; tests/pathplan/test_planlat_subset.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .deposition import film_at
from .toolpath import BondRegion

__all__ = ["EvalGrids", "FILM_KEYS"]


class EvalGrids:
    """The tuner's evaluation points split into those beyond the line and the rest, with the cell grids of both and
    of all (the ray cast's surface), built once per part (issue 15 item 4): a round sums the film beyond the line
    first, and over the rest only when no visible glue lands beyond it (an unsafe round's coverage is never used).
    Each point's film is the same bit for bit (:func:`~gluecell.pathplan.deposition.footprints`)."""

    def __init__(self, region: BondRegion) -> None:
        from .deposition import GRID_CELL
        from .filmkernel import available, cell_grid

        self.on = available()
        self.region = region
        if self.on:
            pts = region.points
            self.beyond, self.inside = np.flatnonzero(region.signed < 0), np.flatnonzero(~(region.signed < 0))
            self.surface = cell_grid(pts, GRID_CELL)
            self.grids = [cell_grid(pts[i], GRID_CELL) for i in (self.beyond, self.inside)]
        self.rest: Any = None  # set by a round that stopped beyond the line: completes its film and metrics

    def films(self, fp: Any, part: str) -> np.ndarray:
        """(3, n) film of the footprints ``fp``: beyond the line (``part`` "beyond") or the rest ("inside")."""
        idx = self.beyond if part == "beyond" else self.inside
        return film_at(fp, self.region.points[idx], self.region.normals[idx], 3, self.grids[part != "beyond"])

    def complete(self, films: np.ndarray, m: dict[str, float]) -> tuple[np.ndarray, dict[str, float]]:
        """The film over every point and the whole metrics of the round that set :attr:`rest`."""
        fp, metrics = self.rest
        self.rest = None
        films = films.copy()
        films[:, self.inside] = self.films(fp, "inside")
        return films, {**metrics(films), **{k: v for k, v in m.items() if k not in FILM_KEYS}}


#: Metrics of :func:`spray_metrics` that need the film over every point (a round stopped beyond the line has only
#: the ``above_*`` ones).
FILM_KEYS = ("coverage", "coverage_1mm", "gap_area_mm2", "film_mean_mm", "film_p05_mm")
