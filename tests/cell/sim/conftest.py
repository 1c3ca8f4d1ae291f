"""Fixtures: a simulated cell on a thread (127.0.0.1, free port) and a raw rosbridge websocket client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gluecell.cell.sim.cell import SimCell, SimCellConfig
from gluecell.cell.sim.run import SimHandle, start_in_thread

RECV_TIMEOUT_S = 5.0


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """A cell with three pairs (ids only), 20x accelerated."""
    handle = start_in_thread(SimCell(SimCellConfig(speed=20.0), ids=["P0", "P1", "P2"]))
    yield handle
    handle.stop()


class Raw:
    """A bare websocket client speaking rosbridge JSON: no library between the test and the server."""

    def __init__(self, port: int, max_size: int | None = 64 << 20) -> None:
        from websockets.sync.client import connect

        self._cm = connect(f"ws://127.0.0.1:{port}", max_size=max_size, open_timeout=5, close_timeout=1)
        self.ws = self._cm.__enter__()

    def send(self, msg: dict[str, Any] | str | bytes) -> None:
        self.ws.send(msg if isinstance(msg, str | bytes) else json.dumps(msg))

    def recv(self, op: str | None = None, timeout: float = RECV_TIMEOUT_S, **match: Any) -> dict[str, Any]:
        """The next message with this ``op`` (and matching fields), skipping others."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {op} {match} within {timeout} s")
            msg = json.loads(self.ws.recv(timeout=left))
            if (op is None or msg.get("op") == op) and all(msg.get(k) == v for k, v in match.items()):
                return msg

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


@pytest.fixture
def raw(sim: SimHandle) -> Iterator[Any]:
    """A factory of raw clients of ``sim``; all closed afterwards."""
    clients: list[Raw] = []

    def make(**kw: Any) -> Raw:
        c = Raw(sim.port, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.close()
        except Exception:
            pass
