"""Repositories over the cell database: one small class per table family, plain dicts out.

Every write validates its input first (ids, states, sizes) and raises :class:`StoreError` without touching the
database when it is bad. The controller is the only writer of items, plans, sprays and inspections; the API, the
console and ``gluecell op`` write jobs, items in the ``ordered`` state, and override requests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from .db import Database, dumps, loads
from .errors import StoreError, UnknownItemError
from .schema import ITEM_STATES, OVERRIDE_ACTIONS, SPRAY_STATUSES

__all__ = ["check_id", "Jobs", "Items", "Events", "Plans", "Sprays", "Inspections", "Overrides", "PackTagStore",
           "Meta"]  # fmt: skip

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_ITEM_FIELDS = ("verdict", "cause", "reason", "picture", "attempts", "seq")


def check_id(what: str, value: Any) -> str:
    """``value`` if it is a valid id (1-64 of ``A-Z a-z 0-9 . _ : -``, not starting with a symbol)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise StoreError(f"{what}: {value!r:.80} is not a valid id (1-64 characters A-Z a-z 0-9 . _ : -)", key=what)
    return value


def _text(what: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise StoreError(f"{what}: a non-empty text of at most {limit} characters is required", key=what)
    return value.strip()


def _row(r: Any, json_cols: Iterable[str] = ()) -> dict[str, Any]:
    d = {k: r[k] for k in r.keys()}
    for c in json_cols:
        if c in d:
            d[c] = loads(d[c])
    return d


class Jobs:
    """Job orders (ISA-95: id, work master = style, quantity, priority, state, free parameters)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, job_id: str, work_master: str, quantity: int, *, priority: int = 0, state: str = "AllowedToStart",
            data: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Store a new job; an existing id is refused."""
        check_id("job_id", job_id)
        check_id("work_master", work_master)
        if not isinstance(quantity, int) or not 0 < quantity <= 1_000_000:
            raise StoreError("quantity: an integer within 1-1000000 is required", key="quantity")
        now = time.time()
        if self.db.query_one("SELECT 1 FROM jobs WHERE id = ?", (job_id,)):
            raise StoreError(f"job {job_id} exists already", key="job_id")
        self.db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (job_id, work_master, quantity, int(priority), state, dumps(data or {}), now, now))  # fmt: skip

    def get(self, job_id: str) -> dict[str, Any]:
        """The job as a dict; unknown -> :class:`UnknownItemError`."""
        r = self.db.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if r is None:
            raise UnknownItemError(f"unknown job {job_id!r:.80}")
        return _row(r, ("data",))

    def list(self) -> list[dict[str, Any]]:
        """All jobs, newest first."""
        return [_row(r, ("data",)) for r in self.db.query("SELECT * FROM jobs ORDER BY created DESC")]

    def set_state(self, job_id: str, state: str) -> None:
        """Change a job's state (the API owns the job state machine)."""
        self.get(job_id)
        self.db.execute("UPDATE jobs SET state = ?, updated = ? WHERE id = ?", (_text("state", state, 40),
                        time.time(), job_id))  # fmt: skip


