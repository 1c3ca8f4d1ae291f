"""Durable storage of the cell: SQLite in WAL mode, versioned schema, one repository per table family.

    store = Store("runs/cell/cell.db")
    store.items.order("A-0001", "sneaker", size_eu=42, side="left")
    store.items.rework_queue()
    store.overrides.request("force_pass", who="ana", why="glue checked by hand", item_id="A-0001")

The controller's state lives here; what it keeps in memory is rebuilt from here on start
(CONVENTIONS.md, "Services and state"). Only ``core`` is imported.
"""

from __future__ import annotations

from pathlib import Path

from .db import Database, migrate, schema_version
from .errors import SchemaVersionError, StoreError, UnknownItemError
from .repos import Events, Inspections, Items, Jobs, Meta, Overrides, PackTagStore, Plans, Sprays, check_id
from .schema import ITEM_STATES, MIGRATIONS, OVERRIDE_ACTIONS, SCHEMA_VERSION, SPRAY_STATUSES

__all__ = ["Store", "Database", "migrate", "schema_version", "check_id", "StoreError", "UnknownItemError",
           "SchemaVersionError", "ITEM_STATES", "SPRAY_STATUSES", "OVERRIDE_ACTIONS", "MIGRATIONS",
           "SCHEMA_VERSION"]  # fmt: skip


class Store:
    """The cell database with its repositories.

    Attributes:
        db: the :class:`Database` (``db.transaction()`` groups writes of several repositories).
        jobs, items, events, plans, sprays, inspections, overrides, packtags, meta: the repositories.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.db = Database(path, synchronous=synchronous)
        self.jobs = Jobs(self.db)
        self.items = Items(self.db)
        self.events = Events(self.db)
        self.plans = Plans(self.db)
        self.sprays = Sprays(self.db)
        self.inspections = Inspections(self.db)
        self.overrides = Overrides(self.db)
        self.packtags = PackTagStore(self.db)
        self.meta = Meta(self.db)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
