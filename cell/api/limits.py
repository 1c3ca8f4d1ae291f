"""Request limits as plain ASGI middleware: body size (413) and a token-bucket rate limit per caller (429).

The rate limit keys on the bearer token's hash when there is one (each MES client or console has its own
budget) and on the peer address otherwise (so guessing tokens is throttled too). Both answer with a
problem+json document before the app runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from typing import Any

from gluecell.cell.api.problems import PROBLEM_JSON

__all__ = ["BodyLimit", "RateLimit", "TokenBucket"]


async def _send_problem(send: Any, status: int, slug: str, title: str, detail: str,
                        headers: dict[str, str] | None = None) -> None:  # fmt: skip
    body = json.dumps({"type": f"urn:gluecell:problem:{slug}", "title": title, "status": status,
                       "detail": detail}).encode()  # fmt: skip
    hdrs = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (by Content-Length, or while streaming) with 413."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        for k, v in scope.get("headers", ()):
            if k == b"content-length" and (not v.isdigit() or int(v) > self.max_bytes):
                await _send_problem(send, 413, "payload-too-large", "Payload too large", detail)
                return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_problem(send, 413, "payload-too-large", "Payload too large", detail)


class TokenBucket:
    """Token buckets per key: ``rate`` tokens/s, at most ``burst`` (thread-safe, bounded key count)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = float(rate), float(burst), int(max_keys)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # a flood of keys: start over rather than grow without bound
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class RateLimit:
    """Answer 429 (with ``Retry-After``) when a caller exceeds its token bucket."""

    def __init__(self, app: Any, rate: float, burst: float) -> None:
        self.app = app
        self.bucket = TokenBucket(rate, burst)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        auth = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        if auth:
            key = "t:" + hashlib.sha256(auth).hexdigest()
        else:
            key = "a:" + str((scope.get("client") or ("?",))[0])
        wait = self.bucket.take(key)
        if wait > 0:
            await _send_problem(send, 429, "too-many-requests", "Too many requests",
                                f"rate limit {self.bucket.rate:g}/s (burst {self.bucket.burst:g}); retry later",
                                {"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
            return
        await self.app(scope, receive, send)
