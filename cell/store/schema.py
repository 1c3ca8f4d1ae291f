"""The cell database's schema, as an ordered list of migrations.

Each migration is ``(version, name, sql)``; :func:`gluecell.cell.store.db.migrate` applies those above the
database's ``schema_migrations`` version in one transaction each. Never edit a released migration: append a new
one. Times are UNIX seconds (REAL, UTC); JSON columns hold plain JSON text.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "ITEM_STATES", "SPRAY_STATUSES", "OVERRIDE_ACTIONS"]

#: Life of a work item. ``ordered``: expected (a job lists it); ``arrived``: its id was read at the infeed;
#: ``planned``: scanned, predicted and planned; ``spraying``: a spray goal was (about to be) sent;
#: ``sprayed``: the robot finished; ``passed`` / ``rework`` / ``skipped``: routed (final unless a human
#: overrides).
ITEM_STATES = ("ordered", "arrived", "planned", "spraying", "sprayed", "passed", "rework", "skipped")

#: A spray goal's life: ``intent`` is written before the goal is sent; ``sent`` once the robot accepted it;
#: then exactly one of the final statuses. ``interrupted``: found unfinished on restart and reconciled.
SPRAY_STATUSES = ("intent", "sent", "succeeded", "failed", "cancelled", "not_sent", "interrupted")

#: What a human may ask (``gluecell op`` or the console). See :mod:`gluecell.cell.control.overrides`.
OVERRIDE_ACTIONS = ("force_pass", "force_fail", "respray", "skip", "command", "mode")

_V1 = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    work_master TEXT NOT NULL,          -- the style
    quantity INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE work_items (
    id TEXT PRIMARY KEY,
    job_id TEXT REFERENCES jobs(id),
    style TEXT NOT NULL,
    size_eu REAL,
    side TEXT,
    state TEXT NOT NULL,
    verdict TEXT,                       -- pass | fail (after inspection or override)
    cause TEXT,                         -- why it went to rework (stage or inspection cause)
    reason TEXT,                        -- words for the human
    picture TEXT,                       -- path of the picture the human sees in the rework queue
    attempts INTEGER NOT NULL DEFAULT 0,
    seq INTEGER,                        -- arrival order at the infeed
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX work_items_state ON work_items(state);
CREATE TABLE item_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES work_items(id),
    ts REAL NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX item_history_item ON item_history(item_id);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    item_id TEXT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES work_items(id),
    source TEXT NOT NULL,               -- pipeline mode that made it: real | replay
    verdict TEXT NOT NULL,              -- ok | needs_human
    data TEXT NOT NULL,                 -- gluecell.plan/1 JSON (with robot programs)
    created REAL NOT NULL
);
CREATE INDEX plans_item ON plans(item_id);
CREATE TABLE sprays (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES work_items(id),
    plan_id INTEGER REFERENCES plans(id),
    part TEXT NOT NULL,
    goal_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX sprays_item ON sprays(item_id);
CREATE TABLE inspections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES work_items(id),
    source TEXT NOT NULL,               -- who decided: quality | stand-in:plan-checks | override
    verdict TEXT NOT NULL,              -- pass | fail
    cause TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    picture TEXT,
    created REAL NOT NULL
);
CREATE INDEX inspections_item ON inspections(item_id);
CREATE TABLE overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    item_id TEXT,
    args TEXT NOT NULL DEFAULT '{}',
    who TEXT NOT NULL,
    why TEXT NOT NULL,
    created REAL NOT NULL,
    applied REAL,                       -- when the controller acted on it (NULL: pending)
    result TEXT                         -- what it did, or why it was refused
);
CREATE INDEX overrides_pending ON overrides(applied);
CREATE TABLE packtags (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: The migrations, oldest first.
MIGRATIONS: tuple[tuple[int, str, str], ...] = ((1, "cell tables", _V1),)

#: The schema version this code writes.
SCHEMA_VERSION = MIGRATIONS[-1][0]
