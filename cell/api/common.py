"""Helpers shared by the routes: the audit log, pages, JSON responses."""

from __future__ import annotations

import time
from typing import Any

from gluecell.cell.api.auth import Principal
from gluecell.cell.api.db import ApiDb

__all__ = ["audit", "audit_page", "MAX_LIMIT", "json_response"]

#: Largest page a list route returns.
MAX_LIMIT = 200


def audit(db: ApiDb, who: Principal, action: str, target: str, reason: str, outcome: str) -> None:
    """Record one command: who, role, what, on what, why, and what came of it."""
    with db.tx() as c:
        c.execute("INSERT INTO api_audit (ts, user, role, action, target, reason, outcome) VALUES (?,?,?,?,?,?,?)",
                  (time.time(), who.name, who.role, action[:100], target[:200], reason[:500],
                   outcome[:500]))  # fmt: skip


def audit_page(db: ApiDb, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Audit records with id > ``after``, oldest first; returns ``(items, next_after)``."""
    rows = db.query("SELECT * FROM api_audit WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1))
    items = [dict(r) for r in rows[:limit]]
    return items, (int(rows[limit - 1]["id"]) if len(rows) > limit else None)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    """A JSON response with a status and headers."""
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)
