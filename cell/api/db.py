"""The API's own tables (users and their hashed tokens, idempotency keys, audit log, job orders,
alarm handling) in SQLite.

They live in the same SQLite file as the cell's store (:mod:`gluecell.cell.store`; WAL mode, so the controller
and the API read and write side by side); the event log is the store's ``events`` table. Migrations are
numbered SQL scripts recorded in their own ``api_migrations`` table: the store refuses a database whose
``schema_migrations`` version is newer than it knows, so the API's tables are versioned apart from it.
One connection per :class:`ApiDb`, guarded by a lock: every statement is short, and SQLite serialises writers.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["ApiDb", "MIGRATIONS"]

#: Numbered migrations of the API's tables (append only; never edit a released one).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE api_users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE api_idempotency (
        user_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        status_code INTEGER,
        body TEXT,
        headers TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (user_id, key)
    );
    CREATE TABLE api_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        reason TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE TABLE api_job_orders (
        job_order_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        state INTEGER NOT NULL,
        removed INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL,
        priority INTEGER NOT NULL,
        start_after REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        actual_start REAL,
        actual_end REAL,
        actuals TEXT NOT NULL
    );
    CREATE INDEX api_job_orders_state ON api_job_orders (state, priority);
    CREATE TABLE api_alarms (
        key TEXT PRIMARY KEY,
        code INTEGER NOT NULL,
        text TEXT NOT NULL,
        priority TEXT NOT NULL,
        raised_at REAL NOT NULL,
        active INTEGER NOT NULL,
        returned_at REAL,
        acked_by TEXT,
        acked_at REAL,
        shelved_until REAL,
        shelved_by TEXT
    );
    """,
)


class ApiDb:
    """A connection to the cell's SQLite file with the API's tables migrated.

    Args:
        path: the SQLite file (created with its folder if missing); ``":memory:"`` for a private one.
    """

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=10000")
        self.migrate()

    def migrate(self) -> int:
        """Apply the migrations not yet applied; returns the schema version."""
        with self.tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS api_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
            done = {r[0] for r in c.execute("SELECT version FROM api_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                for stmt in (s.strip() for s in script.split(";")):
                    if stmt:
                        c.execute(stmt)
                c.execute("INSERT INTO api_migrations VALUES (?, ?)", (version, time.time()))
        return len(MIGRATIONS)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), committed on success, rolled back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read statement; returns all rows."""
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
