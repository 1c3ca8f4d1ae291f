"""Alarms after ISA-18.2: the controller raises them (PackTags ``Alarm``); people acknowledge and shelve them.

An alarm's key is its code and the time it was raised. Its ISA-18.2 state follows from whether the controller
still lists it (active) and what people did: ``unacknowledged`` (active, not acknowledged),
``acknowledged`` (active, acknowledged), ``rtn_unacknowledged`` (returned to normal, never acknowledged),
``shelved`` (hidden from the operator until ``shelved_until``), ``normal`` (returned and acknowledged:
history). More than :data:`FLOOD_COUNT` alarms raised in :data:`FLOOD_WINDOW_S` is a flood.
"""

from __future__ import annotations

import time
from typing import Any

from gluecell.cell.api.db import ApiDb
from gluecell.cell.api.problems import Problem

__all__ = ["sync_alarms", "list_alarms", "act_on_alarm", "priority_of", "FLOOD_COUNT", "FLOOD_WINDOW_S"]

FLOOD_COUNT = 10
FLOOD_WINDOW_S = 600.0


#: Priority by the controller's StopReason codes (gluecell.cell.control.controller.StopReason): e-stop and safety
#: urgent; robot error and lost link high; not ready, restart and timeout medium; an operator's stop low.
_CODE_PRIORITY = {4: "urgent", 7: "urgent", 2: "high", 3: "high", 5: "medium", 6: "medium", 8: "medium", 1: "low"}


def priority_of(alarm: dict[str, Any]) -> str:
    """ISA-18.2 priority: the controller's ``Priority`` when it gives one, else by its code (unknown: high)."""
    given = str(alarm.get("Priority", "")).lower()
    if given in ("urgent", "high", "medium", "low"):
        return given
    return _CODE_PRIORITY.get(int(alarm.get("ID", 0)), "high")


def sync_alarms(db: ApiDb, packtag_alarms: list[dict[str, Any]]) -> None:
    """Record newly raised alarms and mark those the controller no longer lists as returned to normal."""
    now = time.time()
    keys = {}
    for a in packtag_alarms:
        keys[f"{int(a.get('ID', 0))}@{float(a.get('Time', 0.0)):.3f}"] = a
    with db.tx() as c:
        for key, a in keys.items():
            c.execute("INSERT OR IGNORE INTO api_alarms (key, code, text, priority, raised_at, active) VALUES"
                      " (?,?,?,?,?,1)", (key, int(a.get("ID", 0)), str(a.get("Value", ""))[:500], priority_of(a),
                                         float(a.get("Time", now))))  # fmt: skip
        for r in c.execute("SELECT key FROM api_alarms WHERE active = 1").fetchall():
            if r["key"] not in keys:
                c.execute("UPDATE api_alarms SET active = 0, returned_at = ? WHERE key = ?", (now, r["key"]))


def _state(r: Any, now: float) -> str:
    if r["shelved_until"] and r["shelved_until"] > now:
        return "shelved"
    if r["active"]:
        return "acknowledged" if r["acked_at"] else "unacknowledged"
    return "normal" if r["acked_at"] else "rtn_unacknowledged"


def list_alarms(db: ApiDb, include_history: bool = False, limit: int = 200) -> dict[str, Any]:
    """Alarms needing attention (or all, newest first), with the flood flag."""
    now = time.time()
    rows = db.query("SELECT * FROM api_alarms ORDER BY raised_at DESC LIMIT ?", (limit,))
    items = []
    for r in rows:
        state = _state(r, now)
        if include_history or state != "normal":
            items.append({"key": r["key"], "code": r["code"], "text": r["text"], "priority": r["priority"],
                          "state": state, "raised_at": r["raised_at"], "returned_at": r["returned_at"],
                          "acked_by": r["acked_by"], "acked_at": r["acked_at"], "shelved_until": r["shelved_until"],
                          "shelved_by": r["shelved_by"]})  # fmt: skip
    recent = db.query("SELECT COUNT(*) FROM api_alarms WHERE raised_at > ?", (now - FLOOD_WINDOW_S,))[0][0]
    return {"items": items, "flood": int(recent) > FLOOD_COUNT, "raised_last_10_min": int(recent)}


def act_on_alarm(db: ApiDb, key: str, action: str, who: str, shelve_s: float = 1800.0) -> dict[str, Any]:
    """Acknowledge, shelve or unshelve one alarm; 404 for an unknown key."""
    now = time.time()
    with db.tx() as c:
        if c.execute("SELECT 1 FROM api_alarms WHERE key = ?", (key,)).fetchone() is None:
            raise Problem(404, "not-found", "Unknown alarm", f"no alarm {key!r}")
        if action == "acknowledge":
            c.execute("UPDATE api_alarms SET acked_by = ?, acked_at = ? WHERE key = ? AND acked_at IS NULL",
                      (who, now, key))  # fmt: skip
        elif action == "shelve":
            c.execute("UPDATE api_alarms SET shelved_until = ?, shelved_by = ? WHERE key = ?",
                      (now + shelve_s, who, key))
        else:
            c.execute("UPDATE api_alarms SET shelved_until = NULL, shelved_by = NULL WHERE key = ?", (key,))
    return next(a for a in list_alarms(db, include_history=True, limit=10_000)["items"] if a["key"] == key)
