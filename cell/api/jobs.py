"""ISA-95 job orders after OPC UA Job Control (OPC 10031-4): states, methods and the JobResponse.

The state machine is a table ``(state, method) -> next state``; a method not in the table for the job's
state is refused with ReturnStatus 3 "invalid job order status" (HTTP 409). Cancel and Clear remove a job
order from the lists (the row stays, flagged, so its id is never reused and the audit trail holds). The cell
moves AllowedToStart → Running (:meth:`JobOrders.dispatch_next`, highest ``Priority`` first, then the
earliest ``StartTime``, then the order stored) and Running → Ended when every pair is done
(:meth:`JobOrders.set_actuals`).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import numpy as np

from gluecell.cell.api.db import ApiDb
from gluecell.cell.api.events import EventLog
from gluecell.cell.api.problems import Problem, ReturnStatus

__all__ = ["JobOrders", "STATES", "TRANSITIONS", "METHODS", "REMOVED", "pairs_of"]

STATES: dict[int, str] = {1: "NotAllowedToStart", 2: "AllowedToStart", 3: "Running", 4: "Interrupted",
                          5: "Ended", 6: "Aborted"}  # fmt: skip
#: Pseudo-state of a cancelled or cleared job order (not listed; GET answers 404).
REMOVED = 0
TRANSITIONS: dict[tuple[int, str], int] = {
    (1, "Start"): 2, (2, "RevokeStart"): 1, (1, "Update"): 1, (2, "Update"): 2,
    (3, "Pause"): 4, (4, "Resume"): 3, (3, "Stop"): 5, (4, "Stop"): 5, (3, "Abort"): 6, (4, "Abort"): 6,
    (1, "Cancel"): REMOVED, (2, "Cancel"): REMOVED, (5, "Clear"): REMOVED, (6, "Clear"): REMOVED,
    (2, "_dispatch"): 3, (3, "_complete"): 5,
}  # fmt: skip
#: Methods a client may call on a stored job order (Store/StoreAndStart create it; Update has its own route).
METHODS: tuple[str, ...] = ("Start", "RevokeStart", "Pause", "Resume", "Stop", "Abort", "Cancel", "Clear")


def pairs_of(body: dict[str, Any]) -> int:
    """Pairs a job order asks for (sum of its material requirements' quantities)."""
    return int(sum(int(m["Quantity"]) for m in body.get("MaterialRequirements", ())))


def _ts(value: float | None) -> str | None:
    if value is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(value)) + f".{int(value % 1 * 1000):03d}Z"


def _substate(state: int, row: Any, actuals: dict[str, Any]) -> str | None:
    if state == 2:
        return "Waiting" if row["start_after"] and row["start_after"] > time.time() else "Ready"
    if state == 4:
        return "Held"
    if state == 5:
        return "Completed" if actuals["PairsDone"] >= actuals["PairsPlanned"] else "Closed"
    return None


def _view(row: Any) -> dict[str, Any]:
    body = json.loads(row["body"])
    actuals = json.loads(row["actuals"])
    state = int(row["state"])
    cycles = np.asarray(actuals.pop("CycleTimes_s"), dtype=float)
    actuals["CycleTimeMean_s"] = float(cycles.mean()) if cycles.size else None
    actuals["CycleTimeP95_s"] = float(np.percentile(cycles, 95)) if cycles.size else None
    actuals["CycleTimeLast_s"] = float(cycles[-1]) if cycles.size else None
    job_state = {"StateNumber": state, "StateText": STATES.get(state, "Removed"),
                 "SubState": _substate(state, row, actuals)}  # fmt: skip
    response = {"JobResponseID": f"{row['job_order_id']}/response", "JobOrderID": row["job_order_id"],
                "JobState": job_state, "StartTime": _ts(row["actual_start"]), "EndTime": _ts(row["actual_end"]),
                "Actuals": actuals}  # fmt: skip
    return {"JobOrder": body, "JobState": job_state, "JobResponse": response}


