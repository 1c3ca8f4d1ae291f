"""The live event stream over the cell's event log (the store's ``events`` table, ordered by ``seq``).

The controller appends its events (PackML state, alarms, inspections, pairs) to the log; the API appends
job-order events to the same log. A stream (server-sent events) sends the events after the client's
``Last-Event-ID`` from the log, then waits to be woken and reads again, so a client that reconnects loses
nothing and sees nothing twice: the log, not a queue in memory, is the source. One tailer per app notices
appends by other writers (the controller, ``gluecell op``) within :data:`TAIL_PERIOD_S`; appends through
:meth:`EventLog.publish` wake the streams at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

__all__ = ["EventLog", "Event", "TAIL_PERIOD_S"]

#: How often the tailer looks for events appended by other writers (s).
TAIL_PERIOD_S = 0.02
_BATCH = 500


@dataclass(frozen=True)
class Event:
    """One logged event."""

    seq: int
    ts: float
    kind: str
    message: str
    item_id: str | None
    data: Any

    def wire(self) -> str:
        """The event as one line of JSON (the SSE ``data`` field)."""
        return json.dumps({"seq": self.seq, "ts": self.ts, "kind": self.kind, "message": self.message,
                           "item_id": self.item_id, "data": self.data}, separators=(",", ":"), default=str)  # fmt: skip


class EventLog:
    """Reads and appends the store's event log; wakes the streams waiting on it.

    Args:
        store: a :class:`gluecell.cell.store.Store`.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self._last_seen = self.last_seq()

    def publish(self, kind: str, message: str, data: dict[str, Any] | None = None, item_id: str | None = None) -> int:
        """Append an event; returns its sequence number. Safe from any thread."""
        seq = int(self.store.events.add(kind, message, item_id=item_id, data=data or {}))
        self.wake()
        return seq

    def wake(self) -> None:
        """Wake every stream (they re-read the log)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, ev in waiters:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # that loop is closed: its stream is gone
                with self._lock:
                    self._waiters.discard((loop, ev))

    def last_seq(self) -> int:
        """Sequence number of the newest event (0 when empty)."""
        return int(self.store.db.query_one("SELECT COALESCE(MAX(seq), 0) FROM events")[0])

    def since(self, after: int, limit: int = _BATCH) -> list[Event]:
        """Events with seq > ``after``, oldest first (at most ``limit``)."""
        rows = self.store.db.query("SELECT seq, ts, kind, message, item_id, data FROM events WHERE seq > ?"
                                   " ORDER BY seq LIMIT ?", (int(after), int(limit)))  # fmt: skip
        return [Event(int(r["seq"]), float(r["ts"]), str(r["kind"]), str(r["message"]), r["item_id"],
                      json.loads(r["data"] or "{}")) for r in rows]  # fmt: skip

    async def tail(self) -> None:
        """Run forever: wake the streams when another writer appended events."""
        while True:
            await asyncio.sleep(TAIL_PERIOD_S)
            try:
                last = self.last_seq()
            except Exception:  # database busy or closing: look again next period
                continue
            if last != self._last_seen:
                self._last_seen = last
                self.wake()

    async def follow(self, after: int, kinds: frozenset[str] | None = None,
                     keepalive_s: float = 15.0) -> AsyncIterator[Event | None]:  # fmt: skip
        """Yield the events after ``after`` forever (of ``kinds`` when given); ``None`` after ``keepalive_s`` idle."""
        ev = asyncio.Event()
        key = (asyncio.get_running_loop(), ev)
        with self._lock:
            self._waiters.add(key)
        try:
            while True:
                ev.clear()  # cleared before reading: an append after the read wakes the wait below
                events = self.since(after)
                for e in events:
                    after = e.seq
                    if kinds is None or e.kind in kinds:
                        yield e
                if len(events) == _BATCH:
                    continue
                try:
                    await asyncio.wait_for(ev.wait(), keepalive_s)
                except TimeoutError:
                    yield None
        finally:
            with self._lock:
                self._waiters.discard(key)
