"""Protocol messages: the papers' XML template, signed over the exact bytes sent.

On the wire a message is one frame::

    b"GCF1 " + sender + b" " + base64(Ed25519 signature of XML) + b"\\n" + XML

and the XML is the papers' template plus the FIPA-ACL fields the protocol needs::

    <message><action/><sender/><sendType/><receiver/><content language="json"/>
             <messageId/><conversationId/><inReplyTo/>?<sent/><expires/><replyBy/>?</message>

:class:`Verifier` checks, in this order: frame shape and size, sender registered, signature over the
exact XML bytes (before any parsing), no ``<!`` at all (DOCTYPE, entities, comments, CDATA), parsing with
``defusedxml``, the schema below, sender matches the frame, timestamps (not from the future, not
expired, validity window bounded), and the nonce cache (a message id seen within its validity window
is a replay). Refusals raise :class:`MessageRefused` with reason forged / replayed / expired / malformed /
misdirected and are logged (without secrets) and counted.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .crypto import ID_RE, Identity, b64d, b64e, verify_sig
from .errors import AuthError, MessageRefused
from .registry import Registry

__all__ = ["ACTIONS", "MAX_FRAME", "Message", "Verifier", "encode", "new_message"]

log = logging.getLogger(__name__)

#: FIPA Contract Net / ACL performatives, plus the factory's own.
ACTIONS = (
    "cfp", "propose", "refuse", "not-understood", "accept-proposal", "reject-proposal", "inform-done",
    "inform-result", "failure", "cancel", "query-ref", "inform", "agree", "register", "vote-propose", "vote",
    "override", "alarm",
)
SEND_TYPES = ("unicast", "broadcast")
MAX_FRAME = 64 * 1024
MAX_TEXT = 128
_TOKEN = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
_FIELDS = (  # (tag, required): the schema, in document order
    ("action", True), ("sender", True), ("sendType", True), ("receiver", True), ("content", True),
    ("messageId", True), ("conversationId", True), ("inReplyTo", False), ("sent", True), ("expires", True),
    ("replyBy", False),
)


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str, tag: str) -> float:
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text):
        raise ValueError(f"<{tag}> is not an ISO 8601 UTC timestamp")
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class Message:
    """One protocol message (times are POSIX seconds, UTC)."""

    action: str
    sender: str
    receiver: str
    content: dict[str, Any]
    conversation_id: str
    send_type: str = "unicast"
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    in_reply_to: str | None = None
    sent: float = field(default_factory=time.time)
    expires: float = 0.0
    reply_by: float | None = None

    def reply(self, sender: str, action: str, content: dict[str, Any], *, validity: float = 30.0,
              reply_by: float | None = None) -> Message:
        """A unicast answer to this message's sender in the same conversation."""
        return new_message(action, sender, self.sender, content, conversation_id=self.conversation_id,
                           in_reply_to=self.message_id, validity=validity, reply_by=reply_by)


def new_message(action: str, sender: str, receiver: str, content: dict[str, Any], *, conversation_id: str,
                send_type: str = "unicast", in_reply_to: str | None = None, validity: float = 30.0,
                reply_by: float | None = None) -> Message:
    """A message sent now that expires ``validity`` seconds later (its replay-protection window; ``reply_by`` is
    the protocol's own deadline for the answer and may be later)."""
    now = time.time()
    expires = now + validity
    return Message(action, sender, receiver, content, conversation_id, send_type, uuid.uuid4().hex, in_reply_to,
                   now, expires, reply_by)


