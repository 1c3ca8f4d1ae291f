"""The MQTT bus: ``paho-mqtt`` 2.x (VERSION2 callbacks, MQTT 5, QoS 1) with TCP_NODELAY on the socket.

Without TCP_NODELAY on both sides (broker: ``set_tcp_nodelay true``) a request/response round trip
stalls 40-90 ms in Nagle's algorithm and delayed ACKs. Each connection registers a last will
(``gcf/status/<client id>`` = ``offline``), so a node that dies is noticed at once. Client ids are member
ids, which never contain ``/``, ``+`` or ``#``.
"""

from __future__ import annotations

import logging
import socket
import threading

from ..crypto import check_id
from ..errors import AuthError, BusError
from .base import STATUS, Handler, topic_matches

__all__ = ["MqttBus"]

log = logging.getLogger(__name__)


class MqttBus:
    """One member's MQTT connection (implements :class:`~.base.Bus`)."""

    def __init__(self, member_id: str, password: str, host: str = "127.0.0.1", port: int = 1883, *,
                 keepalive: int = 10, client_id: str | None = None) -> None:
        self.member_id = check_id(member_id)
        self.client_id = check_id(client_id or member_id, "client id")
        self._password, self.host, self.port, self.keepalive = password, host, port, keepalive
        self._handlers: list[tuple[str, Handler]] = []
        self._connected = threading.Event()
        self._result: str | None = None
        self._client = None
        self._lock = threading.Lock()

    def connect(self, timeout: float = 5.0) -> None:
        """Connect and wait for the broker's CONNACK; raises :class:`AuthError` on a refused login."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=MQTTProtocolVersion.MQTTv5)
        c.username_pw_set(self.member_id, self._password)
        c.will_set(STATUS + self.client_id, b"offline", qos=1)
        c.max_inflight_messages_set(1000)
        c.on_socket_open = lambda _c, _u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self._client = c
        try:
            c.connect(self.host, self.port, keepalive=self.keepalive)
        except OSError as exc:
            raise BusError(f"{self.member_id}: cannot reach the broker at {self.host}:{self.port}: {exc}") from exc
        c.loop_start()
        if not self._connected.wait(timeout) or self._result != "ok":
            c.loop_stop()
            c.disconnect()
            if self._result and self._result != "ok":
                raise AuthError(f"{self.member_id}: broker refused the connection: {self._result}")
            raise BusError(f"{self.member_id}: no CONNACK within {timeout} s")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._result = str(reason_code)
            self._connected.set()
            client.disconnect()
            return
        self._result = "ok"
        with self._lock:
            filters = sorted({f for f, _ in self._handlers})
        for f in filters:  # resubscribe after a reconnect
            client.subscribe(f, qos=1)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._result == "ok":
            log.info("%s: disconnected (%s)", self.member_id, reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            handlers = [h for f, h in self._handlers if topic_matches(f, msg.topic)]
        for h in handlers:
            try:
                h(msg.topic, bytes(msg.payload))
            except Exception:  # never kill paho's network thread
                log.exception("%s: handler for %s failed", self.member_id, msg.topic)

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def publish(self, topic: str, payload: bytes) -> None:
        if self._client is None:
            raise BusError(f"{self.member_id}: not connected")
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != 0:
            raise BusError(f"{self.member_id}: publish to {topic} failed (rc {info.rc})")

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        if self._client is None:
            raise BusError(f"{self.member_id}: not connected")
        with self._lock:
            self._handlers.append((topic_filter, handler))
        self._client.subscribe(topic_filter, qos=1)

    def disconnect(self) -> None:
        """A clean goodbye (the broker does not send the last will)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
