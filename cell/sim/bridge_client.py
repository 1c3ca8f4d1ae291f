"""One client of the simulated cell's rosbridge server: its bounded send queue and its subscriptions, and the
handle of a goal sent to an in-process action server."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Client", "GoalContext", "dumps"]

LOG = logging.getLogger("gluecell.cell.sim.bridge")


def _clean(obj: Any) -> Any:
    """NaN/Inf go out as ``null`` (rosbridge's JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def dumps(msg: dict[str, Any]) -> str:
    """JSON text of a protocol message (NaN as null)."""
    try:
        return json.dumps(msg, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_clean(msg), separators=(",", ":"))


@dataclass(eq=False)
class Client:
    """One websocket connection."""

    ws: Any
    cid: int
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=2000))
    subs: dict[str, dict[str, float]] = field(default_factory=dict)  # topic -> {sub id: throttle s}
    last_sent: dict[str, float] = field(default_factory=dict)
    advertised: set[str] = field(default_factory=set)
    dropped: int = 0
    open: bool = True

    def send(self, msg: dict[str, Any], *, droppable: bool = False) -> None:
        """Queue ``msg``; a full queue drops topic messages and closes a client that cannot take replies."""
        if not self.open:
            return
        try:
            self.queue.put_nowait(dumps(msg))
        except asyncio.QueueFull:
            self.dropped += 1
            if not droppable:
                LOG.warning("client %d: send queue full, closing it", self.cid)
                self.open = False
                asyncio.get_running_loop().create_task(self.ws.close(1008, "send queue overflow"))


@dataclass
class GoalContext:
    """A goal sent to an in-process action server: answer with :meth:`feedback` and :meth:`result`."""

    goal_id: str
    action: str
    args: dict[str, Any]
    client: Client
    want_feedback: bool = True
    finished: bool = False

    def feedback(self, values: dict[str, Any]) -> None:
        """Send ``action_feedback`` (dropped when the client went away or asked for none)."""
        if self.want_feedback and not self.finished:
            self.client.send({"op": "action_feedback", "id": self.goal_id, "action": self.action, "values": values},
                             droppable=True)  # fmt: skip

    def result(self, values: dict[str, Any], status: int, ok: bool = True) -> None:
        """Send ``action_result`` once (``status``: action_msgs/GoalStatus)."""
        if not self.finished:
            self.finished = True
            self.client.send({"op": "action_result", "id": self.goal_id, "action": self.action, "values": values,
                              "status": int(status), "result": bool(ok)})  # fmt: skip
