"""The live event stream: ids, Last-Event-ID resume without loss or duplicates, kinds filter, stream limits."""

from __future__ import annotations

import threading
import time

import httpx

from gluecell.cell.api.sse_client import parse_stream, stream_events

N_EVENTS = 60
DROP_AFTER = 17


def _publisher(events, n, period_s=0.005):
    def run():
        for k in range(n):
            events.publish("test", f"event {k}", {"k": k})
            time.sleep(period_s)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_resume_with_last_event_id_loses_nothing_and_repeats_nothing(cell):
    events, url, token = cell["app"].state.events, cell["url"], cell["tokens"]["viewer"]
    start = events.last_seq()
    got = []
    pub = _publisher(events, N_EVENTS)
    gen = stream_events(url, token, after=start)
    for ev in gen:  # first connection: read some, then drop it mid-stream
        if ev.event == "test":
            got.append((int(ev.id), ev.data["data"]["k"]))
        if len(got) == DROP_AFTER:
            break
    gen.close()
    time.sleep(0.1)  # more events land while the client is away
    last = str(got[-1][0])
    for ev in stream_events(url, token, last_event_id=last):
        if ev.event == "test":
            got.append((int(ev.id), ev.data["data"]["k"]))
        if got[-1][1] == N_EVENTS - 1:
            break
    pub.join()
    assert [k for _, k in got] == list(range(N_EVENTS))  # all, in order, once
    ids = [i for i, _ in got]
    assert ids == sorted(set(ids))


def test_job_events_are_streamed_and_kinds_filter(cell, job_body):
    url, token = cell["url"], cell["tokens"]["viewer"]
    start = cell["app"].state.events.last_seq()
    cell["app"].state.events.publish("other", "noise")
    cell["c"]["mes"].post("/api/v1/job-orders?start=true", json=job_body("E-1"), headers={"Idempotency-Key": "e1"})
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        with c.stream("GET", f"/api/v1/events?after={start}&kinds=job") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            ev = next(parse_stream(r.iter_lines()))
    assert ev.event == "job" and int(ev.id) == start + 2 and ev.data["seq"] == start + 2  # "other" skipped
    assert ev.data["data"]["JobOrderID"] == "E-1" and ev.data["data"]["StateText"] == "AllowedToStart"


def test_stream_limit_per_user_and_bad_last_event_id(cell):
    url, token = cell["url"], cell["tokens"]["viewer"]
    limit = cell["app"].state.settings.max_streams_per_user
    clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
               for _ in range(limit + 1)]  # fmt: skip
    streams = []
    try:
        for c in clients[:limit]:
            s = c.stream("GET", "/api/v1/events")
            r = s.__enter__()
            assert r.status_code == 200
            streams.append(s)
        deadline = time.monotonic() + 5
        while sum(cell["app"].state.streams.values()) < limit and time.monotonic() < deadline:
            time.sleep(0.02)
        r = clients[limit].get("/api/v1/events")
        assert r.status_code == 429 and r.json()["type"].endswith("too-many-streams")
    finally:
        for s in streams:
            s.__exit__(None, None, None)
        for c in clients:
            c.close()
    bad = httpx.get(url + "/api/v1/events", headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "x;1"})
    assert bad.status_code == 422
