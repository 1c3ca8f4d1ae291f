"""End-to-end bench table: per-row aggregation over pairs (refusals counted, worst glue above, median errors)."""

import pytest

from gluecell.cell.bench.pipeline import ROWS, _table


def _row(cov, above, p95, **extra):
    return {"refused": 0.0, "true_coverage": cov, "true_band2mm_coverage": cov - 0.3, "true_above_p99_mm": above,
            "true_above_max_mm": above + 0.1, "true_gap_mm2": 100.0, "bite_p95_mm": p95, "bite_max_mm": p95 + 1,
            **extra}  # fmt: skip


def test_table_aggregates_each_row_over_the_pairs():
    refused = {"refused": 1.0}
    pairs = [
        {"marked": _row(0.99, 0.1, 0.5), "predicted": _row(0.95, 2.0, 3.0, latency_ms=300.0, low_confidence=1.0),
         "corrected": _row(0.96, 1.0, 3.0),
         "rigid": refused, "teach": _row(0.98, 1.0, 9.0)},
        {"marked": _row(0.97, 0.3, 0.7), "predicted": _row(0.97, 1.0, 2.0, latency_ms=500.0, low_confidence=0.0),
         "corrected": refused,
         "rigid": refused, "teach": refused},
        {"marked": refused, "predicted": _row(0.93, 0.0, 4.0, latency_ms=400.0, low_confidence=1.0),
         "corrected": refused,
         "rigid": _row(0.9, 5.0, 7.0), "teach": refused},
    ]
    t = _table(pairs)
    assert t["e2e_pairs"] == 3
    assert [t[f"e2e_{r}_planned"] for r in ROWS] == [2, 3, 1, 1, 1]
    assert t["e2e_marked_true_coverage_mean"] == pytest.approx(0.98)
    assert t["e2e_marked_true_above_max_mm"] == pytest.approx(0.4)  # the worst pair
    assert t["e2e_predicted_bite_p95_mm"] == pytest.approx(3.0)  # median over pairs
    assert t["e2e_predicted_low_confidence"] == 2
    assert t["e2e_latency_p50_ms"] == pytest.approx(400.0)
    assert 480.0 < t["e2e_latency_p95_ms"] <= 500.0
    assert t["e2e_rigid_true_above_p99_mm"] == pytest.approx(5.0)


def test_table_with_every_pair_refused_has_counts_only():
    t = _table([{r: {"refused": 1.0} for r in ROWS}])
    assert all(t[f"e2e_{r}_planned"] == 0 for r in ROWS)
    assert "e2e_marked_true_coverage_mean" not in t and "e2e_latency_p50_ms" not in t
