"""The ``factory`` bench section: the protocol's speed through a real mosquitto on loopback, and the ledger's.

* award latency, call for proposals -> award, with ``nodes`` simulated cells (default 50) hosted by
  ``procs`` OS processes (default 10; several paho clients per process on a 2-core machine), one auction at
  a time (p50/p95/max; goal p95 <= 100 ms);
* sustained protocol messages per second through the broker with ``burst`` auctions at once;
* ledger append rate (with and without fsync) and full verification rate from genesis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["bench", "bench_ledger", "bench_mqtt"]


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def bench_ledger(n: int = 2000) -> dict[str, float]:
    """Append ``n`` signed records (fsync off, then 200 with fsync) and verify the file from genesis."""
    from gluecell.cell.factory.crypto import load_identity
    from gluecell.cell.factory.ledger import Ledger, make_record
    from gluecell.cell.factory.ledgercheck import verify_file
    from gluecell.cell.factory.site import create_site

    with tempfile.TemporaryDirectory(prefix="gluecell-ledger-bench-") as tmp:
        site = create_site(Path(tmp) / "site", [("manager", "manager", ()), ("cell-1", "cell", ("inspect",))],
                           broker_files=False)
        doc = site.registry.signed(load_identity(site.path / "admin.key"))
        me, cell = site.identity("manager"), site.identity("cell-1")
        out: dict[str, float] = {}
        for sync, count, key in ((False, n, "ledger_append_per_s"), (True, min(n, 200), "ledger_append_fsync_per_s")):
            path = Path(tmp) / f"l-{sync}.jsonl"
            led = Ledger.create(path, me, doc, sync=sync)
            recs = [make_record(cell, "result", {"product": f"p{i}", "step": 0, "result": {"ok": True}})
                    for i in range(count)]
            t0, c0 = time.perf_counter(), time.process_time()
            for r in recs:
                led.append(r)
            out[key] = count / (time.perf_counter() - t0)
            if not sync:  # CPU-time rate: what the code costs, whatever else the machine is doing
                out["ledger_append_cpu_per_s"] = count / max(time.process_time() - c0, 1e-9)
        t0, c0 = time.perf_counter(), time.process_time()
        st = verify_file(Path(tmp) / "l-False.jsonl")
        out["ledger_verify_per_s"] = len(st.tree) / (time.perf_counter() - t0)
        out["ledger_verify_cpu_per_s"] = len(st.tree) / max(time.process_time() - c0, 1e-9)
        out["ledger_records"] = float(len(st.tree))
    return out


def _start_nodes(site: Any, port: int, nodes: int, procs: int) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ids = [f"cell-{i}" for i in range(1, nodes + 1)]
    groups = [ids[k::procs] for k in range(procs)]
    out = []
    for g in groups:
        conf = {"takt_s": 20, "time_scale": 0.0005, "cost": 50, "processes": ["inspect"]}
        cmd = [sys.executable, "-m", "gluecell.cell.cli", "factory", "node", "--site", str(site.path), "--port",
               str(port), "--id", ",".join(g), "--cell", json.dumps(conf), "--duration", "600"]
        out.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    return out


def bench_mqtt(nodes: int = 50, procs: int = 10, auctions: int = 40, burst: int = 20) -> dict[str, float]:
    """Award latency and message rate with ``nodes`` simulated cells on a real mosquitto on 127.0.0.1."""
    from gluecell.cell.factory.bus.broker import Mosquitto
    from gluecell.cell.factory.bus.mqtt import MqttBus
    from gluecell.cell.factory.crypto import load_identity
    from gluecell.cell.factory.ledger import Ledger
    from gluecell.cell.factory.manager import Manager
    from gluecell.cell.factory.product import SmartProduct
    from gluecell.cell.factory.site import create_site

    with tempfile.TemporaryDirectory(prefix="gluecell-factory-bench-") as tmp:
        members = [("manager", "manager", ())] + [(f"cell-{i}", "cell", ("inspect",)) for i in range(1, nodes + 1)]
        site = create_site(Path(tmp) / "site", members)
        with Mosquitto(site.path) as broker:
            children = _start_nodes(site, broker.port, nodes, procs)
            try:
                ledger = Ledger.create(Path(tmp) / "ledger.jsonl", site.identity("manager"),
                                       site.registry.signed(load_identity(site.path / "admin.key")))  # fsync on, as run
                m = Manager(site.identity("manager"), site.load_registry(),
                            MqttBus("manager", site.password("manager"), port=broker.port), ledger, reply_window=2.0)
                m.start()
                t_end = time.monotonic() + 120
                while len(m.joined) < nodes and time.monotonic() < t_end:
                    time.sleep(0.05)
                joined = len(m.joined)
                for k in range(auctions):  # one at a time: the latency of one auction
                    m.submit(SmartProduct(f"seq-{k}", "manager", ["inspect"], step_time_s=30))
                    m.wait_finished(30, [f"seq-{k}"])
                latencies = list(m.award_latency_s)
                first = [f for f, _ in m.auction_phases_s]
                answers = [a for _, a in m.auction_phases_s]
                sent0, recv0 = m.sent, m.received
                t0 = time.perf_counter()
                for k in range(burst):  # many at once: the sustained message rate
                    m.submit(SmartProduct(f"burst-{k}", "manager", ["inspect"], step_time_s=60))
                m.wait_finished(120, [f"burst-{k}" for k in range(burst)])
                wall = time.perf_counter() - t0
                msgs = (m.sent - sent0) + (m.received - recv0)
                m.stop()
            finally:
                for c in children:
                    c.terminate()
                for c in children:
                    try:
                        c.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        c.kill()
    return {"nodes": float(nodes), "nodes_joined": float(joined), "node_processes": float(procs),
            "award_latency_p50_ms": _pct(latencies, 50) * 1e3, "award_latency_p95_ms": _pct(latencies, 95) * 1e3,
            "award_latency_max_ms": max(latencies) * 1e3 if latencies else float("nan"),
            "first_answer_p50_ms": _pct(first, 50) * 1e3, "all_answers_p50_ms": _pct(answers, 50) * 1e3,
            "all_answers_p95_ms": _pct(answers, 95) * 1e3, "auctions": float(len(latencies)),
            "protocol_msgs_per_s": msgs / wall, "burst_auctions_per_s": burst / wall}


def bench(ctx: Any) -> dict[str, float]:
    """The section run by ``gluecell bench`` (``ctx.quick``: fewer auctions and records)."""
    quick = bool(getattr(ctx, "quick", False))
    out = bench_ledger(500 if quick else 2000)
    out.update(bench_mqtt(50, 10, 10 if quick else 40, 10 if quick else 20))
    return out