class Items:
    """Work items and their history (every state change appends one history row in the same transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def order(self, item_id: str, style: str, *, size_eu: float | None = None, side: str | None = None,
              job_id: str | None = None) -> None:  # fmt: skip
        """Expect ``item_id`` at the infeed (state ``ordered``); the infeed refuses ids nobody ordered."""
        check_id("item_id", item_id)
        check_id("style", style)
        if side not in (None, "left", "right"):
            raise StoreError(f"side: 'left' or 'right', got {side!r:.20}", key="side")
        if size_eu is not None and not (isinstance(size_eu, int | float) and 15 <= size_eu <= 55):
            raise StoreError(f"size_eu: a number within 15-55, got {size_eu!r:.20}", key="size_eu")
        now = time.time()
        with self.db.transaction() as c:
            if job_id is not None and c.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                raise UnknownItemError(f"unknown job {job_id!r:.80}")
            if c.execute("SELECT 1 FROM work_items WHERE id = ?", (item_id,)).fetchone():
                raise StoreError(f"work item {item_id} is ordered already", key="item_id")
            c.execute("INSERT INTO work_items (id, job_id, style, size_eu, side, state, created, updated) VALUES "
                      "(?, ?, ?, ?, ?, 'ordered', ?, ?)",
                      (item_id, job_id, style, size_eu, side, now, now))  # fmt: skip
            c.execute("INSERT INTO item_history (item_id, ts, state, detail) VALUES (?, ?, 'ordered', '{}')",
                      (item_id, now))  # fmt: skip

    def get(self, item_id: str) -> dict[str, Any]:
        """The item as a dict; unknown -> :class:`UnknownItemError`."""
        r = self.db.query_one("SELECT * FROM work_items WHERE id = ?", (str(item_id)[:80],))
        if r is None:
            raise UnknownItemError(f"unknown work item {item_id!r:.80}", item_id=str(item_id)[:80])
        return _row(r)

    def transition(self, item_id: str, state: str, *, expect: Iterable[str] | None = None,
                   detail: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:  # fmt: skip
        """Move an item to ``state`` (optionally only from one of ``expect``), set ``fields``, log history.

        Returns:
            The item after the change.

        Raises:
            StoreError: unknown state or field, or the item is not in an expected state (nothing changes).
        """
        if state not in ITEM_STATES:
            raise StoreError(f"unknown item state {state!r}; allowed: {ITEM_STATES}", key="state")
        bad = set(fields) - set(_ITEM_FIELDS)
        if bad:
            raise StoreError(f"unknown item field(s) {sorted(bad)}; allowed: {_ITEM_FIELDS}", key="fields")
        now = time.time()
        with self.db.transaction() as c:
            cur = self.get(item_id)
            if expect is not None and cur["state"] not in tuple(expect):
                raise StoreError(f"work item {item_id} is {cur['state']}, not {'/'.join(expect)}",
                                 item_id=item_id, state=cur["state"])  # fmt: skip
            sets = ", ".join(f"{k} = ?" for k in fields)
            c.execute(f"UPDATE work_items SET state = ?, updated = ?{', ' + sets if sets else ''} WHERE id = ?",
                      (state, now, *fields.values(), item_id))  # fmt: skip
            c.execute("INSERT INTO item_history (item_id, ts, state, detail) VALUES (?, ?, ?, ?)",
                      (item_id, now, state, dumps(detail or {})))  # fmt: skip
        return {**cur, "state": state, "updated": now, **fields}

    def history(self, item_id: str) -> list[dict[str, Any]]:
        """The item's state changes, oldest first."""
        rows = self.db.query("SELECT * FROM item_history WHERE item_id = ? ORDER BY seq", (item_id,))
        return [_row(r, ("detail",)) for r in rows]

    def list(self, state: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Items (in one state, or all), in arrival order (ordered items last, by creation)."""
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        rows = self.db.query(f"SELECT * FROM work_items {where} ORDER BY seq IS NULL, seq, created LIMIT ?",
                             (*args, int(limit)))  # fmt: skip
        return [_row(r) for r in rows]

    def rework_queue(self) -> list[dict[str, Any]]:
        """Pairs waiting for the human: reason, cause and picture of each."""
        return self.list("rework")

    def counts(self) -> dict[str, int]:
        """Number of items per state."""
        return {r[0]: r[1] for r in self.db.query("SELECT state, COUNT(*) FROM work_items GROUP BY state")}

    def next_seq(self) -> int:
        """The next arrival sequence number."""
        return int(self.db.query_one("SELECT COALESCE(MAX(seq), 0) + 1 FROM work_items")[0])


class Events:
    """The event log (state changes, commands, refusals, alarms, faults, overrides); ``seq`` orders it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, kind: str, message: str, *, item_id: str | None = None, data: dict[str, Any] | None = None) -> int:
        """Append one event; returns its sequence number."""
        cur = self.db.execute("INSERT INTO events (ts, kind, message, item_id, data) VALUES (?, ?, ?, ?, ?)",
                              (time.time(), kind, message[:2000], item_id, dumps(data or {})))  # fmt: skip
        return int(cur.lastrowid or 0)

    def since(self, seq: int = 0, limit: int = 1000, kind: str | None = None) -> list[dict[str, Any]]:
        """Events after ``seq`` (oldest first), optionally of one kind."""
        where, args = ("AND kind = ?", (kind,)) if kind else ("", ())
        rows = self.db.query(f"SELECT * FROM events WHERE seq > ? {where} ORDER BY seq LIMIT ?",
                             (int(seq), *args, int(limit)))  # fmt: skip
        return [_row(r, ("data",)) for r in rows]


