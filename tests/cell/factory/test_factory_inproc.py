"""The in-process factory: late bidders count as refusals, an operator's override restarts a stopped product,
and the administrator's key/registration commands."""

import json
import subprocess
import sys
import time

from gluecell.cell.factory.auction import Refusal
from gluecell.cell.factory.demo import demo_members, sim_cell, start_inproc_factory
from gluecell.cell.factory.ledgercheck import verify_file
from gluecell.cell.factory.product import SmartProduct
from gluecell.cell.factory.registry import Registry
from gluecell.cell.factory.runner import Client
from gluecell.cell.factory.site import create_site

REPLY_WINDOW_S = 0.4


def test_late_bidder_is_silent_and_override_restarts_a_stopped_product(tmp_path):
    site = create_site(tmp_path / "site", demo_members(3), broker_files=False)
    cells = [sim_cell(i, 0.01) for i in (1, 2, 3)]
    slow = cells[2]
    fast_can_do = slow.can_do

    def late(cfp):
        time.sleep(REPLY_WINDOW_S * 2)  # answers after reply-by
        return fast_can_do(cfp)

    slow.can_do = late
    hub, manager, agents = start_inproc_factory(site, cells, tmp_path / "l.jsonl", reply_window=REPLY_WINDOW_S)
    agents[2].can_do = late
    operator = Client(site, "operator-1", bus=hub.client("operator-1"))
    operator.start()
    try:
        manager.submit(SmartProduct("pair-1", "customer-1", ["inspect"], step_time_s=5.0))
        assert manager.wait_finished(10, ["pair-1"])
        for a in agents[:2]:
            a.can_do = lambda cfp: Refusal("not available in the time window")
        agents[2].can_do = lambda cfp: Refusal("wrong equipment")
        manager.submit(SmartProduct("pair-2", "customer-2", ["inspect"], step_time_s=5.0))
        assert manager.wait_finished(10, ["pair-2"])
        assert manager.products["pair-2"].status == "stopped"
        answer = operator.override("pair-2", "assign", "cell-2")
        assert answer.action == "agree"
        t_end = time.monotonic() + 10
        while manager.products["pair-2"].status != "done" and time.monotonic() < t_end:
            time.sleep(0.02)
        assert manager.products["pair-2"].status == "done"
        refused = operator.override("pair-1", "resume")  # already done: nothing to override
        assert refused.action == "refuse"
    finally:
        operator.stop()
        for a in agents:
            a.stop()
        manager.stop()
        hub.close()
    st = verify_file(tmp_path / "l.jsonl", keep=True)
    awards = [r["body"] for r in st.records if r["kind"] == "award"]
    assert awards[0]["silent"] == ["cell-3"] and "cell-3" not in awards[0]["bids"]
    alarm = next(r["body"] for r in st.records if r["kind"] == "alarm")
    assert alarm["product"] == "pair-2" and "wrong equipment" in alarm["reason"]
    override = next(r for r in st.records if r["kind"] == "override")
    assert override["author"] == "operator-1" and override["body"]["node"] == "cell-2"
    result = [r for r in st.records if r["kind"] == "result" and r["body"]["product"] == "pair-2"]
    assert len(result) == 1 and result[0]["author"] == "cell-2"


