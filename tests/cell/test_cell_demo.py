"""``gluecell demo``: one pair through scan -> bite line -> plan, with its row and picture."""

from gluecell.cell.cli.demo import PASS_ABOVE_MM, PASS_COVERAGE, run_demo

#: A hand-marked line (0.3 mm marking noise) must be within this of the true line (p95, mm).
MARKED_P95_TOL_MM = 1.0
#: The marked line's pair of seed 8 as sprayed by the simulated cell (reworked world, issue 12): measured glue
#: 0.14 mm above the true line and 98.3 % coverage; bounds with room for the spray's scatter. (Seed 7's sole is
#: refused by the sole planner on the reworked world's scan: issue 15's robust planning.)
MARKED_ABOVE_TOL_MM = 1.0
MARKED_MIN_COVERAGE = 0.95


def test_demo_runs_a_pair_and_reports_against_truth(tmp_path):
    rows = run_demo(tmp_path, n=1, seed=8, bite_line="marked")
    assert len(rows) == 1
    row = rows[0]
    assert row["style"] == "sneaker"  # styles cycle from the sneaker
    assert row["ms"]["perception"] > 0
    assert 0 < row["bite_p95_mm"] < MARKED_P95_TOL_MM and row["bite_max_mm"] >= row["bite_p95_mm"]
    assert (tmp_path / "00000_pair.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "00000_upper.ply").is_file()
    assert row["line"] == "operator"
    # this pair is planned and sprayed (seed 8 is deterministic), and its verdict follows from the sprayed figures
    assert (tmp_path / "00000_plan.png").read_bytes()[:4] == b"\x89PNG"
    ok = row["above_mm"] <= PASS_ABOVE_MM and row["coverage"] >= PASS_COVERAGE
    assert row["verdict"] == ("pass" if ok else "rework"), row
    assert MARKED_MIN_COVERAGE <= row["coverage"] <= 1 and row["above_mm"] < MARKED_ABOVE_TOL_MM and row["robot_s"] > 0


def test_demo_hands_an_uncertain_prediction_to_the_operator(tmp_path):
    """World 2 (issue 12): the demo's predictor (style references + shipped calibration) is refused on the first
    pair of seed 7 (calibrated sigma floor 1.06 mm, over the cell's 1 mm limit; on world 1 it planned that pair
    at 1.20 mm p95 with no glue above): the pair goes to the operator, who marks the line, as on the line."""
    row = run_demo(tmp_path, n=1, seed=7, bite_line="predicted")[0]
    assert row["line"].startswith("operator (prediction refused: bite-line uncertainty"), row["line"]
    assert row["ms"]["deformation"] > 0
    assert 0 < row["bite_p95_mm"] < MARKED_P95_TOL_MM  # the operator's marked line
    assert row["verdict"] in ("pass", "rework") or row["verdict"].startswith("to human ("), row["verdict"]
