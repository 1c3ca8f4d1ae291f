"""``gluecell demo``: one pair through the whole line — the simulated cell as its own process, the controller
over rosbridge, the REAL pipeline (scan -> predict -> plan), spray, the QA station's inspection of the executed
spray (``gluecell.quality.inspect``), route, record; the summary compares the QA verdict with the truth labels."""

from gluecell.cell.cli.demo import run_demo
from gluecell.cell.store import Store

#: On the reworked world (issue 12) the demo's calibrated prediction is refused as too uncertain (sigma 1.06 mm
#: over the 1 mm limit), so the (simulated) operator marks the line: measured 0.53 mm p95 against the true line
#: on the first pair of seed 8 (0.3 mm pen noise). (Seed 7's first sole is refused by the sole planner on the
#: reworked world's scans: issue 15.)
MARKED_P95_TOL_MM = 1.0


def test_demo_runs_one_pair_through_the_line(tmp_path):
    s = run_demo(tmp_path, pairs=1, speed=50.0, seed=8)
    assert (s["state"], s["pairs"]) == ("Complete", 1), s["stop_reason"]
    row = s["rows"][0]
    assert row["style"] == "sneaker"  # styles cycle from the sneaker
    assert row["state"] in ("passed", "rework") and row["verdict_source"].startswith("qa:qa-s101h@")
    assert row["verdict_source"] == row["judged_by"] and s["judges"] == {row["judged_by"]: 1}
    assert row["state"] == ("passed" if row["qa_verdict"] == "pass" else "rework")
    assert row["truth_verdict"] in ("pass", "fail")  # evaluation only, read from the sim's truth folder
    assert row["versus_truth"] in ("caught", "missed", "false reject", "correct pass")
    assert sum(s["versus_truth"].values()) == 1
    assert (tmp_path / "pairs" / "00000_inspection_a1.png").read_bytes()[:4] == b"\x89PNG"
    assert all(row["ms"][k] > 0 for k in ("perception", "deformation", "pathplan"))
    assert row["line"] == "operator" and row["plan_verdict"] in ("ok", "needs_human")
    assert 0 < row["bite_p95_mm"] < MARKED_P95_TOL_MM
    assert row["robot_s"] > 10  # two real spray programs
    assert (tmp_path / "pairs" / "00000_plan.png").read_bytes()[:4] == b"\x89PNG"
    with Store(tmp_path / "cell.db") as store:
        assert {(r["part"], r["status"]) for r in store.sprays.for_item("00000")} == {
            ("upper", "succeeded"), ("sole", "succeeded")}  # fmt: skip
        assert store.plans.latest("00000")["source"] == "real"
