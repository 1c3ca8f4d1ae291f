"""``gluecell factory ...``: sites, keys and registration, nodes and the manager over MQTT, the ledger,
votes and overrides, and the in-process demo. Thin: parse, call :mod:`gluecell.cell.factory`, print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _site(args: argparse.Namespace) -> Any:
    from gluecell.cell.factory.site import load_site

    return load_site(args.site, pin_admin=getattr(args, "admin_pub", None))


def _cmd_site_init(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.demo import PROCESSES
    from gluecell.cell.factory.site import create_site

    procs = tuple(args.processes.split(",")) if args.processes else PROCESSES
    members = [("manager", "manager", ())]
    members += [(f"operator-{i}", "operator", ()) for i in range(1, args.operators + 1)]
    members += [(f"customer-{i}", "customer", ()) for i in range(1, args.customers + 1)]
    members += [(f"cell-{i}", "cell", procs) for i in range(1, args.cells + 1)]
    site = create_site(args.dir, members)
    print(f"site {args.dir}: {len(members)} members; administrator key {site.registry.admin_public}")
    return 0


def _cmd_keys_new(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.crypto import Identity

    ident = Identity.generate(args.id)
    ident.save(args.out)
    print(json.dumps({"id": ident.id, "public": ident.public_b64, "key": str(args.out)}))
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    """The administrator adds (or replaces) a member's public key, role and processes, and re-signs."""
    from gluecell.cell.factory.crypto import load_identity
    from gluecell.cell.factory.registry import Member

    site = _site(args)
    procs = tuple(p for p in (args.processes or "").split(",") if p)
    site.registry.add(Member(args.id, args.role, args.public, procs))
    site.registry.save(site.path / "registry.json", load_identity(site.path / "admin.key"))
    print(f"registered {args.id} ({args.role}) in {site.path / 'registry.json'}")
    return 0


def _cmd_broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from gluecell.cell.factory.bus.broker import Mosquitto

    site = _site(args)
    site.write_broker_files()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Mosquitto(site.path, args.port) as broker:
        print(f"mosquitto on 127.0.0.1:{broker.port} (Ctrl-C stops it)", flush=True)
        try:
            while not stop.wait(0.5) and broker.proc is not None and broker.proc.poll() is None:
                pass
        except KeyboardInterrupt:
            pass
    return 0