def _to_xml(m: Message) -> bytes:
    from xml.sax.saxutils import escape

    parts = [("action", m.action), ("sender", m.sender), ("sendType", m.send_type), ("receiver", m.receiver)]
    out = ["<message>"] + [f"<{t}>{escape(v)}</{t}>" for t, v in parts]
    body = json.dumps(m.content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    out.append(f'<content language="json">{escape(body)}</content>')
    out.append(f"<messageId>{escape(m.message_id)}</messageId><conversationId>{escape(m.conversation_id)}"
               "</conversationId>")
    if m.in_reply_to:
        out.append(f"<inReplyTo>{escape(m.in_reply_to)}</inReplyTo>")
    out.append(f"<sent>{_ts(m.sent)}</sent><expires>{_ts(m.expires)}</expires>")
    if m.reply_by is not None:
        out.append(f"<replyBy>{_ts(m.reply_by)}</replyBy>")
    out.append("</message>")
    return "".join(out).encode()


def encode(identity: Identity, m: Message) -> bytes:
    """The signed frame of ``m`` (the signature covers exactly the XML bytes in the frame)."""
    if identity.id != m.sender:
        raise AuthError(f"{identity.id} cannot send a message as {m.sender}")
    xml = _to_xml(m)
    if len(xml) + 200 > MAX_FRAME:
        raise MessageRefused("malformed", f"message of {len(xml)} bytes is over the {MAX_FRAME} byte limit")
    return b"GCF1 " + m.sender.encode() + b" " + b64e(identity.sign(xml)).encode() + b"\n" + xml


def _schema(root: Any) -> dict[str, str]:
    """Check the element tree against the schema; returns tag -> text."""
    if root.tag != "message" or root.attrib or (root.text or "").strip():
        raise ValueError("root must be a bare <message>")
    tags = [c.tag for c in root]
    expected = [t for t, req in _FIELDS if req or t in tags]
    if tags != expected:
        raise ValueError(f"elements {tags} do not follow the schema {[t for t, _ in _FIELDS]}")
    out: dict[str, str] = {}
    for c in root:
        if len(c) or (c.tail or "").strip():
            raise ValueError(f"<{c.tag}> must hold text only")
        if c.attrib and not (c.tag == "content" and c.attrib == {"language": "json"}):
            raise ValueError(f"<{c.tag}> has unexpected attributes {sorted(c.attrib)}")
        text = c.text or ""
        if c.tag != "content" and len(text) > MAX_TEXT:
            raise ValueError(f"<{c.tag}> is longer than {MAX_TEXT} characters")
        out[c.tag] = text
    for t in ("messageId", "conversationId", "inReplyTo", "receiver"):
        if t in out and not _TOKEN.match(out[t]):
            raise ValueError(f"<{t}> {out[t]!r:.40} is not a valid token")
    if out["action"] not in ACTIONS or out["sendType"] not in SEND_TYPES or not ID_RE.match(out["sender"]):
        raise ValueError("unknown action, sendType or sender")
    return out


@dataclass
class Verifier:
    """Checks incoming frames for one member (``me``); keeps the nonce cache and refusal counts."""

    registry: Registry
    me: str | None = None
    skew: float = 5.0
    max_validity: float = 600.0
    refused: Counter = field(default_factory=Counter)
    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, frame: bytes, *, now: float | None = None) -> Message:
        """The verified message, or :class:`MessageRefused` (logged and counted)."""
        try:
            return self._check(frame, time.time() if now is None else now)
        except MessageRefused as exc:
            with self._lock:
                self.refused[exc.reason] += 1
            log.warning("%s refused a message: %s", self.me or "verifier", exc.message)
            raise

    def _check(self, frame: bytes, now: float) -> Message:
        if not isinstance(frame, bytes | bytearray) or len(frame) > MAX_FRAME or not frame.startswith(b"GCF1 "):
            raise MessageRefused("malformed", "not a GCF1 frame or over the size limit")
        head, sep, xml = bytes(frame).partition(b"\n")
        fields = head.split(b" ")
        if not sep or len(fields) != 3:
            raise MessageRefused("malformed", "bad frame header")
        sender = fields[1].decode("ascii", "replace")
        if sender not in self.registry.members:
            raise MessageRefused("forged", f"sender {sender[:64]!r} is not a registered member")
        try:
            ok = verify_sig(self.registry.key(sender), xml, b64d(fields[2].decode("ascii", "replace"), size=64))
        except AuthError:
            ok = False
        if not ok:
            raise MessageRefused("forged", f"signature of {sender} does not verify over the bytes received")
        return self._parse(sender, xml, now)

    def _parse(self, sender: str, xml: bytes, now: float) -> Message:
        import defusedxml.ElementTree as DET

        if b"<!" in xml or b"<?" in xml:
            raise MessageRefused("malformed", f"{sender}: DOCTYPE, entity, comment or processing instruction")
        try:
            root = DET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            f = _schema(root)
            content = json.loads(f["content"], parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            if not isinstance(content, dict):
                raise ValueError("content must be a JSON object")
            sent, expires = _parse_ts(f["sent"], "sent"), _parse_ts(f["expires"], "expires")
            reply_by = _parse_ts(f["replyBy"], "replyBy") if "replyBy" in f else None
        except (ValueError, SyntaxError, TypeError) as exc:  # ParseError is a SyntaxError
            raise MessageRefused("malformed", f"{sender}: {exc}") from None
        except Exception as exc:  # defusedxml's own refusals
            raise MessageRefused("malformed", f"{sender}: {type(exc).__name__}") from None
        if f["sender"] != sender:
            raise MessageRefused("forged", f"frame says {sender} but <sender> says {f['sender'][:64]!r}")
        if f["sendType"] == "unicast" and self.me is not None and f["receiver"] != self.me:
            raise MessageRefused("misdirected", f"{sender}: addressed to {f['receiver']!r}, not {self.me}")
        if sent > now + self.skew or expires - sent > self.max_validity or expires < sent:
            raise MessageRefused("malformed", f"{sender}: timestamps out of bounds")
        if expires < now:
            raise MessageRefused("expired", f"{sender}: message {f['messageId']} expired {now - expires:.3f} s ago")
        self._remember(f["messageId"], expires, now, sender)
        return Message(f["action"], sender, f["receiver"], content, f["conversationId"], f["sendType"],
                       f["messageId"], f.get("inReplyTo"), sent, expires, reply_by)

    def _remember(self, message_id: str, expires: float, now: float, sender: str) -> None:
        key = f"{sender}/{message_id}"
        with self._lock:
            if key in self._seen:
                raise MessageRefused("replayed", f"{sender}: message {message_id} was already received")
            if len(self._seen) > 4096:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
            self._seen[key] = expires