class Plans:
    """Plans per item (``gluecell.plan/1`` JSON with robot programs) and their verdicts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, item_id: str, source: str, verdict: str, data: dict[str, Any] | str) -> int:
        """Store a plan for ``item_id``; returns its id."""
        if verdict not in ("ok", "needs_human"):
            raise StoreError(f"plan verdict must be ok or needs_human, got {verdict!r}", key="verdict")
        text = data if isinstance(data, str) else dumps(data)
        cur = self.db.execute("INSERT INTO plans (item_id, source, verdict, data, created) VALUES (?, ?, ?, ?, ?)",
                              (item_id, source, verdict, text, time.time()))  # fmt: skip
        return int(cur.lastrowid or 0)

    def get(self, plan_id: int) -> dict[str, Any]:
        """One plan; unknown -> :class:`UnknownItemError`."""
        r = self.db.query_one("SELECT * FROM plans WHERE id = ?", (int(plan_id),))
        if r is None:
            raise UnknownItemError(f"unknown plan {plan_id}")
        return _row(r, ("data",))

    def latest(self, item_id: str) -> dict[str, Any] | None:
        """The item's newest plan, or None."""
        r = self.db.query_one("SELECT * FROM plans WHERE item_id = ? ORDER BY id DESC LIMIT 1", (item_id,))
        return None if r is None else _row(r, ("data",))


