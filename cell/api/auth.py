"""Who is calling: bearer tokens, stored hashed, and the four roles.

A token is 32 random bytes (``secrets.token_urlsafe``) shown once when the user is added
(``gluecell users add NAME --role ROLE``); only its SHA-256 is stored. A slow password hash is not needed:
the token has 256 bits of entropy, so its hash cannot be searched, and an indexed lookup by hash keeps every
request fast. Roles: ``mes`` (the upstream MES: job orders), ``operator`` (the cell's commands, alarms,
overrides), ``engineer`` (all of that, unit modes, the audit log), ``viewer`` (reads only).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from gluecell.cell.api.db import ApiDb
from gluecell.cell.api.problems import Problem

__all__ = ["ROLES", "Principal", "add_user", "rotate_token", "authenticate", "hash_token", "list_users", "set_disabled",
           "require", "READ", "OPERATE", "ENGINEER", "MES"]  # fmt: skip

ROLES: tuple[str, ...] = ("mes", "operator", "engineer", "viewer")
#: Role sets used by the routes.
READ = frozenset(ROLES)
OPERATE = frozenset({"operator", "engineer"})
ENGINEER = frozenset({"engineer"})
MES = frozenset({"mes", "engineer"})
TOKEN_PREFIX = "gc_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user_id: int
    name: str
    role: str


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(db: ApiDb, name: str, role: str) -> str:
    """Create user ``name`` with ``role``; returns the new bearer token (shown once, stored hashed).

    Raises:
        Problem: 422 for a bad name or role, 409 when the name exists.
    """
    if not _NAME.match(name):
        raise Problem(422, "invalid-request", "Invalid user name", "use 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise Problem(422, "invalid-request", "Invalid role", f"role must be one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.tx() as c:
        if c.execute("SELECT 1 FROM api_users WHERE name = ?", (name,)).fetchone():
            raise Problem(409, "conflict", "User exists",
                          f"user {name!r} exists; 'gluecell users rotate' gives it a new token")
        c.execute("INSERT INTO api_users (name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                  (name, role, hash_token(token), time.time()))  # fmt: skip
    return token


def rotate_token(db: ApiDb, name: str) -> str | None:
    """Give user ``name`` a new token (the old one stops working); returns it, or None for an unknown user."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.tx() as c:
        n = c.execute("UPDATE api_users SET token_sha256 = ? WHERE name = ?", (hash_token(token), name)).rowcount
    return token if n else None


def list_users(db: ApiDb) -> list[dict[str, Any]]:
    """Users (never their token hashes)."""
    rows = db.query("SELECT name, role, created_at, disabled FROM api_users ORDER BY name")
    return [{"name": r["name"], "role": r["role"], "created_at": r["created_at"], "disabled": bool(r["disabled"])}
            for r in rows]  # fmt: skip


def set_disabled(db: ApiDb, name: str, disabled: bool = True) -> bool:
    """Disable (or re-enable) a user's token; returns whether the user exists."""
    with db.tx() as c:
        return c.execute("UPDATE api_users SET disabled = ? WHERE name = ?", (int(disabled), name)).rowcount > 0


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="gluecell"'})


def authenticate(db: ApiDb, authorization: str | None) -> Principal:
    """The caller of an ``Authorization: Bearer <token>`` header.

    Raises:
        Problem: 401 when the header is missing, malformed, unknown or disabled.
    """
    if not authorization:
        raise _unauthorized("send 'Authorization: Bearer <token>' (tokens come from 'gluecell users add')")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    rows = db.query("SELECT id, name, role, disabled FROM api_users WHERE token_sha256 = ?", (hash_token(token),))
    if not rows or rows[0]["disabled"]:
        raise _unauthorized("unknown or disabled token")
    r = rows[0]
    return Principal(int(r["id"]), str(r["name"]), str(r["role"]))


def require(roles: frozenset[str]) -> Any:
    """A FastAPI dependency: the caller, authenticated and holding one of ``roles`` (403 otherwise)."""
    async def dependency(request: Request) -> Principal:  # async: an indexed lookup, no thread hop per request
        who = authenticate(request.app.state.db, request.headers.get("authorization"))
        if who.role not in roles:
            raise Problem(403, "forbidden", "Forbidden",
                          f"role {who.role!r} may not do this; allowed: {', '.join(sorted(roles))}")  # fmt: skip
        request.state.principal = who
        return who

    dependency.__name__ = "require_" + "_".join(sorted(roles))
    return dependency
