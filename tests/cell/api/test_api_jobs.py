"""ISA-95 job orders: the whole (state, method) table, dispatch by priority, bad input, idempotency."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gluecell.cell.api.db import ApiDb
from gluecell.cell.api.events import EventLog
from gluecell.cell.api.jobs import METHODS, REMOVED, STATES, TRANSITIONS, JobOrders
from gluecell.cell.api.problems import Problem
from gluecell.cell.store import Store

PARALLEL = 20
KEY = "Idempotency-Key"
PROBLEM = "application/problem+json"


def _jobs(tmp_path):
    store = Store(tmp_path / "j.db")
    return JobOrders(ApiDb(store.db.path), EventLog(store))


def _to_state(jobs, jid, state, body):
    jobs.store(body, start=state != 1, who="t")
    if state >= 3:
        jobs.transition(jid, "_dispatch")
    if state in (4, 5, 6):
        jobs.transition(jid, {4: "Pause", 5: "Stop", 6: "Abort"}[state])


def test_the_whole_state_table_every_method_in_every_state(tmp_path, job_body):
    jobs = _jobs(tmp_path)
    n = 0
    for state in STATES:
        for method in METHODS:
            jid = f"T-{n}"
            n += 1
            _to_state(jobs, jid, state, job_body(jid))
            expected = TRANSITIONS.get((state, method))
            if expected is None:
                with pytest.raises(Problem) as err:
                    jobs.transition(jid, method)
                assert err.value.status == 409 and err.value.extra["ReturnStatus"] == 3, (state, method)
                assert jobs.get(jid)["JobState"]["StateNumber"] == state  # nothing changed
            elif expected == REMOVED:
                jobs.transition(jid, method)
                with pytest.raises(Problem) as err:
                    jobs.get(jid)
                assert err.value.status == 404 and err.value.extra["ReturnStatus"] == 1
            else:
                assert jobs.transition(jid, method)["JobState"]["StateNumber"] == expected, (state, method)
    assert n == len(STATES) * len(METHODS)


def test_removed_ids_are_never_reused_and_unknown_ids_are_404(tmp_path, job_body):
    jobs = _jobs(tmp_path)
    jobs.store(job_body("R-1"), False, "t")
    jobs.transition("R-1", "Cancel")
    with pytest.raises(Problem) as err:
        jobs.store(job_body("R-1"), False, "t")
    assert err.value.status == 409 and err.value.extra["ReturnStatus"] == 4
    with pytest.raises(Problem) as err:
        jobs.transition("nope", "Start")
    assert err.value.extra["ReturnStatus"] == 1


def _wait(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_dispatch_by_priority_when_the_cell_is_free_and_methods_over_http(cell, job_body):
    mes, op = cell["c"]["mes"], cell["c"]["operator"]
    for jid, prio in (("P-low", 1), ("P-high", 5), ("P-mid", 3)):
        r = mes.post("/api/v1/job-orders?start=true", json=job_body(jid, priority=prio), headers={KEY: jid})
        assert r.status_code == 201 and r.json()["JobState"]["StateNumber"] == 2
    time.sleep(0.2)  # the cell is Stopped: nothing runs
    assert all(j["JobState"]["StateNumber"] == 2 for j in mes.get("/api/v1/job-orders").json()["items"])
    cell["applier"].silent = True  # a controller that stopped beating gets no job
    cell["app"].state.store.meta.set("heartbeat", time.time() - 60)
    assert op.post("/api/v1/cell/commands", json={"Command": "Reset", "Reason": "shift start"}).status_code == 200
    time.sleep(0.3)
    assert op.get("/api/v1/cell").json()["ControllerAlive"] is False
    assert mes.get("/api/v1/job-orders?state=3").json()["items"] == []
    cell["applier"].silent = False
    running = _wait(lambda: mes.get("/api/v1/job-orders?state=3").json()["items"])
    assert [j["JobOrder"]["JobOrderID"] for j in running] == ["P-high"]
    items = mes.get("/api/v1/work-items").json()["items"]
    assert [i["id"] for i in items] == ["P-high.00001", "P-high.00002"] and items[0]["job_id"] == "P-high"
    r = op.post("/api/v1/job-orders/P-high/methods", json={"Method": "Resume", "Reason": "not paused"})
    assert r.status_code == 409 and r.json()["ReturnStatus"] == 3 and r.headers["content-type"] == PROBLEM
    r = op.post("/api/v1/job-orders/P-high/methods", json={"Method": "Stop", "Reason": "end of batch"})
    assert r.status_code == 200
    assert mes.get("/api/v1/job-orders/P-high/response").json()["JobState"]["StateText"] == "Ended"
    items = mes.get("/api/v1/work-items").json()["items"]
    assert {i["state"] for i in items if i["job_id"] == "P-high"} == {"skipped"}  # withdrawn
    nxt = _wait(lambda: mes.get("/api/v1/job-orders?state=3").json()["items"])
    assert nxt[0]["JobOrder"]["JobOrderID"] == "P-mid"
    audit = cell["c"]["engineer"].get("/api/v1/audit").json()["items"]
    assert {"user": "operator-1", "action": "Stop", "target": "P-high", "reason": "end of batch"}.items() <= \
        next(a for a in audit if a["action"] == "Stop").items()  # fmt: skip
    assert any(a["action"] == "Resume" and a["outcome"].startswith("refused") for a in audit)


BAD = [
    ({"Quantity": 0}, "MaterialRequirements"), ({"Quantity": 10_001}, "MaterialRequirements"),
    ({"SizeEU": 60}, "MaterialRequirements"), ({"SizeEU": 42.3}, "MaterialRequirements"),
    ({"SizeEU": "abc"}, "MaterialRequirements"), ({"Side": "up"}, "MaterialRequirements"),
]  # fmt: skip


def test_bad_input_is_refused_and_stores_nothing(cell, job_body):
    mes = cell["c"]["mes"]
    cases = [{**job_body("B-1"), "MaterialRequirements": [{**job_body()["MaterialRequirements"][0], **patch}]}
             for patch, _ in BAD]  # fmt: skip
    cases += [{**job_body("B-2"), "Priority": "high"}, {**job_body("B-3"), "Foo": 1}, job_body("bad id!"),
              {**job_body("B-4"), "Description": "x" * 501}, {**job_body("B-5"), "MaterialRequirements": []},
              {**job_body("B-6"), "StartTime": "2030-01-02T00:00:00Z", "EndTime": "2030-01-01T00:00:00Z"},
              {**job_body("B-7"), "StartTime": "2030-01-02T00:00:00"}, {**job_body("B-8"), "Priority": 1e9},
              {**job_body("B-9"), "JobOrderParameters": [{"Name": "p", "Value": "v", "Bad": 1}]}]  # fmt: skip
    for n, body in enumerate(cases):
        r = mes.post("/api/v1/job-orders", json=body, headers={"Idempotency-Key": f"bad-{n}"})
        assert r.status_code == 422, (body, r.text)
        doc = r.json()
        assert r.headers["content-type"] == "application/problem+json" and doc["status"] == 422 and doc["errors"]
    raw = json.dumps(job_body("B-nan")).replace('"SizeEU": 42', '"SizeEU": NaN')
    r = mes.post("/api/v1/job-orders", content=raw, headers={KEY: "nan", "Content-Type": "application/json"})
    assert r.status_code == 422
    r = mes.post("/api/v1/job-orders", json={**job_body("B-s"), "WorkMasterID": "ballet"}, headers={KEY: "s"})
    assert r.status_code == 422 and r.json()["ReturnStatus"] == 4
    r = mes.post("/api/v1/job-orders", json={**job_body("B-big"), "Description": "x" * 70_000},
                 headers={"Idempotency-Key": "big"})  # fmt: skip
    assert r.status_code == 413 and r.json()["title"] == "Payload too large"
    assert mes.get("/api/v1/job-orders").json()["items"] == []
    assert mes.get("/api/v1/job-orders?limit=0").status_code == 422
    assert mes.get("/api/v1/job-orders?cursor=%%%").status_code == 400


def test_idempotency_key_rules_and_parallel_duplicates_make_one_job(cell, job_body):
    mes, url, token = cell["c"]["mes"], cell["url"], cell["tokens"]["mes"]
    assert mes.post("/api/v1/job-orders", json=job_body("I-0")).status_code == 400
    first = mes.post("/api/v1/job-orders", json=job_body("I-1"), headers={"Idempotency-Key": "k-1"})
    again = mes.post("/api/v1/job-orders", json=job_body("I-1"), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    other = mes.post("/api/v1/job-orders", json=job_body("I-2"), headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")

    def post(_):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
            return c.post("/api/v1/job-orders", json=job_body("I-par"), headers={"Idempotency-Key": "k-par"})

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(post, range(PARALLEL)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {201, 409} and codes.count(201) >= 1, codes
    fresh = [r for r in results if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    assert all(r.json()["JobOrder"]["JobOrderID"] == "I-par" for r in results if r.status_code == 201)
    assert all(r.json()["type"].endswith("idempotency-key-in-use") for r in results if r.status_code == 409)
    ids = [j["JobOrder"]["JobOrderID"] for j in mes.get("/api/v1/job-orders").json()["items"]]
    assert ids.count("I-par") == 1 and len(ids) == 2
    later = mes.post("/api/v1/job-orders", json=job_body("I-par"), headers={"Idempotency-Key": "k-par"})
    assert later.status_code == 201 and later.headers["idempotent-replayed"] == "true"


def test_update_before_start_and_cursor_pages(cell, job_body):
    mes = cell["c"]["mes"]
    for n in range(5):
        mes.post("/api/v1/job-orders", json=job_body(f"C-{n}"), headers={"Idempotency-Key": f"c{n}"})
    r = mes.patch("/api/v1/job-orders/C-0", json={"Priority": 9, "MaterialRequirements": [
        {"SizeEU": 40.5, "Side": "right", "Quantity": 7}], "Reason": "more pairs"})  # fmt: skip
    assert r.status_code == 200 and r.json()["JobOrder"]["Priority"] == 9
    assert r.json()["JobResponse"]["Actuals"]["PairsPlanned"] == 7
    assert mes.patch("/api/v1/job-orders/C-0", json={"Foo": 1, "Reason": "bad field"}).status_code == 422
    seen, cursor = [], None
    while True:
        page = mes.get("/api/v1/job-orders", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [j["JobOrder"]["JobOrderID"] for j in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"C-{n}" for n in range(5)]
