"""The real pipeline applies the planning safety policy (issue 13): a prediction too uncertain to spray goes to
a human (or to the operator who marks the line), and every plan carries its verdict and the line's source."""

import numpy as np
import pytest

from gluecell.cell.control.pipeline import MARKED_MARGIN_SIGMAS, MARKED_SIGMA_M, RealPipeline
from gluecell.cell.control.settings import sim_style_library

SEED = 8  # the demo test's world: its first pair (a sneaker) plans to a marked line

#: A line marked by the (simulated) operator is within this of the true line (p95, mm; pen noise 0.3 mm).
MARKED_P95_MM = 1.0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    root = tmp_path_factory.mktemp("policy") / "world"
    w, sc = load_generate_config(None)
    generate_dataset(root, GenerateOptions(n=1, seed=SEED, world=w, scanner=sc, styles=("sneaker",)))
    return root


def _item(world):
    import json

    wi = json.loads((world / "inputs" / "00000" / "workitem.json").read_text())
    return {"id": "00000", "style": wi["style"], "size_eu": float(wi["size_eu"]), "side": wi["side"]}


@pytest.mark.slow
def test_an_uncertain_prediction_without_an_operator_goes_to_a_human_unplanned(world):
    pp = RealPipeline(sim_style_library()).prepare(_item(world), world / "inputs" / "00000")
    # the shipped calibration's sigma (1.06 mm on the reworked world) is over the predictor's 1 mm limit
    assert (pp.verdict, pp.cause, pp.plan) == ("needs_human", "deformation", None)
    assert "send the pair to a human" in pp.reason and not pp.programs


@pytest.mark.slow
def test_the_operator_marks_the_refused_line_and_the_plan_carries_its_verdict(world):
    from gluecell.cell.bench.deformation import pair_errors
    from gluecell.cell.sim.operator import sim_line_marker
    from gluecell.datasets.format import open_dataset

    asked = []

    def marker(item):
        asked.append(item["id"])
        return sim_line_marker(world)(item)

    pp = RealPipeline(sim_style_library(), marker=marker).prepare(_item(world), world / "inputs" / "00000")
    assert asked == ["00000"]
    plan = pp.plan
    assert plan["line_source"].startswith("operator (prediction refused: bite-line uncertainty")
    assert plan["verdict"] == pp.verdict and isinstance(plan["verdict_reasons"], list)
    # a marked line has the marking tolerance as its sigma: the glue keeps 3 sigma inside it along the whole line
    assert plan["bite_line_sigma"] == pytest.approx([MARKED_SIGMA_M] * len(plan["bite_line_sigma"]))
    assert MARKED_MARGIN_SIGMAS == 3.0
    assert plan["margin_mm"] == pytest.approx(MARKED_MARGIN_SIGMAS * MARKED_SIGMA_M * 1e3)
    assert (pp.verdict == "ok") == (plan["verdict_reasons"] == [])
    if pp.verdict == "ok":
        assert set(pp.programs) == {"upper", "sole"}
    else:  # stored for the human with its reasons, never sprayed
        assert pp.cause == "plan_verdict" and not pp.programs
    truth = open_dataset(world).truth("00000")["bite_line"]
    p95, _ = pair_errors(np.asarray(plan["bite_line"]), truth)
    assert p95 < MARKED_P95_MM


def test_the_cell_loads_the_planner_kernels_before_it_runs_the_line():
    """Loading the compiled film kernels holds the interpreter for up to seconds: the cell does it when its
    pipeline is made, not in a background thread while the robot sprays (a starved heartbeat reads as a lost link)."""
    from gluecell.pathplan import workers

    RealPipeline(sim_style_library())
    assert workers._here is not None and not workers._here.is_alive()
