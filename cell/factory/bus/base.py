"""The bus interface, the topic layout and the per-role access rules shared by both buses.

Topics: ``gcf/inbox/<member>`` (unicast), ``gcf/cfp/<process>`` (calls for proposals), ``gcf/vote``
(proposals, votes, overrides), ``gcf/alarm`` (to the human manager), ``gcf/status/<client>`` (the last
will: ``offline`` when a node vanishes). Member ids are MQTT usernames and client ids. The same rules
become mosquitto's ``acl_file`` (with ``%u``/``%c`` patterns) and the in-process hub's checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["ALARM", "STATUS", "VOTE", "Bus", "Handler", "acl_rules", "allowed", "cfp_topic", "inbox",
           "topic_matches"]

VOTE = "gcf/vote"
ALARM = "gcf/alarm"
STATUS = "gcf/status/"
Handler = Callable[[str, bytes], None]


def inbox(member: str) -> str:
    return f"gcf/inbox/{member}"


def cfp_topic(process: str) -> str:
    return f"gcf/cfp/{process}"


class Bus(Protocol):
    """A connection of one member to the factory's message bus."""

    member_id: str

    def connect(self, timeout: float = 5.0) -> None: ...

    def disconnect(self) -> None: ...

    @property
    def is_connected(self) -> bool: ...

    def publish(self, topic: str, payload: bytes) -> None: ...

    def subscribe(self, topic_filter: str, handler: Handler) -> None: ...


#: Rules every member gets: read its own inbox, write its own status (the last will).
COMMON_RULES = (("read", "gcf/inbox/%u"), ("write", "gcf/status/%c"))


def acl_rules(role: str, processes: Iterable[str] = (), managers: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The user-specific (access, topic) rules of a member of ``role``."""
    if role == "manager":
        return [("write", "gcf/inbox/+"), ("write", "gcf/cfp/#"), ("readwrite", VOTE), ("readwrite", ALARM),
                ("read", "gcf/status/+")]
    if role == "cell":
        return [("write", "gcf/inbox/+"), ("readwrite", VOTE)] + [("read", cfp_topic(p)) for p in processes]
    if role == "operator":
        return [("write", "gcf/inbox/+"), ("read", ALARM), ("readwrite", VOTE)]
    return [("write", inbox(m)) for m in managers]  # customer: may only ask the product host


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic-filter match (``+`` one level, ``#`` the rest)."""
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def allowed(rules: Iterable[tuple[str, str]], member: str, access: str, topic: str) -> bool:
    """Whether ``rules`` (user-specific plus :data:`COMMON_RULES`) let ``member`` read/write ``topic``."""
    for acc, pat in (*COMMON_RULES, *rules):
        pat = pat.replace("%u", member).replace("%c", member)
        if access in acc and topic_matches(pat, topic):
            return True
    return False
