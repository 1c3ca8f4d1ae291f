"""Votes (majority of all members, deadlines, overrides, identical execution), the WI, and the in-process
factory demo with its breakdowns."""

import json
import math
import time

import pytest

from gluecell.cell.factory.auction import CallForProposals, Proposal, Weights, choose, weighted_index
from gluecell.cell.factory.errors import FactoryError
from gluecell.cell.factory.votes import Ballot, FactoryState, VoteProposal, execute, tally

VOTERS = ["cell-1", "cell-2", "cell-3", "cell-4", "manager"]


def proposal(kind="set-weights", args=None, deadline=None):
    args = args or {"weights": {"cost": 1.0, "deadline": 1.0, "distance": 0.0}}
    return VoteProposal("p-1", "cell-1", kind, args, deadline or time.time() + 10)


def test_majority_of_all_members_not_of_votes_cast():
    b = Ballot(proposal())
    b.cast("cell-1", True, time.time())
    b.cast("cell-2", True, time.time())
    assert tally(b, VOTERS, time.time()) == "open"  # 2 of 5: not yet
    b.cast("manager", True, time.time())
    assert tally(b, VOTERS, time.time()) == "passed"  # 3 of 5
    few = Ballot(proposal())  # 2 yes, 0 no, 3 silent: fails at the deadline although every vote cast was yes
    few.cast("cell-1", True, time.time())
    few.cast("cell-2", True, time.time())
    assert tally(few, VOTERS, few.proposal.deadline + 1) == "failed"
    no = Ballot(proposal())
    for v in ("cell-1", "cell-2", "cell-3"):
        no.cast(v, False, time.time())
    assert tally(no, VOTERS, time.time()) == "failed"  # a majority can no longer be reached


def test_first_vote_counts_and_late_votes_do_not():
    b = Ballot(proposal(deadline=time.time() + 5))
    assert b.cast("cell-1", True, time.time())
    assert not b.cast("cell-1", False, time.time())
    assert not b.cast("cell-2", True, b.proposal.deadline + 0.001)
    assert b.votes == {"cell-1": (True, pytest.approx(time.time(), abs=1))}


def test_operator_override_outranks_the_vote():
    b = Ballot(proposal())
    for v in VOTERS:
        b.cast(v, True, time.time())
    b.override = ("operator-1", False)
    assert tally(b, VOTERS, time.time()) == "failed"
    c = Ballot(proposal())
    c.override = ("operator-1", True)
    assert tally(c, VOTERS, time.time()) == "passed"


def test_contract_is_deterministic_and_executes_once():
    s0 = FactoryState()
    p = proposal()
    s1, s2 = execute(s0, p), execute(FactoryState(), p)
    assert s1.digest() == s2.digest() != s0.digest()
    assert (s1.weights.cost, s1.weights.deadline, s1.weights.distance) == (0.5, 0.5, 0.0)
    assert execute(s1, p) is s1
    with pytest.raises(FactoryError):
        VoteProposal("p-2", "cell-1", "set-weights", {"weights": {"cost": -1, "deadline": 0, "distance": 0}}, 1.0)
    with pytest.raises(FactoryError):
        VoteProposal("p-3", "cell-1", "dissolve-factory", {}, 1.0)


def test_weighted_index_and_choice():
    now = 1000.0
    cfp = CallForProposals("pair-1", 0, "spray-upper", now, now + 100, now + 1, {}, (0.0, 0.0), 100.0, 50.0,
                           Weights(2, 1, 1))
    cheap_far = Proposal(40.0, now + 50, 40.0)
    dear_near = Proposal(80.0, now + 20, 5.0)
    late = Proposal(1.0, now + 101, 0.0)
    assert weighted_index(cfp, cheap_far) == pytest.approx(0.5 * 0.4 + 0.25 * 0.5 + 0.25 * 0.8)
    assert weighted_index(cfp, dear_near) == pytest.approx(0.5 * 0.8 + 0.25 * 0.2 + 0.25 * 0.1)
    assert math.isinf(weighted_index(cfp, late))
    assert choose(cfp, {"a": cheap_far, "b": dear_near, "c": late}) == ("b", pytest.approx(0.475))
    assert choose(cfp, {"z": cheap_far, "y": cheap_far})[0] == "y"  # ties: smallest id, on every replica
    assert choose(cfp, {"c": late}) is None
    back = CallForProposals.from_content(json.loads(json.dumps(cfp.to_content())))
    assert back == cfp


def test_inproc_demo_breakdowns_reauction_exactly_once(tmp_path):
    from gluecell.cell.factory.demo import PROCESSES, run_demo
    from gluecell.cell.factory.ledgercheck import verify_file

    s = run_demo(5, 4, tmp_path / "demo.jsonl", time_scale=0.01, timeout=40)
    assert all(s["products"][f"pair-{k:03d}"]["status"] == "done" for k in range(1, 5))
    assert s["exactly_once"]
    assert s["counts"]["results"] == 4 * len(PROCESSES)
    assert s["counts"]["failures"] >= 1  # the robot fault and/or the vanished cell
    reasons = [h["reason"] for p in s["products"].values() for h in p["history"] if h["event"] == "failure"]
    assert any("last will" in r or "protective stop" in r for r in reasons)
    assert [a["product"] for a in s["alarms"]] == ["pair-size-55"]
    assert s["products"]["pair-size-55"]["status"] == "stopped"
    assert "size 55" in s["alarms"][0]["reason"]
    st = verify_file(tmp_path / "demo.jsonl", keep=True)
    assert st.kinds["alarm"] == 1 and st.kinds["register"] == 5
