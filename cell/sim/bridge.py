"""A rosbridge v2 protocol server (websockets, asyncio) without ROS: the simulated cell's wire.

It speaks the protocol of RobotWebTools' ``rosbridge_server`` (branch ``ros2``, ``ROSBRIDGE_PROTOCOL.md``):
``advertise``/``unadvertise``/``publish``/``subscribe``/``unsubscribe`` for topics, ``call_service``/
``advertise_service``/``unadvertise_service``/``service_response`` for services (a call to a client-advertised
service is forwarded with id ``service_request:<name>:<n>``), and ``send_action_goal``/``cancel_action_goal``
with ``action_feedback``/``action_result`` (``status`` from ``action_msgs/GoalStatus`` at the top level) for
ROS 2 actions. The cell's own topics, services and actions are registered in-process
(:meth:`RosbridgeServer.advertise`, :meth:`add_service`, :meth:`add_action`).

Bad input never stops the server: a message that is not JSON, not an object, has an unknown ``op`` or bad
fields gets a ``status`` message (level ``error``, the ``id`` echoed) on that client only; a failed service
call is a ``service_response`` with ``result: false`` and the reason as ``values``; a refused goal an
``action_result`` with ``result: false``. A frame over ``max_message_bytes`` closes that client's connection
(code 1009, as rosbridge does). Each client has a bounded send queue: a slow client loses topic messages
(counted), never blocks the others. The server binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .bridge_client import Client, GoalContext

__all__ = ["RosbridgeServer", "Refused", "GoalContext"]

LOG = logging.getLogger(__name__)
_NAME = re.compile(r"^/?[A-Za-z_~][A-Za-z0-9_/~]{0,254}$")
_TYPE = re.compile(r"^[A-Za-z0-9_]+/(msg/|srv/|action/)?[A-Za-z0-9_]+$")


class Refused(Exception):
    """A request refused with a reason (sent to the client)."""


ServiceHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class _Action:
    type: str
    on_goal: Callable[[GoalContext], None]
    on_cancel: Callable[[str], None]


class RosbridgeServer:
    """The protocol server. ``await start()``, register the cell's names, ``await stop()``.

    Args:
        port: 0 picks a free port (read :attr:`port` after start).
        max_message_bytes: largest frame accepted (default 8 MiB: a dense spray trajectory is < 1 MiB).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_message_bytes: int = 8 << 20) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the simulated cell binds the loopback interface only")
        self.host, self._port, self.max_message_bytes = host, port, max_message_bytes
        self.clients: set[Client] = set()
        self.topics: dict[str, str] = {}  # name -> type (the cell's and the clients')
        self.latched: dict[str, dict[str, Any]] = {}
        self.local_topics: set[str] = set()
        self.services: dict[str, tuple[str, ServiceHandler]] = {}
        self.remote_services: dict[str, tuple[Client, str]] = {}
        self.actions: dict[str, _Action] = {}
        self.goals: dict[str, GoalContext] = {}
        self.refusals: dict[str, int] = {}
        self._pending: dict[str, tuple[Client, str | None, str]] = {}
        self._counter = itertools.count(1)
        self._server: Any = None
        self.closed_until = 0.0  # link-drop fault: refuse connections until this monotonic time
        self.silent_until = 0.0  # link-stall fault: sockets stay open, nothing is sent or answered

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is not None:
            return int(next(iter(self._server.sockets)).getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Bind and serve."""
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, self.host, self._port, max_size=self.max_message_bytes,
                                   ping_interval=None, compression=None)  # fmt: skip

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop_all(self, refuse_s: float = 0.0) -> None:
        """Close every client's connection (link-drop fault) and refuse new ones for ``refuse_s``."""
        self.closed_until = time.monotonic() + refuse_s
        for c in list(self.clients):
            c.open = False
            with contextlib.suppress(Exception):
                c.ws.transport.abort()  # no close handshake: the cable is pulled

    def stall(self, seconds: float) -> None:
        """Go silent for ``seconds``: connections stay open but nothing is sent (a network that stops delivering,
        with no FIN or RST: only a heartbeat notices)."""
        self.silent_until = time.monotonic() + seconds

    # --- the cell's side --------------------------------------------------------------------------------
    def advertise(self, topic: str, type_: str) -> None:
        """Declare a topic the cell publishes."""
        self.topics[topic] = type_
        self.local_topics.add(topic)

    def publish(self, topic: str, msg: dict[str, Any], *, latch: bool = False) -> None:
        """Send ``msg`` to every subscriber of ``topic`` (keep it for late subscribers when ``latch``)."""
        if latch:
            self.latched[topic] = msg
        now = time.monotonic()
        if now < self.closed_until or now < self.silent_until:
            return
        for c in self.clients:
            subs = c.subs.get(topic)
            if not subs:
                continue
            throttle = min(subs.values())
            if throttle and now - c.last_sent.get(topic, 0.0) < throttle:
                continue
            c.last_sent[topic] = now
            c.send({"op": "publish", "topic": topic, "msg": msg}, droppable=True)

    def add_service(self, name: str, type_: str, handler: ServiceHandler) -> None:
        """Serve ``name``: ``await handler(args) -> values``; raise :class:`Refused` for ``result: false``."""
        self.services[name] = (type_, handler)

    def add_action(self, name: str, type_: str, on_goal: Callable[[GoalContext], None],
                   on_cancel: Callable[[str], None]) -> None:  # fmt: skip
        """Serve the ROS 2 action ``name``; ``on_goal(ctx)`` must answer through ``ctx.result`` eventually."""
        self.actions[name] = _Action(type_, on_goal, on_cancel)

    # --- connections -------------------------------------------------------------------------------------
    async def _handle(self, ws: Any) -> None:
        if time.monotonic() < self.closed_until:
            await ws.close(1013, "link down (fault injection)")
            return
        client = Client(ws, next(self._counter))
        self.clients.add(client)
        writer = asyncio.get_running_loop().create_task(self._writer(client))
        try:
            async for frame in ws:
                if time.monotonic() < self.silent_until:
                    continue  # a stalled link loses what is sent into it
                if isinstance(frame, bytes):
                    self._refuse(client, "binary", None, "binary frames (CBOR/BSON) are not supported")
                    continue
                self._dispatch(client, frame)
        except Exception as exc:  # a broken connection (oversized frame, reset) ends this client only
            LOG.info("client %d: connection ended: %s", client.cid, exc)
        finally:
            client.open = False
            self.clients.discard(client)
            writer.cancel()
            self._forget(client)

    async def _writer(self, client: Client) -> None:
        with contextlib.suppress(Exception):
            while True:
                text = await client.queue.get()
                if time.monotonic() < self.silent_until:
                    continue  # lost on the wire
                await client.ws.send(text)

    def _forget(self, client: Client) -> None:
        for name in [n for n, (c, _) in self.remote_services.items() if c is client]:
            del self.remote_services[name]
        for key in [k for k, (c, _, _) in self._pending.items() if c is client]:
            del self._pending[key]
        for topic in client.advertised:
            if not any(topic in c.advertised for c in self.clients) and topic not in self.local_topics:
                self.topics.pop(topic, None)
        # goals keep running (the robot does not know the client left); their results are dropped
        for gid in [g for g, ctx in self.goals.items() if ctx.client is client and ctx.finished]:
            del self.goals[gid]

    def _refuse(self, client: Client, kind: str, msg_id: Any, reason: str) -> None:
        self.refusals[kind] = self.refusals.get(kind, 0) + 1
        LOG.warning("client %d: refused (%s): %s", client.cid, kind, reason)
        out: dict[str, Any] = {"op": "status", "level": "error", "msg": reason}
        if isinstance(msg_id, str | int):
            out["id"] = msg_id
        client.send(out)

    def _dispatch(self, client: Client, text: str) -> None:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._refuse(client, "malformed", None, f"not JSON: {exc}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            self._refuse(client, "malformed", None, "a message must be a JSON object with a string 'op'")
            return
        handler = _HANDLERS.get(msg["op"])
        if handler is None:
            self._refuse(client, "unknown_op", msg.get("id"), f"unknown op {msg['op'][:40]!r}")
            return
        try:
            handler(self, client, msg)
        except Refused as exc:
            self._refuse(client, "invalid", msg.get("id"), f"{msg['op']}: {exc}")
        except Exception as exc:  # never let one message take the server down
            LOG.exception("client %d: %s failed", client.cid, msg["op"])
            self._refuse(client, "internal", msg.get("id"), f"{msg['op']}: internal error: {type(exc).__name__}")

    # --- ops ---------------------------------------------------------------------------------------------
    def _op_advertise(self, client: Client, msg: dict[str, Any]) -> None:
        topic, type_ = _name(msg, "topic"), _type(msg, "type")
        if topic in self.local_topics:
            raise Refused(f"{topic} is published by the cell")
        if self.topics.get(topic, type_) != type_:
            raise Refused(f"{topic} has type {self.topics[topic]}, not {type_}")
        self.topics[topic] = type_
        client.advertised.add(topic)

    def _op_unadvertise(self, client: Client, msg: dict[str, Any]) -> None:
        client.advertised.discard(_name(msg, "topic"))

    def _op_publish(self, client: Client, msg: dict[str, Any]) -> None:
        topic = _name(msg, "topic")
        if topic not in client.advertised:
            raise Refused(f"{topic} was not advertised by this client")
        if not isinstance(msg.get("msg"), dict):
            raise Refused("'msg' must be an object")
        self.publish(topic, msg["msg"], latch=bool(msg.get("latch", False)))

    def _op_subscribe(self, client: Client, msg: dict[str, Any]) -> None:
        topic = _name(msg, "topic")
        type_ = msg.get("type")
        if type_ is not None and self.topics.get(topic, _type(msg, "type")) != type_:
            raise Refused(f"{topic} has type {self.topics[topic]}, not {type_}")
        rate = msg.get("throttle_rate", 0)
        if not isinstance(rate, int | float) or not 0 <= rate <= 3.6e6:
            raise Refused("throttle_rate must be 0-3600000 ms")
        sub_id = str(msg.get("id", ""))[:256]
        client.subs.setdefault(topic, {})[sub_id] = float(rate) / 1000.0
        if topic in self.latched:
            client.send({"op": "publish", "topic": topic, "msg": self.latched[topic]})

    def _op_unsubscribe(self, client: Client, msg: dict[str, Any]) -> None:
        topic = _name(msg, "topic")
        subs = client.subs.get(topic, {})
        if "id" in msg:
            subs.pop(str(msg["id"]), None)
        else:
            subs.clear()
        if not subs:
            client.subs.pop(topic, None)

    def _op_advertise_service(self, client: Client, msg: dict[str, Any]) -> None:
        name, type_ = _name(msg, "service"), _type(msg, "type")
        if name in self.services:
            raise Refused(f"{name} is served by the cell")
        self.remote_services[name] = (client, type_)

    def _op_unadvertise_service(self, client: Client, msg: dict[str, Any]) -> None:
        name = _name(msg, "service")
        if self.remote_services.get(name, (None,))[0] is client:
            del self.remote_services[name]

    def _op_call_service(self, client: Client, msg: dict[str, Any]) -> None:
        name, call_id = _name(msg, "service"), msg.get("id")
        args = msg.get("args", {})
        if isinstance(args, list):  # positional args are accepted by rosbridge; ours take named fields
            raise Refused("positional service args are not supported; send an object")
        if not isinstance(args, dict):
            raise Refused("'args' must be an object")
        if name in self.remote_services:
            owner, _ = self.remote_services[name]
            fwd = f"service_request:{name}:{next(self._counter)}"
            self._pending[fwd] = (client, call_id, name)
            owner.send({"op": "call_service", "service": name, "id": fwd, "args": args})
            return
        if name not in self.services:
            _service_reply(client, name, call_id, f"service {name} does not exist", ok=False)
            return
        asyncio.get_running_loop().create_task(self._serve(client, name, call_id, args, msg.get("timeout")))

    async def _serve(self, client: Client, name: str, call_id: Any, args: dict[str, Any], timeout: Any) -> None:
        handler = self.services[name][1]
        limit = float(timeout) if isinstance(timeout, int | float) and 0 < timeout < 3600 else 60.0
        try:
            values = await asyncio.wait_for(handler(args), limit)
            _service_reply(client, name, call_id, values, ok=True)
        except Refused as exc:
            self.refusals["service"] = self.refusals.get("service", 0) + 1
            _service_reply(client, name, call_id, str(exc), ok=False)
        except TimeoutError:
            _service_reply(client, name, call_id, f"service {name} timed out after {limit:g} s", ok=False)
        except Exception as exc:
            LOG.exception("service %s failed", name)
            _service_reply(client, name, call_id, f"{type(exc).__name__}: {exc}", ok=False)

    def _op_service_response(self, client: Client, msg: dict[str, Any]) -> None:
        fwd = msg.get("id")
        if not isinstance(fwd, str) or fwd not in self._pending:
            raise Refused("service_response for no pending request")
        caller, call_id, name = self._pending.pop(fwd)
        _service_reply(caller, name, call_id, msg.get("values", {}), ok=bool(msg.get("result", True)))

    def _op_send_action_goal(self, client: Client, msg: dict[str, Any]) -> None:
        name, goal_id = _name(msg, "action"), msg.get("id")
        if not isinstance(goal_id, str) or not 0 < len(goal_id) <= 256:
            raise Refused("send_action_goal needs a string 'id' (1-256 characters)")
        action = self.actions.get(name)
        ctx = GoalContext(goal_id, name, msg.get("args", {}), client, bool(msg.get("feedback", True)))
        if action is None:
            ctx.result({"error_code": -1, "error_string": f"action {name} does not exist"}, 6, ok=False)
            return
        if msg.get("action_type", action.type) != action.type:
            ctx.result({"error_code": -1, "error_string": f"{name} has type {action.type}"}, 6, ok=False)
            return
        if goal_id in self.goals and not self.goals[goal_id].finished:
            ctx.result({"error_code": -1, "error_string": f"goal id {goal_id} is already running"}, 6, ok=False)
            return
        if not isinstance(ctx.args, dict):
            ctx.result({"error_code": -1, "error_string": "'args' must be an object"}, 6, ok=False)
            return
        self.goals[goal_id] = ctx
        action.on_goal(ctx)

    def _op_cancel_action_goal(self, client: Client, msg: dict[str, Any]) -> None:
        name, goal_id = _name(msg, "action"), msg.get("id")
        if name not in self.actions or goal_id not in self.goals:
            raise Refused(f"no goal {goal_id!r} on {name}")
        self.actions[name].on_cancel(str(goal_id))


def _service_reply(client: Client, name: str, call_id: Any, values: Any, ok: bool) -> None:
    out: dict[str, Any] = {"op": "service_response", "service": name, "values": values, "result": ok}
    if call_id is not None:
        out["id"] = call_id
    client.send(out)


def _name(msg: dict[str, Any], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str) or not _NAME.match(value):
        raise Refused(f"'{key}' must be a ROS name (got {str(value)[:60]!r})")
    return value


def _type(msg: dict[str, Any], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str) or not _TYPE.match(value):
        raise Refused(f"'{key}' must be a ROS type like pkg/msg/Name (got {str(value)[:60]!r})")
    return value


_HANDLERS: dict[str, Callable[[RosbridgeServer, Client, dict[str, Any]], None]] = {
    "advertise": RosbridgeServer._op_advertise,
    "unadvertise": RosbridgeServer._op_unadvertise,
    "publish": RosbridgeServer._op_publish,
    "subscribe": RosbridgeServer._op_subscribe,
    "unsubscribe": RosbridgeServer._op_unsubscribe,
    "advertise_service": RosbridgeServer._op_advertise_service,
    "unadvertise_service": RosbridgeServer._op_unadvertise_service,
    "call_service": RosbridgeServer._op_call_service,
    "service_response": RosbridgeServer._op_service_response,
    "send_action_goal": RosbridgeServer._op_send_action_goal,
    "cancel_action_goal": RosbridgeServer._op_cancel_action_goal,
}
