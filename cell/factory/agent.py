"""The common part of every factory member: a bus connection, message checks and one event loop.

Incoming frames are verified (:class:`~.messages.Verifier`) and handled on the agent's own thread, one at a
time, together with its timers; bus callback threads only enqueue. So an agent's protocol state needs no
locks, and a slow handler never stalls the broker connection.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .bus.base import Bus, inbox
from .crypto import Identity
from .errors import MessageRefused
from .messages import Message, Verifier, encode, new_message
from .registry import Registry

__all__ = ["Agent"]

log = logging.getLogger(__name__)


class Agent:
    """Base of :class:`~.node.NodeAgent` and :class:`~.manager.Manager`."""

    def __init__(self, identity: Identity, registry: Registry, bus: Bus, *, validity: float = 30.0) -> None:
        self.identity, self.registry, self.bus = identity, registry, bus
        self.id = identity.id
        self.validity = validity
        self.verifier = Verifier(registry, me=self.id)
        self._q: queue.Queue[tuple[str, Any, Any] | None] = queue.Queue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._loop, name=f"gcf-{self.id}", daemon=True)
        self._running = False
        self.sent = 0  # messages signed and published
        self.received = 0  # messages received and verified

    @property
    def role(self) -> str:
        return self.registry.get(self.id).role

    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe to the inbox and start the event loop; then :meth:`on_start`."""
        self.bus.connect(timeout)
        self.listen(inbox(self.id))
        self._running = True
        self._thread.start()
        self.on_start()

    def listen(self, topic_filter: str) -> None:
        """Have frames on ``topic_filter`` verified and handled on the agent's thread."""
        self.bus.subscribe(topic_filter, lambda t, p: self._q.put(("frame", t, p)))

    def on_start(self) -> None:
        """Hook: called after the loop started (subscribe more, register, ...)."""

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._q.put(None)
            if threading.current_thread() is not self._thread:
                self._thread.join(timeout=5)
        self.bus.disconnect()

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the agent's thread (thread-safe)."""
        self._q.put(("call", fn, None))

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the agent's thread after ``delay`` seconds (call from the agent's thread)."""
        heapq.heappush(self._timers, (time.monotonic() + max(delay, 0.0), next(self._seq), fn))

    def send(self, msg: Message, topic: str | None = None) -> None:
        """Sign and publish ``msg`` (to the receiver's inbox unless ``topic`` is given)."""
        self.bus.publish(topic or inbox(msg.receiver), encode(self.identity, msg))
        self.sent += 1

    def message(self, action: str, receiver: str, content: dict[str, Any], *, conversation_id: str,
                broadcast: bool = False, reply_by: float | None = None) -> Message:
        return new_message(action, self.id, receiver, content, conversation_id=conversation_id,
                           send_type="broadcast" if broadcast else "unicast", validity=self.validity,
                           reply_by=reply_by)

    def _loop(self) -> None:
        while self._running:
            wait = self._timers[0][0] - time.monotonic() if self._timers else 0.5
            try:
                item = self._q.get(timeout=min(max(wait, 0.0), 0.5))
            except queue.Empty:
                item = ("tick", None, None)
            if item is None:
                break
            try:
                self._dispatch(item)
                while self._timers and self._timers[0][0] <= time.monotonic():
                    heapq.heappop(self._timers)[2]()
            except Exception:  # one bad message or timer must not stop a factory member
                log.exception("%s: handler failed", self.id)

    def _dispatch(self, item: tuple[str, Any, Any]) -> None:
        kind, a, b = item
        if kind == "call":
            a()
        elif kind == "frame":
            if a.startswith("gcf/status/"):
                self.on_status(a.rsplit("/", 1)[-1], b)
                return
            try:
                msg = self.verifier.check(b)
            except MessageRefused:
                return
            self.received += 1
            self.handle(msg, a)

    def handle(self, msg: Message, topic: str) -> None:
        """Hook: one verified message."""

    def on_status(self, member: str, payload: bytes) -> None:
        """Hook: a member's status (``offline`` is its last will)."""
