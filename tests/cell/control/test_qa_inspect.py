"""The controller inspects every sprayed pair with ``gluecell.quality.inspect`` on the simulated cell's views.

One world pair (seed 8, a sneaker whose line the simulated operator marks) is planned once by the REAL pipeline
and recorded with ``record_replay`` (the recording carries the plan's bite line and sigma, which the QA station
needs); the controller replays it against the simulated cell WITH its world, so the cell sprays the executed
path, renders the inspection views and the controller calls the shipped QA model on them.
"""

import json

import pytest

from gluecell.cell.control import Command, Controller, ControllerConfig, ReplayPipeline, State
from gluecell.cell.control.pipeline import STANDIN_SOURCE

SEED = 8
ITEM = "00000"


@pytest.fixture(scope="module")
def world_and_replay(tmp_path_factory):
    from gluecell.cell.control import RealPipeline
    from gluecell.cell.control.pipeline import record_replay
    from gluecell.cell.control.settings import sim_style_library
    from gluecell.cell.sim.operator import sim_line_marker
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    root = tmp_path_factory.mktemp("qa")
    w, sc = load_generate_config(None)
    generate_dataset(root / "world", GenerateOptions(n=1, seed=SEED, world=w, scanner=sc, styles=("sneaker",)))
    wi = json.loads((root / "world" / "inputs" / ITEM / "workitem.json").read_text())
    item = {"id": ITEM, "style": wi["style"], "size_eu": wi["size_eu"], "side": wi["side"]}
    real = RealPipeline(sim_style_library(), marker=sim_line_marker(root / "world"))
    (root / "replay").mkdir()
    record_replay(real, item, root / "world" / "inputs" / ITEM, root / "replay")
    return root / "world", root / "replay", wi["style"]


def _run(sim, tmp_path, world_and_replay, faults=(), **cfg):
    from gluecell.cell.robot.config import RobotLinkConfig
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.sim.faults import parse_fault
    from gluecell.cell.store import Store

    world, replay, style = world_and_replay
    h = sim([ITEM], world=world, camera_root=tmp_path / "cams")
    for f in faults:
        h.call(lambda f=f: h.cell.inject(parse_fault(f)))
    store = Store(tmp_path / "cell.db")
    store.items.order(ITEM, style)
    link = RosbridgeLink(RobotLinkConfig(port=h.port))
    link.connect(10)
    cfg = {"goal_timeout_margin_s": 5.0, "ready_timeout_s": 3.0, "inspect_pictures": str(tmp_path / "pics"), **cfg}
    ctl = Controller(store, link, ReplayPipeline.load(replay), ControllerConfig(**cfg))
    ctl.start()
    try:
        ctl.command(Command.RESET)
        ctl.wait_for(State.IDLE, 10)
        ctl.command(Command.START)
        assert ctl.wait_for({State.COMPLETE, State.HELD, State.ABORTED}, 90) == State.COMPLETE, ctl.last_error
        return store.items.get(ITEM), store.inspections.for_item(ITEM)
    finally:
        ctl.close(5)
        link.disconnect()
        store.close()


def test_a_clogged_nozzle_is_judged_by_the_qa_model_and_routed_to_rework(sim, tmp_path, world_and_replay):
    item, insp = _run(sim, tmp_path, world_and_replay,
                      faults=[{"kind": "clogged_nozzle", "item": ITEM, "during": "upper", "at_fraction": 0.0,
                               "value": 0.2}])  # fmt: skip
    assert len(insp) == 1
    row = insp[0]
    assert row["source"].startswith("qa:qa-s101h@")  # the shipped, promoted champion judged
    assert row["verdict"] in ("fail", "uncertain")
    assert item["state"] == "rework" and item["verdict"] == row["verdict"]
    kinds = {d["kind"] for d in row["data"]["defects"]}
    assert kinds and kinds <= {"gap", "above", "thin", "blob"}
    assert row["data"]["diagnostics"]["n_views"] == 8
    assert item["reason"].startswith(f"QA {row['data']['model_name']}: {row['verdict']}")
    # the picture with the defects outlined, where the API's inspection.png reads it
    assert row["picture"] and row["picture"].endswith(".png") and (tmp_path / "pics").is_dir()
    from pathlib import Path

    assert Path(row["picture"]).stat().st_size > 1000
    assert all(Path(c).is_file() for c in row["data"]["crops"])
    # the truth labels stay on the sim side, outside the folder the controller read
    truth = json.loads((tmp_path / "inspection_truth" / f"{ITEM}.json").read_text())
    assert truth["faults"]["pressure_factor"] == pytest.approx(0.2)
    assert "gap" in truth["defects"] and truth["verdict"] == "fail"
    views = Path(row["data"]["views"])
    assert views == (tmp_path / "inspection" / ITEM).resolve()
    assert sorted(p.name for p in views.iterdir()) == sorted([*(f"view{k}.npz" for k in range(8)), "views.json"])


def test_the_stand_in_judges_and_is_named_when_no_views_arrive_in_time(sim, tmp_path, world_and_replay):
    item, insp = _run(sim, tmp_path, world_and_replay, inspect_timeout_s=0.05)
    assert len(insp) == 1
    assert insp[0]["source"] == STANDIN_SOURCE
    assert insp[0]["data"]["qa_fallback"].startswith("no inspection views of this spray within")
    assert item["state"] in ("passed", "rework")


def test_uncertain_goes_to_the_human_and_a_force_pass_outranks_the_qa_verdict(tmp_path):
    from gluecell.cell.control import flow
    from gluecell.cell.store import Store

    qa = {"verdict": "uncertain", "cause": "uncertain:gap", "source": "qa:m@1", "data": {"defects": []},
          "reason": "QA m@1: uncertain (gap 0.45) -> to the human"}  # fmt: skip
    with Store(tmp_path / "c.db") as store:
        for i in ("A", "B"):
            store.items.order(i, "sneaker")
            store.items.transition(i, "arrived", expect=("ordered",), attempts=1)
            store.items.transition(i, "planned", expect=("arrived",))
            store.items.transition(i, "sprayed", expect=("planned",))
        a = flow.route_item(store, store.items.get("A"), qa)
        assert (a["state"], a["verdict"], a["reason"]) == ("rework", "uncertain", qa["reason"])
        assert store.inspections.for_item("A")[0]["verdict"] == "uncertain"
        ov = store.overrides.request("force_pass", "lena", "looked at it: the glue is fine", item_id="B")
        store.overrides.resolve(ov, "applied")
        b = flow.route_item(store, store.items.get("B"), {**qa, "verdict": "fail", "cause": "gap"})
        assert (b["state"], b["verdict"], b["cause"]) == ("passed", "pass", "override")
        assert [r["source"] for r in store.inspections.for_item("B")] == ["qa:m@1", "override"]
