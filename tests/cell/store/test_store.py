"""The cell database: WAL, migrations, repositories, refusals that change nothing, and a killed writer."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from gluecell.cell.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Database,
    SchemaVersionError,
    Store,
    StoreError,
    UnknownItemError,
)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "cell.db") as s:
        yield s


def _dump(store):
    return [tuple(r) for t in ("jobs", "work_items", "item_history", "plans", "sprays", "overrides")
            for r in store.db.query(f"SELECT * FROM {t}")]  # fmt: skip


def test_wal_and_schema_version(store):
    assert store.db.journal_mode == "wal"
    assert store.db.version == SCHEMA_VERSION == MIGRATIONS[-1][0]


def test_migrations_apply_in_order_and_keep_data(tmp_path):
    path = tmp_path / "m.db"
    first = MIGRATIONS[:1]
    db = Database(path, migrations=first)
    db.execute("INSERT INTO meta VALUES ('k', '1')")
    db.close()
    extra = (*first, (first[-1][0] + 1, "add a column", "ALTER TABLE work_items ADD COLUMN note TEXT"))
    db = Database(path, migrations=extra)
    assert db.version == first[-1][0] + 1
    assert db.query_one("SELECT value FROM meta WHERE key = 'k'")[0] == "1"
    assert "note" in [r[1] for r in db.query("PRAGMA table_info(work_items)")]
    db.close()
    with pytest.raises(SchemaVersionError):  # a newer database is refused by older code
        Database(path, migrations=first)


def test_failed_migration_rolls_back(tmp_path):
    bad = (*MIGRATIONS, (99, "broken", "CREATE TABLE x (a INT); INSERT INTO nowhere VALUES (1)"))
    with pytest.raises(sqlite3.OperationalError):
        Database(tmp_path / "b.db", migrations=bad)
    db = Database(tmp_path / "b.db")
    assert db.version == SCHEMA_VERSION
    assert db.query_one("SELECT name FROM sqlite_master WHERE name = 'x'") is None


def test_item_life_and_history(store):
    store.jobs.add("J1", "sneaker", 2, priority=3)
    store.items.order("A-1", "sneaker", size_eu=42, side="left", job_id="J1")
    store.items.transition("A-1", "arrived", expect=("ordered",), seq=store.items.next_seq(), attempts=1)
    store.items.transition("A-1", "rework", verdict="fail", cause="coverage", reason="gap at the heel",
                           picture="/tmp/a.png")  # fmt: skip
    item = store.items.get("A-1")
    assert (item["state"], item["seq"], item["attempts"], item["cause"]) == ("rework", 1, 1, "coverage")
    assert [h["state"] for h in store.items.history("A-1")] == ["ordered", "arrived", "rework"]
    assert [r["id"] for r in store.items.rework_queue()] == ["A-1"]
    assert store.items.counts() == {"rework": 1}


@pytest.mark.parametrize("call", [
    lambda s: s.items.order("bad id!", "sneaker"),
    lambda s: s.items.order("A-2", "sneaker", size_eu=float("nan")),
    lambda s: s.items.order("A-2", "sneaker", side="middle"),
    lambda s: s.items.order("A-1", "sneaker"),  # ordered already
    lambda s: s.items.order("A-2", "sneaker", job_id="nope"),
    lambda s: s.items.transition("A-1", "flying"),
    lambda s: s.items.transition("A-1", "planned", expect=("arrived",)),
    lambda s: s.items.transition("A-1", "planned", colour="red"),
    lambda s: s.items.get("ZZZ"),
    lambda s: s.overrides.request("explode", "ana", "why not"),
    lambda s: s.overrides.request("skip", "", "no name", item_id="A-1"),
    lambda s: s.overrides.request("skip", "ana", "x" * 2000, item_id="A-1"),
    lambda s: s.plans.add("A-1", "real", "maybe", {}),
    lambda s: s.plans.add("A-1", "real", "ok", {"x": float("nan")}),
    lambda s: s.sprays.set_status("A-1:1:upper", "succeeded"),
    lambda s: s.jobs.add("J2", "sneaker", 0),
], ids=lambda f: "")  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(store, call):
    store.items.order("A-1", "sneaker")
    before = _dump(store)
    with pytest.raises((StoreError, UnknownItemError)):
        call(store)
    assert _dump(store) == before


def test_spray_intent_outcome_and_unfinished(store):
    store.items.order("A-1", "sneaker")
    pid = store.plans.add("A-1", "replay", "ok", {"format": "gluecell.plan/1"})
    store.sprays.intent("A-1", pid, "upper", "A-1:1:upper")
    store.sprays.intent("A-1", pid, "sole", "A-1:1:sole")
    store.sprays.set_status("A-1:1:upper", "succeeded", {"error_code": 0})
    assert [r["goal_id"] for r in store.sprays.unfinished()] == ["A-1:1:sole"]
    with pytest.raises(sqlite3.IntegrityError):  # a goal id is used once
        store.sprays.intent("A-1", pid, "upper", "A-1:1:upper")
    assert store.plans.latest("A-1")["data"] == {"format": "gluecell.plan/1"}


def test_overrides_pending_then_resolved(store):
    store.items.order("A-1", "sneaker")
    oid = store.overrides.request("force_pass", "ana", "checked by hand", item_id="A-1")
    assert [o["id"] for o in store.overrides.pending()] == [oid]
    store.overrides.resolve(oid, "applied: A-1 -> passed")
    o = store.overrides.get(oid)
    assert o["applied"] is not None and o["who"] == "ana" and store.overrides.pending() == []


def test_transaction_is_all_or_nothing(store):
    store.items.order("A-1", "sneaker")
    with pytest.raises(RuntimeError), store.db.transaction():
        store.items.transition("A-1", "arrived")
        store.events.add("x", "inside")
        raise RuntimeError("boom")
    assert store.items.get("A-1")["state"] == "ordered" and store.events.since(0) == []


def test_packtags_and_events_round_trip(store):
    store.packtags.save({"StateCurrent": 6, "Alarm": [{"ID": 3, "Value": "link"}]})
    store.packtags.save({"StateCurrent": 11})
    assert store.packtags.load() == {"StateCurrent": 11, "Alarm": [{"ID": 3, "Value": "link"}]}
    a = store.events.add("state", "Execute -> Holding")
    store.events.add("alarm", "link lost")
    assert [e["message"] for e in store.events.since(a)] == ["link lost"]


def test_sigkill_during_writes_loses_only_the_uncommitted(tmp_path):
    """A writer killed mid-stream leaves every committed transaction and no torn one."""
    path = tmp_path / "k.db"
    code = textwrap.dedent(f"""
        import sys
        from gluecell.cell.store import Store
        s = Store({str(path)!r})
        i = 0
        while True:
            i += 1
            with s.db.transaction():
                s.items.order(f"K-{{i}}", "sneaker")
                s.events.add("ordered", f"K-{{i}}")
            if i == 50:
                print("go", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with Store(path) as s:
        n_items = s.db.query_one("SELECT COUNT(*) FROM work_items")[0]
        n_events = s.db.query_one("SELECT COUNT(*) FROM events")[0]
        n_hist = s.db.query_one("SELECT COUNT(*) FROM item_history")[0]
        assert n_items >= 50 and n_items == n_events == n_hist
        assert s.db.query_one("PRAGMA integrity_check")[0] == "ok"
