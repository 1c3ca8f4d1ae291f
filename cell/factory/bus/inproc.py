"""The in-process bus: a hub with one delivery thread, the same topic rules as the broker, and last wills.

Used by ``gluecell factory demo`` and the embedded default: several simulated cells in one process.
Handlers run on the hub's delivery thread, one at a time and in publish order (like one broker).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ..errors import BusError
from .base import STATUS, Handler, allowed, topic_matches

__all__ = ["Hub", "HubClient"]

log = logging.getLogger(__name__)


class Hub:
    """The in-process broker."""

    def __init__(self) -> None:
        self._rules: dict[str, list[tuple[str, str]]] = {}
        self._subs: list[tuple[str, str, Handler]] = []
        self._online: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Handler, str, bytes] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="gcf-hub", daemon=True)
        self._thread.start()
        self.delivered = 0

    def add_user(self, member: str, rules: list[tuple[str, str]]) -> None:
        """Register a member and its access rules (the hub's password file and acl_file in one)."""
        self._rules[member] = list(rules)

    def client(self, member: str) -> HubClient:
        if member not in self._rules:
            raise BusError(f"{member} is not a user of this hub")
        return HubClient(self, member)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            handler, topic, payload = item
            try:
                handler(topic, payload)
            except Exception:  # a broken subscriber must not stop the hub
                log.exception("hub: handler for %s failed", topic)
            self.delivered += 1

    def publish(self, member: str, topic: str, payload: bytes) -> None:
        if not allowed(self._rules[member], member, "write", topic):
            log.warning("hub: %s may not publish to %s (dropped)", member, topic)
            return
        with self._lock:
            targets = [(m, h) for m, f, h in self._subs if topic_matches(f, topic)]
        for m, h in targets:
            if allowed(self._rules[m], m, "read", topic):
                self._queue.put((h, topic, payload))

    def subscribe(self, member: str, topic_filter: str, handler: Handler) -> None:
        with self._lock:
            self._subs.append((member, topic_filter, handler))

    def drop(self, member: str, *, will: bool) -> None:
        """Disconnect ``member``; with ``will`` the hub publishes its last will (``offline``)."""
        with self._lock:
            self._subs = [s for s in self._subs if s[0] != member]
            self._online.discard(member)
        if will:
            self.publish(member, STATUS + member, b"offline")

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued delivery has run."""
        done = threading.Event()
        self._queue.put((lambda _t, _p: done.set(), "", b""))
        if not done.wait(timeout):
            raise BusError("hub did not drain in time")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


class HubClient:
    """One member's connection to a :class:`Hub` (implements :class:`~.base.Bus`)."""

    def __init__(self, hub: Hub, member: str) -> None:
        self.hub, self.member_id = hub, member
        self._connected = False
        self.on_disconnect: Callable[[], None] | None = None

    def connect(self, timeout: float = 5.0) -> None:
        with self.hub._lock:
            self.hub._online.add(self.member_id)
        self._connected = True

    def disconnect(self) -> None:
        if self._connected:
            self.hub.drop(self.member_id, will=False)
        self._connected = False

    def kill(self) -> None:
        """Vanish without a goodbye: the hub publishes the last will, as a broker does."""
        if self._connected:
            self.hub.drop(self.member_id, will=True)
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def publish(self, topic: str, payload: bytes) -> None:
        if not self._connected:
            raise BusError(f"{self.member_id}: not connected")
        self.hub.publish(self.member_id, topic, payload)

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        if not self._connected:
            raise BusError(f"{self.member_id}: not connected")
        self.hub.subscribe(self.member_id, topic_filter, handler)
