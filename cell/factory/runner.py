"""Running one factory member as its own OS process over MQTT (what ``gluecell factory node|manager`` do),
and a short-lived client for people and scripts (query a product, propose, vote, override)."""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .agent import Agent
from .bus.base import ALARM, VOTE
from .bus.mqtt import MqttBus
from .errors import FactoryError
from .ledger import Ledger, make_record
from .manager import Manager
from .messages import Message
from .node import NodeAgent
from .product import SmartProduct
from .rdf import NodeProfile
from .sim import SimCell
from .site import Site

__all__ = ["Client", "run_manager", "run_node"]

log = logging.getLogger(__name__)


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _node(site: Site, member: str, port: int, cell: dict[str, Any]) -> NodeAgent:
    m = site.registry.get(member)
    profile = NodeProfile(member, str(cell.get("equipment", "UR10e glue-spraying cell")),
                          tuple(cell.get("processes", m.processes)), tuple(cell.get("glues", ("PU-water",))),
                          float(cell.get("size_min", 35)), float(cell.get("size_max", 47)),
                          float(cell.get("takt_s", 20.0)), tuple(cell.get("location", (0.0, 0.0))))
    sim = SimCell(profile, cost=float(cell.get("cost", 50.0)), time_scale=float(cell.get("time_scale", 1.0)),
                  fail_on=frozenset(cell.get("fail_on", ())))
    return NodeAgent(site.identity(member), site.load_registry(), MqttBus(member, site.password(member), port=port),
                     profile, can_do=sim.can_do, perform=sim.perform, on_reject=sim.release,
                     decide=lambda p: p.kind in cell.get("vote_yes", ("set-weights",)))


def run_node(site: Site, members: list[str], port: int, *, cell: dict[str, Any], duration: float = 3600.0) -> int:
    """Run simulated cells (normally one per process) until stopped (SIGTERM/SIGINT) or ``duration``.

    ``cell`` (JSON from the CLI): cost, takt_s, location, processes, glues, size_min/max, time_scale, fail_on
    (task numbers ending in a robot fault), vote_yes (proposal kinds it votes yes for; no for the others).
    With several members (the bench's 50 nodes on 2 cores) each keeps its own MQTT connection and key.
    """
    agents = [_node(site, m, port, cell) for m in members]
    stop = _stop_event()
    for a in agents:
        a.start()
    for a in agents:
        a.wait_registered(30.0)
        print(json.dumps({"node": a.id, "registered": True}), flush=True)
    stop.wait(duration)
    for a in agents:
        a.stop()
        print(json.dumps({"node": a.id, "votes": a.votes.summary(), "done": a.done}), flush=True)
    return 0


def run_manager(site: Site, port: int, ledger_path: Path, products: list[dict[str, Any]], *, wait_cells: int = 0,
                timeout: float = 60.0, reply_window: float = 1.0, summary_path: Path | None = None,
                stay: bool = False) -> dict[str, Any]:
    """Run the manager: wait for ``wait_cells`` registrations, submit ``products``, run until all are done or
    stopped (with ``stay``: until ``timeout`` or SIGTERM); writes and returns the summary."""
    from gluecell.core.fileio import atomic_write_json

    from .crypto import load_identity

    me = site.managers[0]
    ident = site.identity(me)
    if ledger_path.exists() and ledger_path.stat().st_size:
        ledger = Ledger.open(ledger_path, ident, pin_admin=site.registry.admin_public)
    else:
        ledger = Ledger.create(ledger_path, ident, site.registry.signed(load_identity(site.path / "admin.key")))
    manager = Manager(ident, site.load_registry(), MqttBus(me, site.password(me), port=port), ledger,
                      reply_window=reply_window)
    resumed = manager.recover(ledger.recovered)
    stop = _stop_event()
    manager.start()
    print(json.dumps({"manager": me, "ready": True, "resumed": resumed}), flush=True)
    t_end = time.monotonic() + timeout
    while len(manager.joined) < wait_cells and time.monotonic() < t_end and not stop.is_set():
        time.sleep(0.02)
    for d in products:
        manager.submit(SmartProduct.from_dict(d))
    while time.monotonic() < t_end and not stop.is_set():
        if products and not stay and manager.wait_finished(0.1):
            break
        stop.wait(0.1)
    done = threading.Event()
    out: dict[str, Any] = {}
    manager.call(lambda: (out.update(manager.summary()), done.set()))
    done.wait(5.0)
    manager.stop()
    if summary_path is not None:
        atomic_write_json(summary_path, out)
    return out


class Client(Agent):
    """A short-lived member connection: send a message and wait for the answer (or watch alarms/votes)."""

    def __init__(self, site: Site, member: str, port: int = 0, *, bus: Any = None) -> None:
        # its own client id, so a person's command does not push the member's running node off the broker
        bus = bus if bus is not None else MqttBus(member, site.password(member), port=port,
                                                  client_id=f"{member}.cli{os.getpid()}")
        super().__init__(site.identity(member), site.load_registry(), bus)
        self.site = site
        self.inbox: queue.Queue[Message] = queue.Queue()

    def handle(self, msg: Message, topic: str) -> None:
        self.inbox.put(msg)

    def watch(self) -> None:
        """Also receive alarms and votes (as the ACL allows this member)."""
        self.listen(ALARM)
        self.listen(VOTE)

    def ask(self, action: str, receiver: str, content: dict[str, Any], *, timeout: float = 5.0) -> Message:
        msg = self.message(action, receiver, content, conversation_id=f"{action}.{time.time_ns()}")
        self.send(msg)
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            try:
                answer = self.inbox.get(timeout=max(t_end - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if answer.in_reply_to == msg.message_id:
                return answer
        raise FactoryError(f"no answer from {receiver} to {action} within {timeout} s")

    def progress(self, product: str, *, timeout: float = 5.0) -> Message:
        return self.ask("query-ref", self.site.managers[0], {"product": product}, timeout=timeout)

    def override(self, product: str, action: str, node: str | None = None, *, timeout: float = 5.0) -> Message:
        body = {"product": product, "action": action, "node": node}
        record = make_record(self.identity, "override", body)
        return self.ask("override", self.site.managers[0], {**body, "record": record}, timeout=timeout)

    def broadcast_vote(self, action: str, content: dict[str, Any], conversation_id: str, kind: str) -> None:
        record = make_record(self.identity, kind, content)
        self.send(self.message(action, "all", {**content, "record": record}, conversation_id=conversation_id,
                               broadcast=True), VOTE)