def test_keys_and_registration_cli(tmp_path):
    site = create_site(tmp_path / "site", demo_members(1), broker_files=False)
    run = [sys.executable, "-m", "gluecell.cell.cli", "factory"]
    out = subprocess.run([*run, "keys", "new", "--id", "cell-9", "--out", str(tmp_path / "cell-9.key")],
                         capture_output=True, text=True, timeout=60, check=True)
    pub = json.loads(out.stdout)["public"]
    assert (tmp_path / "cell-9.key").stat().st_mode & 0o077 == 0
    subprocess.run([*run, "register", "--site", str(site.path), "--id", "cell-9", "--role", "cell", "--public", pub,
                    "--processes", "inspect"], capture_output=True, text=True, timeout=60, check=True)
    reg = Registry.load(site.path / "registry.json", pin_admin=site.registry.admin_public)
    assert reg.get("cell-9").public == pub and reg.get("cell-9").processes == ("inspect",)
    bad = subprocess.run([*run, "register", "--site", str(site.path), "--id", "cell/9", "--role", "cell",
                          "--public", pub], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a valid member id" in bad.stderr


def test_manager_restart_resumes_products_from_the_ledger(tmp_path):
    from gluecell.cell.factory.demo import PROCESSES
    from gluecell.cell.factory.ledger import Ledger
    from gluecell.cell.factory.manager import Manager

    site = create_site(tmp_path / "site", demo_members(2), broker_files=False)
    cells = [sim_cell(i, 0.01) for i in (1, 2)]
    path = tmp_path / "l.jsonl"
    hub, manager, agents = start_inproc_factory(site, cells, path, reply_window=0.3)
    try:
        manager.submit(SmartProduct("pair-1", "customer-1", list(PROCESSES), {"size": 40}, step_time_s=5.0))
        t_end = time.monotonic() + 10
        while (manager.products.get("pair-1") is None or manager.products["pair-1"].step < 1) \
                and time.monotonic() < t_end:
            time.sleep(0.005)
        manager.stop()  # the manager goes down after the first step; the cells stay up
        hub.flush()
        with open(path, "ab") as fh:  # and its last write was torn
            fh.write(b'{"t":"rec","seq":')
        ledger = Ledger.open(path, site.identity("manager"), sync=False)
        again = Manager(site.identity("manager"), site.load_registry(), hub.client("manager"), ledger,
                        reply_window=0.3)
        assert again.recover(ledger.recovered) == ["pair-1"]
        assert sorted(again.joined) == ["cell-1", "cell-2"]
        again.start()
        assert again.wait_finished(15, ["pair-1"])
        assert again.products["pair-1"].status == "done"
        again.stop()
    finally:
        for a in agents:
            a.stop()
        hub.close()
    st = verify_file(path, keep=True)
    results = [(r["body"]["step"]) for r in st.records if r["kind"] == "result" and r["body"]["product"] == "pair-1"]
    assert sorted(results) == [0, 1, 2]  # every step once, across the restart
    assert st.kinds["product"] == 1


def test_passed_reassign_vote_and_operator_override_act_on_every_node(tmp_path):
    site = create_site(tmp_path / "site", demo_members(3), broker_files=False)
    cells = [sim_cell(i, 0.01) for i in (1, 2, 3)]
    hub, manager, agents = start_inproc_factory(site, cells, tmp_path / "l.jsonl", reply_window=0.3)
    operator = Client(site, "operator-1", bus=hub.client("operator-1"))
    operator.start()
    try:
        p1 = agents[0].propose_vote("reassign", {"product": "pair-9", "node": "cell-3"}, deadline_s=3)
        t_end = time.monotonic() + 5
        while p1.id not in manager.votes.outcomes and time.monotonic() < t_end:
            time.sleep(0.01)
        assert manager.votes.outcomes[p1.id] == "passed"  # 3 yes of 4 members
        for a in agents:
            a.decide = lambda p: None  # nobody votes on the next one ...
        p2 = agents[1].propose_vote("set-weights", {"weights": {"cost": 0, "deadline": 1, "distance": 0}},
                                    deadline_s=3)
        time.sleep(0.2)
        operator.broadcast_vote("override", {"proposal": p2.id, "decision": True}, p2.id, "override")  # ... a human
        t_end = time.monotonic() + 5
        while p2.id not in manager.votes.outcomes and time.monotonic() < t_end:
            time.sleep(0.01)
        assert manager.votes.outcomes[p2.id] == "passed"
        manager.submit(SmartProduct("pair-9", "customer-1", ["inspect"], step_time_s=5.0))
        assert manager.wait_finished(10, ["pair-9"])
        hub.flush()
        time.sleep(0.3)
        digests = {a.id: a.votes.state.digest() for a in agents} | {"manager": manager.votes.state.digest()}
    finally:
        operator.stop()
        for a in agents:
            a.stop()
        manager.stop()
        hub.close()
    assert len(set(digests.values())) == 1, digests
    st = verify_file(tmp_path / "l.jsonl", keep=True)
    award = next(r["body"] for r in st.records if r["kind"] == "award")
    assert award["winner"] == "cell-3" and award["forced"]
    assert award["cfp"]["weights"] == {"cost": 0.0, "deadline": 1.0, "distance": 0.0}
    outcomes = {r["body"]["proposal"]: r["body"] for r in st.records if r["kind"] == "vote-outcome"}
    assert outcomes[p2.id]["override"] == ["operator-1", True] and outcomes[p2.id]["yes"] == []
    assert any(r["kind"] == "override" and r["author"] == "operator-1" for r in st.records)


def test_hub_enforces_the_broker_acl_and_the_manager_roles(tmp_path):
    from gluecell.cell.factory.messages import encode, new_message

    site = create_site(tmp_path / "site", demo_members(1), broker_files=False)
    hub, manager, agents = start_inproc_factory(site, [sim_cell(1, 0.01)], tmp_path / "l.jsonl", reply_window=0.3)
    cust = hub.client("customer-1")
    cust.connect()
    seen = []
    try:
        cust.subscribe("gcf/cfp/#", lambda t, p: seen.append(t))
        cust.subscribe("gcf/inbox/cell-1", lambda t, p: seen.append(t))
        cust.subscribe("gcf/inbox/customer-1", lambda t, p: seen.append(t))
        manager.submit(SmartProduct("pair-1", "customer-1", ["inspect"], step_time_s=5.0))
        assert manager.wait_finished(10, ["pair-1"])
        ident = site.identity("customer-1")
        fake = new_message("propose", "customer-1", "manager", {"cost": 1, "finish": 1, "distance": 0},
                           conversation_id="pair-1.0.1")
        cust.publish("gcf/inbox/manager", encode(ident, fake))  # a customer may not bid
        cust.publish("gcf/cfp/inspect", encode(ident, fake))  # nor call for proposals: dropped by the hub
        hub.flush()
        time.sleep(0.2)
        hub.flush()
    finally:
        cust.disconnect()
        for a in agents:
            a.stop()
        manager.stop()
        hub.close()
    assert seen == ["gcf/inbox/customer-1"]  # only the refusal of its fake bid, in its own inbox
    assert manager.verifier.refused["unauthorised"] == 1