def _cmd_node(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.runner import run_node

    cell = json.loads(args.cell) if args.cell else {}
    return run_node(_site(args), args.id.split(","), args.port, cell=cell, duration=args.duration)


def _cmd_manager(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.runner import run_manager
    from gluecell.core.fileio import read_json

    products = read_json(args.products) if args.products else []
    out = run_manager(_site(args), args.port, Path(args.ledger), products, wait_cells=args.wait_cells,
                      timeout=args.timeout, reply_window=args.reply_window,
                      summary_path=Path(args.summary) if args.summary else None, stay=args.stay)
    print(json.dumps({k: out.get(k) for k in ("counts", "alarms", "refused", "joined")}, default=str))
    return 0


def _cmd_ledger_verify(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.errors import LedgerError
    from gluecell.cell.factory.ledgercheck import compare, verify_file

    try:
        st = verify_file(args.file, pin_admin=args.admin_pub)
        if args.against:
            compare(st, verify_file(args.against, pin_admin=args.admin_pub))
    except LedgerError as exc:
        where = f"record {exc.seq}" if exc.seq is not None else f"line {exc.index}"
        print(f"LEDGER BAD at {where}: {exc.message}", file=sys.stderr)
        return 1
    print(f"ledger OK: {len(st.tree)} records, {len(st.heads)} signed heads, root {st.tree.root().hex()}"
          + (f"; consistent with {args.against}" if args.against else ""))
    print("records by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(st.kinds.items())))
    return 0


def _cmd_ledger_list(args: argparse.Namespace) -> int:
    """Print the records (verified from genesis first); ``--follow`` keeps printing new ones as they come."""
    import time

    from gluecell.cell.factory.ledgercheck import verify_file

    shown = 0
    while True:
        st = verify_file(args.file, keep=True)
        for seq, r in enumerate(st.records[shown:], start=shown):
            if not args.kind or r["kind"] == args.kind:
                body = json.dumps(r["body"], sort_keys=True)[:args.width]
                print(f"{seq:6d} {r['kind']:15s} {r['author']:12s} {body}", flush=True)
        shown = len(st.records)
        if not args.follow:
            return 0
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:
            return 0


def _cmd_ledger_prove(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.ledgercheck import verify_file

    st = verify_file(args.file)
    proof = st.tree.inclusion_proof(args.record)
    print(json.dumps({"record": args.record, "size": len(st.tree), "root": st.tree.root().hex(),
                      "leaf": st.tree.levels[0][args.record].hex(), "path": [p.hex() for p in proof]}, indent=2))
    return 0


def _client(args: argparse.Namespace) -> Any:
    from gluecell.cell.factory.runner import Client

    c = Client(_site(args), args.id, args.port)
    c.start()
    return c


def _cmd_query(args: argparse.Namespace) -> int:
    c = _client(args)
    try:
        answer = c.progress(args.product)
    finally:
        c.stop()
    print(json.dumps({"action": answer.action, **answer.content}, indent=2))
    return 0 if answer.action == "inform" else 1


def _cmd_vote(args: argparse.Namespace) -> int:
    import time
    import uuid

    from gluecell.cell.factory.votes import VoteProposal

    c = _client(args)
    try:
        if args.vote_cmd == "propose":
            p = VoteProposal(f"p-{uuid.uuid4().hex[:12]}", args.id, args.kind, json.loads(args.args),
                             time.time() + args.deadline)
            c.broadcast_vote("vote-propose", {"proposal": p.to_content()}, p.id, "vote-proposal")
            print(json.dumps(p.to_content()))
        elif args.vote_cmd == "cast":
            c.broadcast_vote("vote", {"proposal": args.proposal, "yes": args.yes}, args.proposal, "vote")
        else:
            c.broadcast_vote("override", {"proposal": args.proposal, "decision": args.decision == "pass"},
                             args.proposal, "override")
        time.sleep(0.3)  # let QoS 1 deliver before the connection closes
    finally:
        c.stop()
    return 0


def _cmd_override(args: argparse.Namespace) -> int:
    c = _client(args)
    try:
        answer = c.override(args.product, args.action, args.node)
    finally:
        c.stop()
    print(json.dumps({"action": answer.action, **answer.content}))
    return 0 if answer.action == "agree" else 1


def _cmd_watch(args: argparse.Namespace) -> int:
    """Print alarms, proposals, votes and overrides as they happen (what this member's ACL lets it read)."""
    import queue
    import time

    c = _client(args)
    c.watch()
    t_end = time.monotonic() + args.duration
    try:
        while time.monotonic() < t_end:
            try:
                m = c.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            body = {k: v for k, v in m.content.items() if k != "record"}
            print(f"{time.strftime('%H:%M:%S')} {m.action:14s} {m.sender:12s} {json.dumps(body)[:200]}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gluecell.cell.factory.demo import run_demo

    s = run_demo(args.nodes, args.tasks, args.ledger, time_scale=args.time_scale, timeout=args.timeout)
    done = sum(p["status"] == "done" for p in s["products"].values())
    lat = sorted(s["award_latency_s"])
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1e3 if lat else float("nan")
    print(f"factory demo: {args.nodes} cells, {done}/{args.tasks} products done in {s['wall_s']:.1f} s; "
          f"awards {s['counts'].get('awards', 0)}, failures re-auctioned {s['counts'].get('failures', 0)}, "
          f"award latency p95 {p95:.1f} ms (in-process bus)")
    for pid, p in s["products"].items():
        route = " ".join(f"{h['event']}:{h['node']}" for h in p["history"] if h["event"] in ("done", "failure"))
        print(f"  {pid:12s} {p['status']:8s} {route}")
    for a in s["alarms"]:
        print(f"  ALARM {a['product']}: {a['reason']}")
    print(f"ledger {s['ledger']['path']}: {s['ledger']['records']} records, verified from genesis; "
          f"every step completed exactly once: {s['exactly_once']}")
    return 0 if s["exactly_once"] and done == args.tasks else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    import os

    from gluecell.cell.bench.factory import bench_ledger, bench_mqtt
    from gluecell.core.fileio import atomic_write_json

    out = bench_ledger(args.records)
    out.update(bench_mqtt(args.nodes, args.procs, args.auctions, args.burst))
    out["load_avg_1min"] = os.getloadavg()[0]
    for k, v in out.items():
        print(f"{k:28s} {v:12.4g}")
    if args.out:
        atomic_write_json(args.out, {"format": "gluecell.bench/1", "sections": {"factory": out}})
    return 0


def _add_site(p: argparse.ArgumentParser, *, member: bool = False, port: bool = False) -> None:
    p.add_argument("--site", required=True, help="site folder (gluecell factory site init)")
    p.add_argument("--admin-pub", help="pin the administrator's public key (base64)")
    if member:
        p.add_argument("--id", required=True, help="member id (its key is in SITE/keys)")
    if port:
        p.add_argument("--port", type=int, required=True, help="mosquitto port on 127.0.0.1")


def _register_ledger_votes(fs: Any) -> None:
    """The ``ledger``, ``query`` and ``vote`` verbs."""
    lg = fs.add_parser("ledger", help="list, verify or prove ledger records")
    ls = lg.add_subparsers(dest="ledger_cmd", metavar="ACTION", required=True)
    p = ls.add_parser("verify", help="verify from genesis; exits 1 naming the first bad record")
    p.add_argument("file")
    p.add_argument("--against", help="another copy: detect a fork between the two")
    p.add_argument("--admin-pub", help="pin the administrator's public key (base64)")
    p.set_defaults(func=_cmd_ledger_verify)
    p = ls.add_parser("list", help="print the records (after verifying them)")
    p.add_argument("file")
    p.add_argument("--kind", help="only this kind (award, result, alarm, vote, ...)")
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--follow", action="store_true", help="keep watching the file (auctions as they happen)")
    p.set_defaults(func=_cmd_ledger_list)
    p = ls.add_parser("prove", help="RFC 6962 inclusion proof of one record")
    p.add_argument("file")
    p.add_argument("--record", type=int, required=True)
    p.set_defaults(func=_cmd_ledger_prove)
    p = fs.add_parser("query", help="ask a product's progress (customers: their own products only)")
    _add_site(p, member=True, port=True)
    p.add_argument("--product", required=True)
    p.set_defaults(func=_cmd_query)
    v = fs.add_parser("vote", help="propose, vote, or (operators) override a vote")
    vs = v.add_subparsers(dest="vote_cmd", metavar="ACTION", required=True)
    p = vs.add_parser("propose")
    _add_site(p, member=True, port=True)
    p.add_argument("--kind", required=True, choices=["set-weights", "reassign", "admit", "expel"])
    p.add_argument("--args", required=True, help='JSON, e.g. {"weights": {"cost": 1, "deadline": 1, "distance": 0}}')
    p.add_argument("--deadline", type=float, default=10.0, help="seconds until the vote closes")
    p.set_defaults(func=_cmd_vote)
    p = vs.add_parser("cast")
    _add_site(p, member=True, port=True)
    p.add_argument("--proposal", required=True)
    p.add_argument("--yes", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=_cmd_vote)
    p = vs.add_parser("override", help="operator: pass or reject a proposal whatever the votes")
    _add_site(p, member=True, port=True)
    p.add_argument("--proposal", required=True)
    p.add_argument("--decision", required=True, choices=["pass", "reject"])
    p.set_defaults(func=_cmd_vote)


def register(sub: Any) -> None:
    """Add ``gluecell factory``."""
    f = sub.add_parser("factory", help="the factory protocol: auctions, votes, signed ledger over MQTT")
    fs = f.add_subparsers(dest="factory_cmd", metavar="VERB", required=True)
    p = fs.add_parser("site", help="create a site: keys, passwords, signed registry, broker ACL")
    p.add_argument("action", choices=["init"])
    p.add_argument("dir")
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--customers", type=int, default=2)
    p.add_argument("--operators", type=int, default=1)
    p.add_argument("--processes", help="comma-separated processes of the cells (default: the demo's)")
    p.set_defaults(func=_cmd_site_init)
    p = fs.add_parser("keys", help="make an Ed25519 key pair for a member")
    p.add_argument("action", choices=["new"])
    p.add_argument("--id", required=True)
    p.add_argument("--out", required=True, help="private key file (written 0600)")
    p.set_defaults(func=_cmd_keys_new)
    p = fs.add_parser("register", help="administrator: add a member's public key, role and processes")
    _add_site(p)
    p.add_argument("--id", required=True)
    p.add_argument("--role", required=True, choices=["manager", "cell", "operator", "customer"])
    p.add_argument("--public", required=True, help="raw Ed25519 public key, base64")
    p.add_argument("--processes", help="comma-separated processes it may bid for")
    p.set_defaults(func=_cmd_register)
    p = fs.add_parser("broker", help="run mosquitto for a site on 127.0.0.1")
    _add_site(p)
    p.add_argument("--port", type=int, default=1883)
    p.set_defaults(func=_cmd_broker)
    p = fs.add_parser("node", help="run a simulated cell as a CPS node over MQTT (--id a,b: several in one process)")
    _add_site(p, member=True, port=True)
    p.add_argument("--cell", help="JSON: cost, takt_s, location, processes, time_scale, fail_on")
    p.add_argument("--duration", type=float, default=3600.0)
    p.set_defaults(func=_cmd_node)
    p = fs.add_parser("manager", help="run the manager (product host, ledger writer) over MQTT")
    _add_site(p, port=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--products", help="JSON list of products: id, owner, processes, requirements, step_time_s")
    p.add_argument("--wait-cells", type=int, default=0, help="registrations to wait for before submitting")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--reply-window", type=float, default=1.0, help="seconds nodes have to answer a cfp")
    p.add_argument("--summary", help="write the run summary (JSON) here")
    p.add_argument("--stay", action="store_true", help="keep serving after the products finished (until --timeout)")
    p.set_defaults(func=_cmd_manager)
    _register_ledger_votes(fs)
    p = fs.add_parser("override", help="operator: resume a stopped product or assign its step to a node")
    _add_site(p, member=True, port=True)
    p.add_argument("--product", required=True)
    p.add_argument("--action", required=True, choices=["resume", "assign"])
    p.add_argument("--node")
    p.set_defaults(func=_cmd_override)
    p = fs.add_parser("bench", help="the factory bench section alone (gluecell bench --only factory also runs it)")
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--procs", type=int, default=10, help="OS processes hosting the nodes")
    p.add_argument("--auctions", type=int, default=40, help="sequential auctions timed for latency")
    p.add_argument("--burst", type=int, default=20, help="simultaneous auctions timed for the message rate")
    p.add_argument("--records", type=int, default=2000, help="ledger records appended and verified")
    p.add_argument("--out", help="write JSON here")
    p.set_defaults(func=_cmd_bench)
    p = fs.add_parser("watch", help="print alarms, vote proposals, votes and overrides live")
    _add_site(p, member=True, port=True)
    p.add_argument("--duration", type=float, default=3600.0)
    p.set_defaults(func=_cmd_watch)
    p = fs.add_parser("demo", help="a small factory in one process, with a breakdown; writes the ledger")
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--tasks", type=int, default=6)
    p.add_argument("--ledger", default="factory-ledger.jsonl")
    p.add_argument("--time-scale", type=float, default=0.02, help="simulated seconds per takt second")
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=_cmd_demo)
