"""Task API and console bench: latency under load while the cell runs, lossless events, state to screen.

The line runs in this process as ``gluecell demo`` runs it (:class:`~gluecell.cell.bench.api_line.EmbeddedLine`:
the simulated cell as its own process, the controller with the real pipeline, the API on 127.0.0.1), on the
pairs of the bench world's most frequent style, sent as one MES job order. The load comes from another process
(so its client work does not share the server's interpreter).

Metrics:
- ``api_p50_ms`` / ``api_p99_ms`` / ``api_rps`` / ``api_errors``: :data:`CLIENTS` concurrent clients (each its
  own viewer token) on loopback, each sending a GET (cell state 50 %, work items, KPIs, job orders, alarms)
  then waiting :data:`THINK_S`, for :data:`LOAD_S` while the cell is in Execute. Goal p99 <= 50 ms.
- ``api_saturated_p99_ms`` / ``api_saturated_rps``: the same clients with no think time (closed loop).
- ``api_idle_p50_ms`` / ``api_idle_p99_ms``: the first load for half as long before the job starts (controller
  connected, cell Stopped): what the pipeline's work in the same process adds is the difference.
- ``events_clients`` / ``events_expected`` / ``events_lost`` / ``events_duplicated``: :data:`SSE_CLIENTS`
  event-stream clients while events are published (the cell's own plus :data:`SSE_EVENTS` bench events); midway
  the API server is stopped and started again on the same port (every stream is cut); the clients reconnect
  with ``Last-Event-ID``. Lost/duplicated count over all clients against the event log.
- ``state_to_screen_p50_ms`` / ``_p95_ms``: a console in Debian chromium (Playwright); the cell is cycled
  (Reset, Start: Idle, Execute, Complete) through the API; from the controller's state event to the console's
  PackML field showing it (a MutationObserver's clock; same machine clock).
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing as mp
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bench", "load_clients", "CLIENTS", "SSE_CLIENTS"]

CLIENTS = 100
THINK_S = 0.5
LOAD_S = (8.0, 20.0)  # quick, full
SSE_CLIENTS = 20
SSE_EVENTS = (100, 400)
STATE_CYCLES = (4, 10)
_CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update"]
_PATHS = ("/api/v1/cell", "/api/v1/cell", "/api/v1/work-items?limit=50", "/api/v1/kpis", "/api/v1/job-orders",
          "/api/v1/alarms")  # fmt: skip


async def _get(reader: Any, writer: Any, request: bytes) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; returns the status (the body is read and dropped)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(v.split(b":", 1)[1]) for v in lines if v.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _client(url: str, token: str, until: float, think_s: float, out: list[float], errs: list[int]) -> None:
    """A client on its own keep-alive connection. Raw asyncio streams, not an HTTP library: on a 2-core machine the
    load generator's own CPU per request must stay far below the server's, or it measures itself."""
    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    k = hash(token) % len(_PATHS)
    if think_s:  # clients poll with independent phases (a synchronised start would measure one burst of 100)
        await asyncio.sleep(random.uniform(0.0, think_s))
    try:
        while time.monotonic() < until:
            k = (k + 1) % len(_PATHS)
            req = (f"GET {_PATHS[k]} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
            t0 = time.perf_counter()
            try:
                ok = await asyncio.wait_for(_get(reader, writer, req), 30) == 200
            except Exception:
                ok = False
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
            out.append((time.perf_counter() - t0) * 1e3)
            if not ok:
                errs.append(1)
            if think_s:
                await asyncio.sleep(think_s)
    finally:
        writer.close()


def load_clients(url: str, tokens: list[str], duration_s: float, think_s: float, queue: Any) -> None:
    """Run one async client per token for ``duration_s``; put ``(latencies_ms, errors, wall_s)`` on ``queue``."""
    lat: list[float] = []
    errs: list[int] = []

    wall = [0.0]

    async def main() -> None:
        t0 = time.monotonic()
        await asyncio.gather(*(_client(url, t, t0 + duration_s, think_s, lat, errs) for t in tokens))
        wall[0] = time.monotonic() - t0

    asyncio.run(main())
    queue.put((lat, len(errs), wall[0]))


def _load(url: str, tokens: list[str], duration_s: float, think_s: float) -> tuple[list[float], int, float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=load_clients, args=(url, tokens, duration_s, think_s, q), daemon=True)
    p.start()
    result = q.get(timeout=duration_s + 120)
    p.join(30)
    return result


def _pairs(dataset: Path) -> list[dict[str, Any]]:
    from gluecell.cell.bench.api_line import world_pairs

    pairs = world_pairs(dataset)
    style = collections.Counter(p["style"] for p in pairs).most_common(1)[0][0]
    return [p for p in pairs if p["style"] == style]


def _wait_state(client: Any, states: set[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = client.get("/api/v1/cell").json()["State"]
        if st in states:
            return st
        time.sleep(0.1)
    raise TimeoutError(f"cell not in {states} within {timeout_s} s")


def _command(op: Any, cmd: str) -> None:
    r = op.post("/api/v1/cell/commands", json={"Command": cmd, "Reason": "api bench"})
    if r.status_code >= 300:
        raise RuntimeError(f"{cmd}: {r.status_code} {r.text[:200]}")


def _sse_follower(url: str, token: str, after: int, stop: threading.Event, got: list[int]) -> None:
    """Follow the stream; on any drop reconnect with Last-Event-ID (retrying while the server is down)."""
    from gluecell.cell.api.sse_client import stream_events

    last: str | None = None
    while not stop.is_set():
        try:
            for ev in stream_events(url, token, last_event_id=last, after=after if last is None else None,
                                    timeout_s=5.0):  # fmt: skip
                if ev.id is not None:
                    got.append(int(ev.id))
                    last = ev.id
                if stop.is_set():
                    return
        except Exception:
            time.sleep(0.05)


def _sse_phase(line: Any, quick: bool) -> dict[str, float]:
    from gluecell.cell.api.server import start_api_server

    token = line.token("viewer")
    events = line.api.app.state.events
    start = events.last_seq()
    stop = threading.Event()
    got: list[list[int]] = [[] for _ in range(SSE_CLIENTS)]
    threads = [threading.Thread(target=_sse_follower, args=(line.url, token, start, stop, g), daemon=True)
               for g in got]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(1.0)
    n = SSE_EVENTS[0 if quick else 1]
    for k in range(n):
        if k == n // 2:  # forced reconnect: the server goes away and comes back on the same port
            port, settings = line.api.port, line.api.app.state.settings
            line.api.stop()
            time.sleep(0.3)
            line.api = start_api_server("127.0.0.1", port, db_path=settings.db_path, media_roots=settings.media_roots,
                                        settings=settings)  # fmt: skip
            events = line.api.app.state.events
        events.publish("bench", f"bench event {k}", {"k": k})
        time.sleep(0.01)
    end = events.last_seq()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any((g[-1] if g else 0) < end for g in got):
        time.sleep(0.1)
    stop.set()
    expected = [int(r[0]) for r in line.store.db.query("SELECT seq FROM events WHERE seq > ? AND seq <= ?",
                                                         (start, end))]  # fmt: skip
    lost = dup = 0
    for g in got:
        seen = [s for s in g if s <= end]
        dup += len(seen) - len(set(seen))
        lost += len(set(expected) - set(seen))
    return {"events_clients": float(SSE_CLIENTS), "events_expected": float(len(expected)),
            "events_lost": float(lost), "events_duplicated": float(dup)}  # fmt: skip


def _screen_phase(line: Any, op: Any, quick: bool) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=_CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(line.url + "/#token=" + line.token("operator"))
        page.wait_for_selector("#state[data-state]:not([data-state=''])", timeout=20_000)
        page.evaluate("window.__seen = []; new MutationObserver(() => window.__seen.push([document.getElementById("
                      "'state').textContent, Date.now()])).observe(document.getElementById('state'), "
                      "{childList: true, characterData: true, subtree: true})")  # fmt: skip
        t0 = time.time()
        for _ in range(STATE_CYCLES[0 if quick else 1]):
            _command(op, "Reset")
            _wait_state(op, {"Idle"}, 20)
            time.sleep(0.3)
            _command(op, "Start")
            _wait_state(op, {"Complete", "Suspended", "Execute"}, 20)
            time.sleep(0.3)
            if op.get("/api/v1/cell").json()["State"] != "Complete":
                _command(op, "Stop")
                _wait_state(op, {"Stopped"}, 20)
        time.sleep(1.0)
        seen = page.evaluate("window.__seen")
        browser.close()
    entered: list[tuple[float, str]] = []
    for e in line.store.events.since(0, 100_000, kind="state"):
        if e["ts"] >= t0:
            entered.append((e["ts"], e["message"].split(" -> ")[-1].split(" (")[0].strip().title()))
    lat = []
    for name, t_ms in seen:
        before = [ts for ts, st in entered if st == name and ts <= t_ms / 1e3]
        if before:
            lat.append(t_ms / 1e3 - before[-1])
    ms = np.asarray(lat) * 1e3
    return {"state_to_screen_n": float(len(ms)), "state_to_screen_p50_ms": float(np.percentile(ms, 50)),
            "state_to_screen_p95_ms": float(np.percentile(ms, 95))}  # fmt: skip


def bench(ctx: Any) -> dict[str, float]:
    """The ``api`` section (see the module docstring)."""
    import tempfile

    import httpx

    from gluecell.cell.api.app import ApiSettings
    from gluecell.cell.bench.api_line import EmbeddedLine, job_for

    pairs = _pairs(Path(ctx.dataset))
    settings = ApiSettings(rate_per_s=200.0, burst=400.0, max_streams_per_user=SSE_CLIENTS + 2)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gluecell-api-bench-") as tmp, \
            EmbeddedLine(Path(tmp), Path(ctx.dataset), speed=20.0, api_settings=settings) as line:  # fmt: skip
        op = httpx.Client(base_url=line.url, headers={"Authorization": f"Bearer {line.token('engineer')}"}, timeout=30)
        mes = httpx.Client(base_url=line.url, headers={"Authorization": f"Bearer {line.token('mes')}"}, timeout=30)
        from gluecell.cell.api.auth import add_user

        tokens = [add_user(line.api.app.state.db, f"load-{k}", "viewer") for k in range(CLIENTS)]
        duration = LOAD_S[0 if ctx.quick else 1]
        lat, errs, wall = _load(line.url, tokens, duration / 2, THINK_S)  # reference: the controller waits, Stopped
        out.update({"api_idle_p50_ms": float(np.percentile(lat, 50)), "api_idle_p99_ms": float(np.percentile(lat, 99))})
        mes.post("/api/v1/job-orders?start=true", json=job_for("BENCH-1", pairs), headers={"Idempotency-Key": "b1"})
        _command(op, "Reset")
        _wait_state(op, {"Idle"}, 30)
        time.sleep(0.5)  # the job is dispatched in Idle
        _command(op, "Start")
        _wait_state(op, {"Execute"}, 30)
        lat, errs, wall = _load(line.url, tokens, duration, THINK_S)
        out.update({"api_clients": float(CLIENTS), "api_p50_ms": float(np.percentile(lat, 50)),
                    "api_p99_ms": float(np.percentile(lat, 99)), "api_rps": len(lat) / wall,
                    "api_errors": float(errs)})  # fmt: skip
        lat, errs, wall = _load(line.url, tokens, duration / 2, 0.0)
        out.update({"api_saturated_p99_ms": float(np.percentile(lat, 99)), "api_saturated_rps": len(lat) / wall,
                    "api_saturated_errors": float(errs)})  # fmt: skip
        out["api_cell_state_during_load"] = float(line.store.packtags.load().get("StateCurrent", 0))
        out.update(_sse_phase(line, ctx.quick))
        op = httpx.Client(base_url=line.url, headers={"Authorization": f"Bearer {line.token('engineer')}"}, timeout=30)
        _wait_state(op, {"Complete", "Held", "Stopped", "Aborted", "Suspended"}, 600)
        st = op.get("/api/v1/cell").json()["State"]
        if st != "Complete":
            _command(op, "Stop" if st != "Aborted" else "Clear")
            _wait_state(op, {"Stopped"}, 30)
        job = op.get("/api/v1/job-orders/BENCH-1/response").json()["Actuals"]
        out["api_job_pairs_done"] = float(job["PairsDone"])
        out.update(_screen_phase(line, op, ctx.quick))
    return out
