"""Teach once, corrected per pair by the model: the taught bite line moved by the predicted depth change.

Lines that teach once have, per style, size and side, a taught pair: its upper and sole scanned by the same
cell, and the bite line a person taught on that upper. Replaying the taught line (placed by rigid
registration) misses what differs in each new pair. Here the reduced model is run on both pairs and only its
*difference* is used: the taught line, registered onto the new upper, is moved along the side (along the
bottom normal ``n_b``) by the mean over the outline of ``depth(new pair) - depth(taught pair)``, then
projected onto the new upper's scan. The model's systematic errors (the heel-counter knee, the scans' bias
at the rim) are the same on both pairs and cancel; the pair-to-pair changes it does model (the sole's wall
height and its Poisson contraction under this pair's hoop stretch, this upper's side) come through. Only the
mean is used: per-station differences of two scans are dominated by scan scatter (measured: keeping three
perimeter harmonics of the difference was worse on the world's validation pairs).

Measured on the world's *train* split (28 pairs, dataset seed 9001, perception scans): per-pair p95 median
1.37 mm (worst 2.34) against 1.26 mm (1.88) for plain teach-once; the same with the shift halved 1.29 (2.26) or
left out 1.33 (2.20). The depth change the model reads from two scans scatters by about as much as the
pair-to-pair change it is after (the world's sidewall error is 0.4 mm; the scans' rim read moves with the
placement), so in this world it does not improve on teach-once. The tests check the mechanism on cases with
known answers (same pair: no shift; a wall 2 mm lower: the line 2 mm nearer the bottom).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from gluecell.core.types import PartScan

from .biteline import project_to_surface, surface_polyline
from .profiles import UpperSections
from .reference import apply_T, rigid_icp, seen_sample
from .sections import fill_invalid, periodic_interp

__all__ = ["TaughtPair", "register_taught_line", "moved_line"]


@dataclass
class TaughtPair:
    """The style's taught pair as the cell scanned it (``base_link``, metres).

    Attributes:
        upper: (points (n, 3), normals (n, 3)) of the taught upper, bottom up at the upper station.
        sole: (points (m, 3), normals (m, 3)) of the taught sole, footbed up at the sole station.
        bite_line: (k, 3) the taught bite line on that upper.
        material: the taught sole's material class ("eva", ...), or None: taken to be the new pair's. When both
            are known, the learnt per-material depth offsets (:mod:`.calibration`) of the two differ and move the line.
        cache: the model's solution on the taught pair, per material (filled on first use).
    """

    upper: tuple[np.ndarray, np.ndarray]
    sole: tuple[np.ndarray, np.ndarray]
    bite_line: np.ndarray
    material: str | None = None
    cache: dict = field(default_factory=dict, repr=False)

    def scans(self) -> tuple[PartScan, PartScan]:
        """The taught upper and sole as :class:`PartScan`."""
        return (
            PartScan(part="upper", points=self.upper[0], normals=self.upper[1], item_id="taught"),
            PartScan(part="sole", points=self.sole[0], normals=self.sole[1], item_id="taught"),
        )


def register_taught_line(taught: TaughtPair, upper: PartScan) -> tuple[np.ndarray, float]:
    """The taught line placed on ``upper`` by rigid ICP of the taught upper's seen surface: ((k, 3), rms m)."""
    T, rms = rigid_icp(seen_sample(*taught.upper), upper.points, upper.normals)
    return apply_T(T, taught.bite_line), rms


def moved_line(
    line: np.ndarray, shift: float, us: UpperSections, upper: PartScan, sigma: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Move a registered line ``shift`` metres down the side (along ``-n_b``), onto the scan, resampled.

    Returns the closed line (m, 3) and its per-point sigma (m,) interpolated from the per-station ``sigma``.
    """
    th, _ = us.frame.polar(line)
    n_b = fill_invalid(us.theta, us.n_b, us.valid)
    n = periodic_interp(th, us.theta, n_b)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    tree = cKDTree(upper.points)
    moved = project_to_surface(line - shift * n, upper.points, upper.normals, tree)
    sig = periodic_interp(th, us.theta, sigma)
    return surface_polyline(moved, sig, upper.points, upper.normals, spacing, tree=tree)
