"""``Idempotency-Key`` on every create (IETF httpapi idempotency-key draft).

Missing key → 400; the same key with another request → 422; a retry while the first request is still
running → 409; a retry after it finished → the first result again (with ``Idempotent-Replayed: true``).
Keys are scoped to the caller and kept for :data:`KEY_TTL_S`. The claim on a key is one ``INSERT`` in a
write transaction, so of 20 parallel duplicates exactly one runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from gluecell.cell.api.auth import Principal
from gluecell.cell.api.db import ApiDb
from gluecell.cell.api.problems import Problem

__all__ = ["run_idempotent", "fingerprint", "KEY_TTL_S"]

KEY_TTL_S = 24 * 3600.0
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(method: str, path: str, payload: Any) -> str:
    """SHA-256 over the method, path and the request's canonical JSON."""
    text = json.dumps([method.upper(), path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _claim(db: ApiDb, who: Principal, key: str, fp: str) -> tuple[int, dict[str, Any]] | None:
    """Claim ``key`` for this request; returns the stored result of a finished first request, else None."""
    now = time.time()
    with db.tx() as c:
        c.execute("DELETE FROM api_idempotency WHERE created_at < ?", (now - KEY_TTL_S,))
        row = c.execute("SELECT fingerprint, status, status_code, body FROM api_idempotency"
                        " WHERE user_id = ? AND key = ?", (who.user_id, key)).fetchone()  # fmt: skip
        if row is None:
            c.execute("INSERT INTO api_idempotency (user_id, key, fingerprint, status, created_at) VALUES (?,?,?,?,?)",
                      (who.user_id, key, fp, "running", now))  # fmt: skip
            return None
    if row["fingerprint"] != fp:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      "this Idempotency-Key was used for another request; use a new key")  # fmt: skip
    if row["status"] == "running":
        raise Problem(409, "idempotency-key-in-use", "Request in progress",
                      "the first request with this Idempotency-Key is still running; retry later",
                      headers={"Retry-After": "1"})  # fmt: skip
    return int(row["status_code"]), json.loads(row["body"])


def run_idempotent(db: ApiDb, who: Principal, key: str | None, fp: str,
                   create: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any], bool]:  # fmt: skip
    """Run ``create`` once per key; returns ``(status, body, replayed)``.

    A create that raises releases the key (the caller may retry with the same key after fixing the cause).
    """
    if key is None:
        raise Problem(400, "idempotency-key-missing", "Idempotency-Key missing",
                      "every create needs an 'Idempotency-Key' header (e.g. a UUID)")  # fmt: skip
    if not _KEY.match(key):
        raise Problem(400, "idempotency-key-invalid", "Invalid Idempotency-Key", "use 1-255 printable ASCII characters")
    stored = _claim(db, who, key, fp)
    if stored is not None:
        return stored[0], stored[1], True
    try:
        status, body = create()
    except BaseException:
        with db.tx() as c:
            c.execute("DELETE FROM api_idempotency WHERE user_id = ? AND key = ?", (who.user_id, key))
        raise
    with db.tx() as c:
        c.execute("UPDATE api_idempotency SET status = 'done', status_code = ?, body = ? WHERE user_id = ? AND key = ?",
                  (status, json.dumps(body, default=str), who.user_id, key))  # fmt: skip
    return status, body, False