class Sprays:
    """Spray goals: the intent is written before a goal is sent, the outcome after (see the controller)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def intent(self, item_id: str, plan_id: int | None, part: str, goal_id: str) -> int:
        """Record the intent to spray ``part`` of ``item_id`` with goal ``goal_id`` (before sending it)."""
        check_id("goal_id", goal_id)
        now = time.time()
        cur = self.db.execute("INSERT INTO sprays (item_id, plan_id, part, goal_id, status, created, updated) "
                              "VALUES (?, ?, ?, ?, 'intent', ?, ?)",
                              (item_id, plan_id, part, goal_id, now, now))  # fmt: skip
        return int(cur.lastrowid or 0)

    def set_status(self, goal_id: str, status: str, detail: dict[str, Any] | None = None) -> None:
        """Record what happened to goal ``goal_id``."""
        if status not in SPRAY_STATUSES:
            raise StoreError(f"unknown spray status {status!r}; allowed: {SPRAY_STATUSES}", key="status")
        cur = self.db.execute("UPDATE sprays SET status = ?, detail = ?, updated = ? WHERE goal_id = ?",
                              (status, dumps(detail or {}), time.time(), goal_id))  # fmt: skip
        if cur.rowcount != 1:
            raise UnknownItemError(f"unknown spray goal {goal_id!r:.80}")

    def unfinished(self) -> list[dict[str, Any]]:
        """Goals whose outcome was never recorded (``intent`` or ``sent``): what a restart must reconcile."""
        rows = self.db.query("SELECT * FROM sprays WHERE status IN ('intent', 'sent') ORDER BY id")
        return [_row(r, ("detail",)) for r in rows]

    def for_item(self, item_id: str) -> list[dict[str, Any]]:
        """All goals of one item, oldest first."""
        return [_row(r, ("detail",)) for r in self.db.query("SELECT * FROM sprays WHERE item_id = ? ORDER BY id",
                                                            (item_id,))]  # fmt: skip


class Inspections:
    """Inspection verdicts (from quality/, the stand-in, or an override)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, item_id: str, source: str, verdict: str, *, cause: str | None = None,
            data: dict[str, Any] | None = None, picture: str | None = None) -> int:  # fmt: skip
        """Record one inspection; returns its id."""
        if verdict not in ("pass", "fail", "uncertain"):
            raise StoreError(f"inspection verdict must be pass, fail or uncertain, got {verdict!r}", key="verdict")
        cur = self.db.execute("INSERT INTO inspections (item_id, source, verdict, cause, data, picture, created) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (item_id, source, verdict, cause, dumps(data or {}), picture, time.time()))  # fmt: skip
        return int(cur.lastrowid or 0)

    def for_item(self, item_id: str) -> list[dict[str, Any]]:
        """All inspections of one item, oldest first."""
        rows = self.db.query("SELECT * FROM inspections WHERE item_id = ? ORDER BY id", (item_id,))
        return [_row(r, ("data",)) for r in rows]


class Overrides:
    """Human requests (who, when, why), pending until the controller applies or refuses them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def request(self, action: str, who: str, why: str, *, item_id: str | None = None,
                args: dict[str, Any] | None = None) -> int:  # fmt: skip
        """Queue a request; the controller picks it up within one poll (~50 ms). Returns its id."""
        if action not in OVERRIDE_ACTIONS:
            raise StoreError(f"unknown override {action!r}; allowed: {OVERRIDE_ACTIONS}", key="action")
        who, why = _text("who", who, 100), _text("why", why, 1000)
        if item_id is not None:
            check_id("item_id", item_id)
        cur = self.db.execute("INSERT INTO overrides (action, item_id, args, who, why, created) VALUES "
                              "(?, ?, ?, ?, ?, ?)",
                              (action, item_id, dumps(args or {}), who, why, time.time()))  # fmt: skip
        return int(cur.lastrowid or 0)

    def pending(self) -> list[dict[str, Any]]:
        """Requests not yet applied, oldest first."""
        rows = self.db.query("SELECT * FROM overrides WHERE applied IS NULL ORDER BY id")
        return [_row(r, ("args",)) for r in rows]

    def resolve(self, override_id: int, result: str) -> None:
        """Mark a request applied (or refused: ``result`` says which and why)."""
        self.db.execute("UPDATE overrides SET applied = ?, result = ? WHERE id = ?",
                        (time.time(), result[:1000], int(override_id)))  # fmt: skip

    def get(self, override_id: int) -> dict[str, Any]:
        """One request; unknown -> :class:`UnknownItemError`."""
        r = self.db.query_one("SELECT * FROM overrides WHERE id = ?", (int(override_id),))
        if r is None:
            raise UnknownItemError(f"unknown override {override_id}")
        return _row(r, ("args",))

    def for_item(self, item_id: str) -> list[dict[str, Any]]:
        """Requests about one item, newest first."""
        rows = self.db.query("SELECT * FROM overrides WHERE item_id = ? ORDER BY id DESC", (item_id,))
        return [_row(r, ("args",)) for r in rows]

    def list(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest requests first."""
        rows = self.db.query("SELECT * FROM overrides ORDER BY id DESC LIMIT ?", (int(limit),))
        return [_row(r, ("args",)) for r in rows]


class PackTagStore:
    """The PackTags snapshot, one JSON value per tag name."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, tags: dict[str, Any]) -> None:
        """Write all tags in one transaction."""
        now = time.time()
        with self.db.transaction() as c:
            c.executemany("INSERT INTO packtags (name, value, updated) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE"
                          " SET value = excluded.value, updated = excluded.updated",
                          [(k, dumps(v), now) for k, v in tags.items()])  # fmt: skip

    def load(self) -> dict[str, Any]:
        """Tag name -> value (empty for a new database)."""
        return {r["name"]: loads(r["value"]) for r in self.db.query("SELECT name, value FROM packtags")}


class Meta:
    """Small key/value facts about the controller (e.g. whether the last run ended cleanly)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``."""
        r = self.db.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return default if r is None else loads(r[0])

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, dumps(value)))  # fmt: skip
