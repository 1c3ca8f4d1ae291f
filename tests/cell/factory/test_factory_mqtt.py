"""The factory over a real mosquitto: five cell processes and a manager process (one OS process per node).

One scenario runs once per module (bounded: the manager stops after at most 40 s) and the tests assert
on what it left: the ledger, the manager's summary, the nodes' final states and the probes made while it ran.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from gluecell.cell.factory.auction import CallForProposals, Proposal, choose, weighted_index
from gluecell.cell.factory.bus.broker import Mosquitto
from gluecell.cell.factory.bus.mqtt import MqttBus
from gluecell.cell.factory.crypto import b64e
from gluecell.cell.factory.errors import AuthError
from gluecell.cell.factory.ledgercheck import verify_file
from gluecell.cell.factory.messages import Message, encode, new_message
from gluecell.cell.factory.runner import Client
from gluecell.cell.factory.site import create_site

# No skip: the broker is a declared system dependency (Makefile APT_PACKAGES); without it these tests fail
# with a BusError saying how to install it.

CELLS = {  # cell-3 is by far the cheapest inspector; cell-5 votes no on everything
    "cell-1": {"cost": 60, "location": [2, 0], "processes": ["spray-upper", "inspect"]},
    "cell-2": {"cost": 70, "location": [4, 0], "processes": ["spray-upper", "inspect"]},
    "cell-3": {"cost": 10, "location": [6, 0], "processes": ["inspect"]},
    "cell-4": {"cost": 80, "location": [8, 0], "processes": ["spray-upper", "inspect"]},
    "cell-5": {"cost": 90, "location": [1, 0], "processes": ["inspect"], "vote_yes": []},
}
PRODUCTS = [
    {"id": "pair-best", "owner": "customer-1", "processes": ["inspect"], "step_time_s": 10},
    {"id": "pair-kill", "owner": "customer-2", "processes": ["spray-upper", "inspect"], "step_time_s": 10},
    {"id": "pair-none", "owner": "customer-1", "processes": ["spray-upper"], "requirements": {"size": 55},
     "step_time_s": 10},
]
TIMEOUT_S = 40


def read_ledger(path):
    out = []
    if path.exists():
        for line in path.read_bytes().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("t") == "rec":
                out.append(obj["rec"])
    return out


def wait_for(pred, timeout, step=0.05):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = pred()
        if got:
            return got
        time.sleep(step)
    return None


def cli(*args):
    return [sys.executable, "-m", "gluecell.cell.cli", "factory", *args]


def probe_security(site, port, probes):
    """Customer reads and forged / replayed / expired / malformed messages, sent while the manager runs."""
    c1 = Client(site, "customer-1", port)
    c1.start()
    c2 = Client(site, "customer-2", port)
    c2.start()
    try:
        probes["own"] = c1.progress("pair-best")
        probes["foreign"] = c1.progress("pair-kill")
        probes["ghost"] = c1.progress("no-such-pair")
        snoop = []
        c2.bus.subscribe("gcf/inbox/customer-1", lambda t, p: snoop.append(t))
        c2.bus.subscribe("gcf/cfp/#", lambda t, p: snoop.append(t))
        c1.progress("pair-best")  # delivered to customer-1 only
        ident = c2.identity
        frame = encode(ident, new_message("query-ref", "customer-2", "manager", {"product": "pair-kill"},
                                          conversation_id="q1"))
        c2.bus.publish("gcf/inbox/manager", frame)
        c2.bus.publish("gcf/inbox/manager", frame)  # replayed
        old = Message("query-ref", "customer-2", "manager", {"product": "pair-kill"}, "q2", sent=time.time() - 90,
                      expires=time.time() - 60)
        c2.bus.publish("gcf/inbox/manager", encode(ident, old))  # expired
        xml = (b'<!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><message><action>&b;</action>'
               b"</message>")
        c2.bus.publish("gcf/inbox/manager", b"GCF1 customer-2 " + b64e(ident.sign(xml)).encode() + b"\n" + xml)
        forged = encode(ident, new_message("query-ref", "customer-2", "manager", {"product": "pair-best"},
                                           conversation_id="q3"))
        c2.bus.publish("gcf/inbox/manager", forged.replace(b"pair-best", b"pair-kill"))  # altered in transit
        time.sleep(0.5)
        probes["snooped"] = list(snoop)
    finally:
        c1.stop()
        c2.stop()


def propose_votes(site, port, probes):
    """The non-running member cell-6 proposes two changes and votes yes on the first."""
    c6 = Client(site, "cell-6", port)
    c6.start()
    try:
        now = time.time()
        for pid, kind, args in (("p-weights", "set-weights",
                                 {"weights": {"cost": 0.2, "deadline": 0.6, "distance": 0.2}}),
                                ("p-expel", "expel", {"id": "cell-4"})):
            content = {"proposal": {"id": pid, "proposer": "cell-6", "kind": kind, "args": args,
                                    "deadline": now + 4.0}}
            c6.broadcast_vote("vote-propose", content, pid, "vote-proposal")
        c6.broadcast_vote("vote", {"proposal": "p-weights", "yes": True}, "p-weights", "vote")
        time.sleep(0.3)
        probes["voted"] = True
    finally:
        c6.stop()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mqtt")
    members = [("manager", "manager", ()), ("operator-1", "operator", ()), ("customer-1", "customer", ()),
               ("customer-2", "customer", ())]
    members += [(c, "cell", tuple(p["processes"])) for c, p in CELLS.items()] + [("cell-6", "cell", ())]
    site = create_site(tmp / "site", members)
    (tmp / "products.json").write_text(json.dumps(PRODUCTS))
    ledger = tmp / "ledger.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs, probes = {}, {}
    with Mosquitto(site.path) as broker:
        port = str(broker.port)
        try:
            procs["manager"] = subprocess.Popen(
                cli("manager", "--site", str(site.path), "--port", port, "--ledger", str(ledger), "--products",
                    str(tmp / "products.json"), "--wait-cells", "5", "--timeout", str(TIMEOUT_S),
                    "--reply-window", "1.5", "--summary", str(tmp / "summary.json")),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            for cell, conf in CELLS.items():
                conf = dict(conf, takt_s=20, time_scale=0.15)  # 3 s of work per task
                procs[cell] = subprocess.Popen(cli("node", "--site", str(site.path), "--port", port, "--id", cell,
                                                   "--cell", json.dumps(conf), "--duration", str(TIMEOUT_S + 10)),
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            assert wait_for(lambda: sum(r["kind"] == "product" for r in read_ledger(ledger)) == 3, 30)
            probe_security(site, broker.port, probes)
            propose_votes(site, broker.port, probes)
            award = wait_for(lambda: next((r for r in read_ledger(ledger) if r["kind"] == "award"
                                           and r["body"]["conversation"].startswith("pair-kill.0.")), None), 20)
            victim = award["body"]["winner"]
            time.sleep(0.5)  # mid-task: the work takes 3 s
            procs[victim].send_signal(signal.SIGKILL)
            probes["victim"] = victim
            procs["manager"].wait(timeout=TIMEOUT_S + 10)
        finally:
            outs = {}
            for name, p in procs.items():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                try:
                    outs[name] = p.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    outs[name] = p.communicate(timeout=5)
        with pytest.raises(AuthError):
            MqttBus("cell-1", "wrong-password", port=broker.port).connect(5)
    summary = json.loads((tmp / "summary.json").read_text())
    finals = {}
    for name, (out, _) in outs.items():
        for line in out.decode().splitlines():
            if line.startswith("{") and '"votes"' in line:
                finals[name] = json.loads(line)
    return {"summary": summary, "ledger": ledger, "records": read_ledger(ledger), "probes": probes,
            "finals": finals, "outs": outs, "site": site}


def test_processes_logged_no_crash(run):
    for name, (_, err) in run["outs"].items():
        assert b"Traceback" not in err, (name, err.decode()[-2000:])


def test_ledger_verifies_and_holds_everything(run):
    st = verify_file(run["ledger"], pin_admin=run["site"].registry.admin_public)
    kinds = st.kinds
    assert kinds["genesis"] == 1 and kinds["register"] == 5 and kinds["product"] == 3
    assert kinds["award"] >= 4 and kinds["result"] == 3 and kinds["failure"] == 1 and kinds["alarm"] == 1
    assert kinds["vote-proposal"] == 2 and kinds["vote-outcome"] == 2 and kinds["vote"] >= 5


def test_awards_go_to_the_best_weighted_index(run):
    awards = [r["body"] for r in run["records"] if r["kind"] == "award"]
    assert len(awards) >= 4
    for a in awards:
        cfp = CallForProposals.from_content(a["cfp"])
        bids = {n: Proposal.from_content(b) for n, b in a["bids"].items()}
        wis = {n: weighted_index(cfp, b) for n, b in bids.items()}
        assert a["winner"] == min(wis, key=lambda n: (wis[n], n)) == choose(cfp, bids)[0]
        assert a["wi"] == pytest.approx(wis[a["winner"]])
        for n, b in a["bids"].items():  # each bidder computed the same WI as the auctioneer
            assert b["wi"] == pytest.approx(wis[n])
    best = next(a for a in awards if a["product"] == "pair-best")
    assert best["winner"] == "cell-3"
    assert set(best["bids"]) == set(CELLS) and best["silent"] == []
    weights = [a["cfp"]["weights"] for a in awards]
    assert weights[0] == pytest.approx({"cost": 0.5, "deadline": 0.3, "distance": 0.2})


def test_killed_cell_task_is_reauctioned_and_completed_once(run):
    victim = run["probes"]["victim"]
    recs = run["records"]
    fail = [r["body"] for r in recs if r["kind"] == "failure"]
    assert [(f["product"], f["step"], f["node"]) for f in fail] == [("pair-kill", 0, victim)]
    assert "last will" in fail[0]["reason"]
    results = Counter((r["body"]["product"], r["body"]["step"]) for r in recs if r["kind"] == "result")
    assert results == {("pair-best", 0): 1, ("pair-kill", 0): 1, ("pair-kill", 1): 1}
    redo = next(r for r in recs if r["kind"] == "result" and r["body"]["product"] == "pair-kill")
    assert redo["author"] != victim
    prods = run["summary"]["products"]
    assert prods["pair-kill"]["status"] == "done" and prods["pair-best"]["status"] == "done"


def test_no_able_node_alarms_the_manager(run):
    alarms = run["summary"]["alarms"]
    assert [a["product"] for a in alarms] == ["pair-none"]
    assert "size 55" in alarms[0]["reason"]
    assert run["summary"]["products"]["pair-none"]["status"] == "stopped"


def test_forged_replayed_expired_malformed_refused(run):
    refused = run["summary"]["refused"]
    assert refused.get("forged") == 1 and refused.get("replayed") == 1
    assert refused.get("expired") == 1 and refused.get("malformed") == 1


def test_customer_reads_only_its_own_product(run):
    p = run["probes"]
    assert p["own"].action == "inform" and p["own"].content["product"] == "pair-best"
    assert p["own"].content["owner"] == "customer-1"
    assert p["foreign"].action == "refuse" and "history" not in p["foreign"].content
    assert p["ghost"].action == "refuse"
    assert p["snooped"] == []  # the broker's ACL: no one else's inbox, no calls for proposals


def test_votes_pass_and_fail_by_majority_of_all_members(run):
    votes = run["summary"]["votes"]
    assert votes["outcomes"] == {"p-weights": "passed", "p-expel": "failed"}
    assert votes["weights"] == pytest.approx([0.2, 0.6, 0.2])
    outcome = {r["body"]["proposal"]: r["body"] for r in run["records"] if r["kind"] == "vote-outcome"}
    assert len(outcome["p-weights"]["members"]) == 7 and len(outcome["p-weights"]["yes"]) >= 4
    digests = {n: f["votes"]["state"] for n, f in run["finals"].items()}
    survivors = set(CELLS) - {run["probes"]["victim"]}
    assert survivors <= set(digests)
    assert len({digests[n] for n in survivors} | {votes["state"]}) == 1  # identical on every node
