"""A small server-sent-events client (httpx) for MES clients, the tests and the bench.

    for ev in stream_events(url, token, last_event_id="41"):
        print(ev.id, ev.event, ev.data)

Each :class:`SseEvent` carries the id to resume from; reconnecting with it as ``Last-Event-ID`` continues after
that event with nothing lost and nothing repeated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SseEvent", "stream_events", "parse_stream"]


@dataclass(frozen=True)
class SseEvent:
    """One event: ``id`` (str), ``event`` (kind), ``data`` (decoded JSON)."""

    id: str | None
    event: str | None
    data: Any


def parse_stream(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Events from the lines of a ``text/event-stream`` (comments and keep-alives skipped)."""
    eid, kind, data = None, None, []
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(eid, kind, json.loads("\n".join(data)))
            eid, kind, data = None, None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                eid = value
            elif name == "event":
                kind = value
            elif name == "data":
                data.append(value)


def stream_events(base_url: str, token: str, last_event_id: str | None = None, *, after: int | None = None,
                  timeout_s: float = 30.0, client: Any = None) -> Iterator[SseEvent]:  # fmt: skip
    """Follow ``/api/v1/events``; yields events until the caller stops or the server closes the stream."""
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    params = {"after": after} if after is not None and not last_event_id else None
    own = client is None
    client = client or httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout_s, connect=5.0))
    try:
        with client.stream("GET", "/api/v1/events", headers=headers, params=params) as r:
            r.raise_for_status()
            yield from parse_stream(r.iter_lines())
    finally:
        if own:
            client.close()
