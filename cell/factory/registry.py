"""The member registry: who may join, with which key, role and processes (the administrator's list).

The administrator signs the whole registry with its Ed25519 key; every node loads it and checks that
signature (optionally against a pinned administrator key) before trusting any member key in it.
Roles: ``manager`` (hosts the smart products, writes the ledger, receives alarms), ``cell`` (a CPS node
that bids), ``operator`` (a human who may override), ``customer`` (may follow its own products only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .crypto import Identity, b64d, b64e, canonical, check_id, public_from_b64, verify_sig
from .errors import AuthError

__all__ = ["FORMAT", "ROLES", "Member", "Registry"]

FORMAT = "gluecell.factory.registry/1"
ROLES = ("manager", "cell", "operator", "customer")
_DOMAIN = b"gluecell.registry/1\n"


@dataclass(frozen=True)
class Member:
    """One registered member: id (also its MQTT user and client id), role, raw Ed25519 key, processes."""

    id: str
    role: str
    public: str
    processes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_id(self.id, "member id")
        if self.role not in ROLES:
            raise AuthError(f"member {self.id}: role {self.role!r} is not one of {ROLES}")
        b64d(self.public, size=32)
        for p in self.processes:
            check_id(p, "process")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "public": self.public, "processes": list(self.processes)}

    @classmethod
    def from_dict(cls, d: Any) -> Member:
        if not isinstance(d, dict) or set(d) != {"id", "role", "public", "processes"}:
            raise AuthError(f"bad member entry: {d!r:.200}")
        return cls(d["id"], d["role"], d["public"], tuple(d["processes"]))


@dataclass
class Registry:
    """Members by id plus the administrator's public key; ``members`` may change by passed votes."""

    admin_public: str
    members: dict[str, Member] = field(default_factory=dict)
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)

    def add(self, member: Member) -> None:
        self.members[member.id] = member
        self._keys.pop(member.id, None)

    def remove(self, member_id: str) -> None:
        self.members.pop(member_id, None)
        self._keys.pop(member_id, None)

    def get(self, member_id: str) -> Member:
        try:
            return self.members[member_id]
        except KeyError:
            raise AuthError(f"{member_id!r} is not a registered member") from None

    def key(self, member_id: str) -> Any:
        """The member's public key object (cached)."""
        if member_id not in self._keys:
            self._keys[member_id] = public_from_b64(self.get(member_id).public)
        return self._keys[member_id]

    def ids(self, role: str | None = None) -> list[str]:
        return sorted(m.id for m in self.members.values() if role is None or m.role == role)

    def body(self) -> dict[str, Any]:
        return {"format": FORMAT, "admin": self.admin_public,
                "members": [self.members[k].to_dict() for k in sorted(self.members)]}

    def signed(self, admin: Identity) -> dict[str, Any]:
        """The registry as a signed document (the administrator must own ``admin_public``)."""
        if admin.public_b64 != self.admin_public:
            raise AuthError("only the registry's administrator can sign it")
        body = self.body()
        return {**body, "sig": b64e(admin.sign(_DOMAIN + canonical(body)))}

    def save(self, path: str | os.PathLike[str], admin: Identity) -> None:
        from gluecell.core.fileio import atomic_write_json

        atomic_write_json(path, self.signed(admin))

    @classmethod
    def from_signed(cls, doc: Any, *, pin_admin: str | None = None) -> Registry:
        """Check the administrator's signature (and the pinned key, if given) and build the registry."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise AuthError(f"not a {FORMAT} document")
        body = {k: doc.get(k) for k in ("format", "admin", "members")}
        if pin_admin is not None and doc.get("admin") != pin_admin:
            raise AuthError("registry is signed by another administrator than the pinned one")
        try:
            ok = verify_sig(public_from_b64(body["admin"]), _DOMAIN + canonical(body), b64d(doc.get("sig", "")))
        except (AuthError, TypeError, ValueError) as exc:
            raise AuthError(f"registry signature unreadable: {exc}") from exc
        if not ok:
            raise AuthError("registry signature does not verify (edited after the administrator signed it?)")
        reg = cls(body["admin"])
        for m in body["members"]:
            reg.add(Member.from_dict(m))
        return reg

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, pin_admin: str | None = None) -> Registry:
        from gluecell.core.fileio import read_json

        return cls.from_signed(read_json(Path(path), max_bytes=16 * 1024 * 1024), pin_admin=pin_admin)
