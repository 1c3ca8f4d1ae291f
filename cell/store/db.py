"""The SQLite connection of the cell: WAL mode, migrations, one lock, explicit transactions.

One :class:`Database` per process is enough: it holds one connection guarded by a lock (SQLite serialises
writers anyway); other processes (``gluecell op``, a second reader) open their own. WAL lets readers run beside
the writer. Every write of the controller is a transaction that either lands whole or not at all, so a SIGKILL
at any instant leaves the last committed state (``synchronous=NORMAL`` survives a killed process; ``FULL`` also
survives a power cut, at one fsync per commit).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import SchemaVersionError, StoreError
from .schema import MIGRATIONS

__all__ = ["Database", "migrate", "schema_version", "dumps", "loads"]

_SYNC = ("OFF", "NORMAL", "FULL", "EXTRA")
#: Largest JSON document a column takes (a plan with both robot programs is ~100 kB).
MAX_JSON_BYTES = 8 * 1024 * 1024


def dumps(obj: Any) -> str:
    """Compact JSON for a column; NaN/inf are refused (they are not JSON)."""
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"value is not storable as JSON: {exc}") from exc
    if len(text) > MAX_JSON_BYTES:
        raise StoreError(f"JSON value of {len(text)} bytes exceeds {MAX_JSON_BYTES}")
    return text


def loads(text: str | None) -> Any:
    """Inverse of :func:`dumps` (None stays None)."""
    return None if text is None else json.loads(text)


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration (0 for a new database)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied REAL NOT NULL)")  # fmt: skip
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str, str]] = MIGRATIONS) -> int:
    """Apply the migrations above the database's version, each in its own transaction; returns the version.

    Raises:
        SchemaVersionError: the database is newer than ``migrations`` (written by a newer gluecell).
    """
    current = schema_version(conn)
    known = max((v for v, _, _ in migrations), default=0)
    if current > known:
        raise SchemaVersionError(f"database schema version {current} is newer than this gluecell knows ({known});"
                                 " upgrade gluecell", found=current, known=known)  # fmt: skip
    for version, name, sql in sorted(migrations):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in (s.strip() for s in sql.split(";")):
                if stmt:
                    conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


class Database:
    """A WAL-mode SQLite database at ``path``, migrated on open.

    Args:
        path: database file (created with its folder), or ":memory:" for a throw-away one.
        synchronous: SQLite ``synchronous`` pragma (NORMAL: durable against a killed process; FULL: also
            against a power cut).
        busy_timeout_s: how long a write waits for another process's write lock.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", busy_timeout_s: float = 5.0,
                 migrations: Sequence[tuple[int, str, str]] = MIGRATIONS) -> None:  # fmt: skip
        if synchronous.upper() not in _SYNC:
            raise StoreError(f"synchronous must be one of {_SYNC}, got {synchronous!r}", key="synchronous")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=busy_timeout_s)  # fmt: skip
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.version = migrate(self._conn, migrations)

    @property
    def journal_mode(self) -> str:
        """The journal mode SQLite reports ("wal" on a file database)."""
        return str(self.query_one("PRAGMA journal_mode")[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``with db.transaction() as c:`` — everything inside commits together or not at all (nestable)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement in its own transaction (or the caller's, inside :meth:`transaction`)."""
        with self.transaction() as c:
            return c.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """All rows of a read (:class:`sqlite3.Row`: by position and by column name)."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of a read, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._conn.close()

