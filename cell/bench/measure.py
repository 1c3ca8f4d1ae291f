"""Measured-deformation bench: the actual bite line and pressed sole measured from a scan of the attached pair.

Per test pair the simulated cell scans the pair after pressing (``cell/sim/attached.py``: the upper and the
world's pressed sole in one scene, the upper station's cameras), perception cleans it, and
:func:`gluecell.deformation.measure.measure_attached` registers the free sole's scan onto it (rigid pose,
then CPD). Compared with the world's truth: ``measure_bite_p95_mm`` / ``_max_mm`` (median over pairs) and
``measure_bite_p95_worst_mm``; ``measure_sole_surface_mean_mm`` (the measured pressed sole against the true
pressed sole's surface) and ``measure_rigid_surface_mean_mm`` (the rigid pose alone, i.e. what CPD adds);
``measure_latency_p50_ms`` / ``_p95_ms`` (two scans in, measurement out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bench"]

#: Pairs (quick / full) from the test split.
N_QUICK, N_FULL = 1, 6


def bench(ctx: Any) -> dict[str, float]:
    """Run the measured-deformation bench on ``ctx.dataset``'s test split."""
    from gluecell.cell.sim.attached import evaluate_dataset

    rows = evaluate_dataset(str(ctx.dataset), "test", N_QUICK if ctx.quick else N_FULL, seed=int(ctx.seed))

    def col(key: str) -> np.ndarray:
        return np.array([r[key] for r in rows], dtype=float)

    return {
        "measure_pairs": float(len(rows)),
        "measure_bite_p95_mm": float(np.median(col("bite_p95_mm"))),
        "measure_bite_max_mm": float(np.median(col("bite_max_mm"))),
        "measure_bite_p95_worst_mm": float(col("bite_p95_mm").max()),
        "measure_sole_surface_mean_mm": float(np.median(col("sole_surface_mean_mm"))),
        "measure_rigid_surface_mean_mm": float(np.median(col("rigid_surface_mean_mm"))),
        "measure_latency_p50_ms": float(np.percentile(col("ms_measure"), 50)),
        "measure_latency_p95_ms": float(np.percentile(col("ms_measure"), 95)),
    }
