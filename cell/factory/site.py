"""A factory site folder: the administrator's key, member keys and broker passwords, the signed registry,
and the broker's password and ACL files. What an administrator sets up once; what every node reads.

Layout: ``admin.key``, ``keys/<id>.key`` (0600), ``secrets/<id>.pw`` (0600), ``registry.json`` (signed by
the administrator), ``passwd`` and ``acl`` (mosquitto). Secrets are never printed or logged.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .bus.base import acl_rules
from .crypto import Identity, load_identity
from .errors import AuthError
from .registry import Member, Registry

__all__ = ["Site", "create_site", "load_site"]


@dataclass
class Site:
    """A loaded site folder."""

    path: Path
    registry: Registry

    def identity(self, member_id: str) -> Identity:
        ident = load_identity(self.path / "keys" / f"{member_id}.key")
        if ident.id != member_id or self.registry.get(member_id).public != ident.public_b64:
            raise AuthError(f"key file of {member_id} does not match the registry")
        return ident

    def password(self, member_id: str) -> str:
        return (self.path / "secrets" / f"{member_id}.pw").read_text().strip()

    def load_registry(self) -> Registry:
        """A fresh copy of the registry (each agent keeps its own, changed only by passed votes)."""
        return Registry.load(self.path / "registry.json", pin_admin=self.registry.admin_public)

    @property
    def managers(self) -> list[str]:
        return self.registry.ids("manager")

    def hub_rules(self) -> dict[str, list[tuple[str, str]]]:
        """Per-member access rules (the same ones the broker's acl_file holds)."""
        return {m.id: acl_rules(m.role, m.processes, self.managers) for m in self.registry.members.values()}

    def write_broker_files(self) -> None:
        from .bus.broker import write_acl, write_passwords

        write_passwords(self.path / "passwd", {m: self.password(m) for m in self.registry.members})
        write_acl(self.path / "acl", sorted(self.hub_rules().items()))


def _secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


def create_site(path: str | os.PathLike[str], members: list[tuple[str, str, tuple[str, ...]]], *,
                broker_files: bool = True) -> Site:
    """Create keys, passwords and the signed registry for ``members`` = [(id, role, processes), ...]."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    admin = Identity.generate("admin")
    admin.save(path / "admin.key")
    reg = Registry(admin.public_b64)
    for member_id, role, processes in members:
        ident = Identity.generate(member_id)
        ident.save(path / "keys" / f"{member_id}.key")
        _secret_file(path / "secrets" / f"{member_id}.pw", secrets.token_urlsafe(18))
        reg.add(Member(member_id, role, ident.public_b64, tuple(processes)))
    reg.save(path / "registry.json", admin)
    site = Site(path, reg)
    if broker_files:
        site.write_broker_files()
    return site


def load_site(path: str | os.PathLike[str], *, pin_admin: str | None = None) -> Site:
    """Load a site folder (the registry's signature is checked)."""
    path = Path(path)
    return Site(path, Registry.load(path / "registry.json", pin_admin=pin_admin))
