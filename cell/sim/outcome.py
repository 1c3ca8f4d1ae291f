"""What really happened in the simulated cell: the world sprays the planned paths and measures the result.

A real cell learns this from inspection; the simulated cell plays the physics (the world's truth-side
spray model) and reports it, so the demo and the bench can show errors against truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bite_line_error_mm", "spray_outcome"]


def bite_line_error_mm(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Distance of each predicted bite-line point from the true polyline: p95 and max, millimetres.

    Args:
        predicted: (m, 3) float64 metres. true: (k, 3) float64 metres, closed polyline (<= 1 mm spacing).
    """
    from scipy.spatial import cKDTree

    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    # densify the true line to 0.1 mm so point-to-vertex distance is point-to-polyline within 0.05 mm
    seg = np.roll(t, -1, axis=0) - t
    n = np.maximum(1, np.ceil(np.linalg.norm(seg, axis=1) / 1e-4).astype(int))
    dense = np.concatenate([t[i] + seg[i] * np.linspace(0, 1, n[i], endpoint=False)[:, None] for i in range(len(t))])
    d, _ = cKDTree(dense).query(p)
    return {"bite_p95_mm": float(np.percentile(d, 95) * 1e3), "bite_max_mm": float(d.max() * 1e3)}


def spray_outcome(truth: dict[str, Any], paths: Any, seed: int) -> dict[str, dict[str, float]]:
    """Spray ``paths`` (a Plan or SprayPaths) on the true parts and score them (see the world's spray model)."""
    from gluecell.datasets.world.spray import spray_and_score

    return spray_and_score(truth, paths, np.random.default_rng(seed))