def encode_cursor(seq: int) -> str:
    """Opaque cursor for the item after ``seq``."""
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The sequence number a cursor points after (0 for none). Raises Problem 400 on a bad cursor."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "use the 'next' cursor of a previous page") from exc


class JobOrders:
    """Job orders in SQLite; every change is published on the event log."""

    def __init__(self, db: ApiDb, events: EventLog) -> None:
        self.db = db
        self.events = events

    def _row(self, c: Any, job_id: str) -> Any:
        row = c.execute("SELECT * FROM api_job_orders WHERE job_order_id = ?", (job_id,)).fetchone()
        if row is None or int(row["removed"]):
            raise Problem(404, "unknown-job-order", "Unknown JobOrderID", f"no job order {job_id!r}",
                          ReturnStatus=ReturnStatus.UNKNOWN_JOB_ORDER_ID)  # fmt: skip
        return row

    def _publish(self, job_id: str, state: int, method: str, who: str = "cell") -> None:
        text = STATES.get(state, "Removed")
        self.events.publish("job", f"job order {job_id}: {method} -> {text}",
                            {"JobOrderID": job_id, "StateNumber": state, "StateText": text, "Method": method,
                             "By": who})  # fmt: skip

    def store(self, body: dict[str, Any], start: bool, who: str, start_after: float | None = None) -> dict[str, Any]:
        """Store (or store and start) a new job order; returns its view. 409 when the id exists.

        Args:
            start_after: the job order's ``StartTime`` (epoch seconds): it is not dispatched before.
        """
        now = time.time()
        state = 2 if start else 1
        actuals = {"PairsPlanned": pairs_of(body), "PairsDone": 0, "PassedFirstTime": 0, "Reworked": 0,
                   "Scrapped": 0, "CycleTimes_s": []}  # fmt: skip
        with self.db.tx() as c:
            if c.execute("SELECT 1 FROM api_job_orders WHERE job_order_id = ?", (body["JobOrderID"],)).fetchone():
                raise Problem(409, "job-order-exists", "Unable to accept",
                              f"job order {body['JobOrderID']!r} exists (ids are never reused)",
                              ReturnStatus=ReturnStatus.UNABLE_TO_ACCEPT)  # fmt: skip
            seq = int(c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM api_job_orders").fetchone()[0])
            c.execute("INSERT INTO api_job_orders (job_order_id, seq, state, body, priority, start_after, created_at,"
                      " updated_at, actuals) VALUES (?,?,?,?,?,?,?,?,?)",
                      (body["JobOrderID"], seq, state, json.dumps(body), int(body.get("Priority", 0)),
                       start_after, now, now, json.dumps(actuals)))  # fmt: skip
            row = self._row(c, body["JobOrderID"])
        self._publish(body["JobOrderID"], state, "StoreAndStart" if start else "Store", who)
        return _view(row)

    def get(self, job_id: str) -> dict[str, Any]:
        """The view of one job order (404 unknown)."""
        with self.db.tx() as c:
            return _view(self._row(c, job_id))

    def list(self, cursor: str | None, limit: int, state: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of job orders in the order stored; returns ``(items, next_cursor)``."""
        after = decode_cursor(cursor)
        sql = "SELECT * FROM api_job_orders WHERE removed = 0 AND seq > ?"
        args: list[Any] = [after]
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        rows = self.db.query(sql + " ORDER BY seq LIMIT ?", (*args, limit + 1))
        nxt = encode_cursor(int(rows[limit - 1]["seq"])) if len(rows) > limit else None
        return [_view(r) for r in rows[:limit]], nxt

    def transition(self, job_id: str, method: str, who: str = "cell", changes: dict[str, Any] | None = None) -> dict:
        """Apply ``method`` to a job order; returns its new view. 409 (ReturnStatus 3) in a wrong state."""
        now = time.time()
        with self.db.tx() as c:
            row = self._row(c, job_id)
            state = int(row["state"])
            nxt = TRANSITIONS.get((state, method))
            if nxt is None:
                allowed = sorted(m for (s, m) in TRANSITIONS if s == state and not m.startswith("_"))
                raise Problem(409, "invalid-job-order-status", "Invalid job order status",
                              f"{method} is not allowed in state {STATES[state]} ({state}); allowed: "
                              f"{', '.join(allowed) or 'none'}", ReturnStatus=ReturnStatus.INVALID_JOB_ORDER_STATUS,
                              StateNumber=state)  # fmt: skip
            sets = {"state": nxt, "updated_at": now}
            if nxt == REMOVED:
                sets.update(removed=1, state=state)
            if nxt == 3 and row["actual_start"] is None:
                sets["actual_start"] = now
            if nxt in (5, 6):
                sets["actual_end"] = now
            for k, v in (changes or {}).items():
                sets[k] = v
            c.execute(f"UPDATE api_job_orders SET {', '.join(k + ' = ?' for k in sets)} WHERE job_order_id = ?",
                      (*sets.values(), job_id))  # fmt: skip
            new = c.execute("SELECT * FROM api_job_orders WHERE job_order_id = ?", (job_id,)).fetchone()
        self._publish(job_id, nxt, method.lstrip("_"), who)
        return _view(new)

    def update(self, job_id: str, fields: dict[str, Any], who: str, start_after: float | None = None) -> dict:
        """The Update method: change the given fields of a job order not yet running."""
        with self.db.tx() as c:
            body = json.loads(self._row(c, job_id)["body"])
        body.update(fields)
        changes: dict[str, Any] = {"body": json.dumps(body), "priority": int(body.get("Priority", 0))}
        if "StartTime" in fields:
            changes["start_after"] = start_after
        if "MaterialRequirements" in fields:
            with self.db.tx() as c:
                actuals = json.loads(self._row(c, job_id)["actuals"])
            actuals["PairsPlanned"] = pairs_of(body)
            changes["actuals"] = json.dumps(actuals)
        return self.transition(job_id, "Update", who, changes)

    def active(self) -> dict[str, Any] | None:
        """The job order the cell works on (Running or Interrupted), if any."""
        rows = self.db.query("SELECT * FROM api_job_orders WHERE removed = 0 AND state IN (3, 4) ORDER BY seq LIMIT 1")
        return _view(rows[0]) if rows else None

    def dispatch_next(self) -> dict[str, Any] | None:
        """Move the best AllowedToStart job order to Running when none is active; returns it (or None)."""
        if self.active() is not None:
            return None
        rows = self.db.query(
            "SELECT job_order_id FROM api_job_orders WHERE removed = 0 AND state = 2 AND"
            " (start_after IS NULL OR start_after <= ?) ORDER BY priority DESC, COALESCE(start_after, 0), seq LIMIT 1",
            (time.time(),))  # fmt: skip
        if not rows:
            return None
        try:
            return self.transition(rows[0]["job_order_id"], "_dispatch")
        except Problem:  # changed by a client meanwhile: try again on the next tick
            return None

    def set_actuals(self, job_id: str, measured: dict[str, Any]) -> dict[str, Any]:
        """Take the actuals the cell measured (PairsDone, PassedFirstTime, Reworked, Scrapped, CycleTimes_s);
        a Running job whose pairs are all done becomes Ended (Completed)."""
        with self.db.tx() as c:
            row = self._row(c, job_id)
            a = json.loads(row["actuals"])
            changed = any(a.get(k) != v for k, v in measured.items())
            if changed:
                a.update(measured)
                a["CycleTimes_s"] = list(a["CycleTimes_s"])[-1000:]
                c.execute("UPDATE api_job_orders SET actuals = ?, updated_at = ? WHERE job_order_id = ?",
                          (json.dumps(a), time.time(), job_id))  # fmt: skip
        if changed and a["PairsDone"] > json.loads(row["actuals"])["PairsDone"]:
            self.events.publish("pair", f"job order {job_id}: {a['PairsDone']}/{a['PairsPlanned']} pairs done",
                                {"JobOrderID": job_id, "PairsDone": a["PairsDone"], "PairsPlanned": a["PairsPlanned"]})
        if a["PairsDone"] >= a["PairsPlanned"] and int(row["state"]) == 3:
            return self.transition(job_id, "_complete")
        return self.get(job_id)
