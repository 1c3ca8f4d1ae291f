"""Fixtures of the API tests: a cell database, the app on a real loopback server, one user per role.

The controller is played by :class:`Applier`: it applies the override requests the API queues with the real
PackML table of :mod:`gluecell.cell.control.packml` (acting states complete at once) and writes the PackTags,
as the controller does. The API, the store and SQLite are the real ones.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gluecell.cell.api.app import ApiSettings, create_app
from gluecell.cell.api.auth import ROLES, add_user

ROLE_USERS = {r: f"{r}-1" for r in ROLES}


class Applier:
    """Stand-in for the controller's override loop: real PackML table, SC completes acting states at once."""

    def __init__(self, store: Any) -> None:
        from gluecell.cell.control.packml import PackMLMachine, State

        self.store = store
        self.silent = False  # True: stops the heartbeat, as a hung controller would
        self.machine = PackMLMachine(State.STOPPED)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.save()
        self._thread.start()

    def save(self) -> None:
        self.store.packtags.save({"StateCurrent": int(self.machine.state), "UnitModeCurrent": int(self.machine.mode),
                                  "Alarm": getattr(self, "alarms", [])})  # fmt: skip

    def _apply(self, o: dict[str, Any]) -> str:
        from gluecell.cell.control.packml import ACTING_STATES, Command, Event, UnitMode

        if o["action"] == "command":
            tr = self.machine.fire(Command[o["args"]["command"].upper()], o["why"])
            while self.machine.state in ACTING_STATES:
                self.machine.fire(Event.SC)
            self.store.events.add("state", f"{tr.before.name} -> {self.machine.state.name}")
            return f"applied: {tr.before.name.title()} -> {self.machine.state.name.title()}"
        if o["action"] == "mode":
            self.machine.set_mode(UnitMode[o["args"]["mode"].upper()], o["why"])
            return "applied: mode"
        return f"applied: {o['action']} {o['item_id']}"

    def _run(self) -> None:
        beat = 0.0
        while not self._stop.is_set():
            if time.time() - beat > 0.5 and not self.silent:  # the controller's heartbeat (meta.heartbeat)
                beat = time.time()
                self.store.meta.set("heartbeat", beat)
            for o in self.store.overrides.pending():
                try:
                    result = self._apply(o)
                except Exception as exc:  # refused, as the controller does
                    result = f"refused: {exc}"
                self.store.overrides.resolve(o["id"], result)
                self.save()
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class LiveServer:
    """The app under uvicorn on 127.0.0.1 (free port), in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY (server.py)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh cell database, the app served on loopback, a token per role, the controller stand-in."""
    settings = ApiSettings(db_path=str(tmp_path / "cell.db"), media_roots=(str(tmp_path),), rate_per_s=1000.0,
                           burst=1000.0, dispatch_period_s=0.05)  # fmt: skip
    app = create_app(settings)
    tokens = {role: add_user(app.state.db, name, role) for role, name in ROLE_USERS.items()}
    applier = Applier(app.state.store)
    server = LiveServer(app)
    clients = {r: httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {t}"}, timeout=10)
               for r, t in tokens.items()}  # fmt: skip
    clients["anon"] = httpx.Client(base_url=server.url, timeout=10)
    try:
        yield {"app": app, "url": server.url, "tokens": tokens, "c": clients, "applier": applier, "tmp": tmp_path}
    finally:
        for c in clients.values():
            c.close()
        server.close()
        applier.close()


def make_job(job_id: str = "J-1", quantity: int = 2, priority: int = 0, **extra: Any) -> dict[str, Any]:
    """A valid job order."""
    return {"JobOrderID": job_id, "WorkMasterID": "sneaker", "Priority": priority, "Description": "test order",
            "MaterialRequirements": [{"SizeEU": 42, "Side": "left", "Quantity": quantity}], **extra}  # fmt: skip


@pytest.fixture
def job_body() -> Any:
    """Factory of valid job orders: ``job_body(id, quantity=2, priority=0, **extra)``."""
    return make_job
