"""The seam between the API and the cell's controller: everything the API asks of the cell goes through here.

The controller (:mod:`gluecell.cell.control`) keeps its state in the store (:mod:`gluecell.cell.store`) and
applies the requests humans queue in the store's ``overrides`` table (PackML commands, unit modes, force
pass/fail, re-spray, skip) within one poll. So the API needs no handle on the controller's objects: it reads
the store and queues requests, and it works the same whether the controller runs in the same process
(``gluecell serve`` / ``gluecell demo``) or another one. Job orders reach the cell as the store's jobs and
ordered work items (:class:`JobBridge`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gluecell.cell.api.jobs import JobOrders
from gluecell.cell.api.problems import Problem

__all__ = ["CellPort", "JobBridge", "STYLES", "ORDER_AHEAD", "COMMANDS", "MODES"]

log = logging.getLogger(__name__)
#: Styles (work masters) the cell runs by default (the simulated cell's style library).
STYLES: tuple[str, ...] = ("sneaker", "court", "boot")
#: The controller writes a heartbeat every second; older than this, the console says it is not responding.
CONTROLLER_STALE_S = 5.0
#: How many work items of the running job are ordered ahead of the infeed.
ORDER_AHEAD = 20
COMMANDS = ("Reset", "Start", "Stop", "Hold", "Unhold", "Suspend", "Unsuspend", "Abort", "Clear", "Complete")
MODES = {"Production": 1, "Maintenance": 2, "Manual": 3}
_FINAL = ("passed", "rework", "skipped")
#: API mode names -> the controller's UnitMode member names (PackML: Produce, Maintenance, Manual).
_MODE_NAMES = {"Production": "produce", "Maintenance": "maintenance", "Manual": "manual"}


def _packml() -> Any:
    from gluecell.cell.control import packml

    return packml


class CellPort:
    """The API's view of the cell, over the store.

    Args:
        store: the cell's :class:`gluecell.cell.store.Store`.
        command_timeout_s: how long a request waits for the controller to apply it.
        styles: work masters this cell accepts.
    """

    def __init__(self, store: Any, *, command_timeout_s: float = 3.0, styles: tuple[str, ...] = STYLES) -> None:
        self.store = store
        self.command_timeout_s = float(command_timeout_s)
        self._styles = tuple(styles)

    def styles(self) -> list[str]:
        """Work masters (styles) the cell runs."""
        return list(self._styles)

    def snapshot(self) -> dict[str, Any]:
        """PackML state, unit mode, PackTags, the commands the state accepts, the current work item."""
        pk = _packml()
        tags = self.store.packtags.load()
        state = pk.State(int(tags.get("StateCurrent", int(pk.State.STOPPED))))
        mode = pk.UnitMode(int(tags.get("UnitModeCurrent", int(pk.UnitMode.PRODUCE))))
        accepted = [c for c in COMMANDS if pk.next_state(state, pk.Command[c.upper()], mode) is not None]
        rows = self.store.db.query("SELECT id, style, size_eu, side, state, job_id FROM work_items WHERE state IN"
                                   " ('arrived', 'planned', 'spraying', 'sprayed') ORDER BY seq DESC LIMIT 1")
        mode_name = {1: "Production", 2: "Maintenance", 3: "Manual"}[int(mode)]
        seen = self.store.meta.get("heartbeat")
        return {"StateCurrent": int(state), "State": state.name.title(), "UnitModeCurrent": int(mode),
                "UnitMode": mode_name, "AcceptedCommands": accepted, "PackTags": tags,
                "CurrentItem": dict(rows[0]) if rows else None,
                "ControllerSeen": seen,
                "ControllerAlive": seen is not None and time.time() - float(seen) < CONTROLLER_STALE_S}  # fmt: skip

    def is_free(self) -> bool:
        """Whether the cell can take a new job (a live controller in Execute or Idle, in Production)."""
        snap = self.snapshot()
        return snap["State"] in ("Execute", "Idle") and snap["UnitMode"] == "Production" and snap["ControllerAlive"]

    def request(self, action: str, who: str, why: str, *, item_id: str | None = None,
                args: dict[str, Any] | None = None, wait: bool = True) -> dict[str, Any]:  # fmt: skip
        """Queue a request for the controller; wait (up to the timeout) until it is applied or refused.

        Returns:
            The override record (``applied`` None when the controller has not acted yet).
        """
        from gluecell.cell.store import StoreError

        try:
            oid = self.store.overrides.request(action, who, why, item_id=item_id, args=args)
        except StoreError as exc:
            raise Problem(422, "invalid-request", "Invalid request", str(exc)) from exc
        deadline = time.monotonic() + (self.command_timeout_s if wait else 0.0)
        rec = self.store.overrides.get(oid)
        while rec["applied"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
            rec = self.store.overrides.get(oid)
        return rec

    def command(self, command: str, who: str, why: str) -> dict[str, Any]:
        """A PackML command; 409 when the current state does not accept it (checked here and by the controller)."""
        snap = self.snapshot()
        if command not in snap["AcceptedCommands"]:
            raise Problem(409, "command-refused", "Command refused",
                          f"{command} is not accepted in {snap['State']} ({snap['UnitMode']}); accepted: "
                          f"{', '.join(snap['AcceptedCommands']) or 'none'}",
                          StateCurrent=snap["StateCurrent"])  # fmt: skip
        return self.request("command", who, why, args={"command": command})

    def set_mode(self, mode: str, who: str, why: str) -> dict[str, Any]:
        """A unit mode change (the controller allows it only in Stopped, Idle or Aborted)."""
        snap = self.snapshot()
        if snap["State"] not in ("Stopped", "Idle", "Aborted"):
            raise Problem(409, "command-refused", "Mode change refused",
                          f"the unit mode changes only in Stopped, Idle or Aborted (now {snap['State']})")  # fmt: skip
        return self.request("mode", who, why, args={"mode": _MODE_NAMES[mode], "UnitMode": MODES[mode]})

    def override(self, item_id: str, action: str, who: str, why: str) -> dict[str, Any]:
        """An operator's override of a work item (force_pass, force_fail, respray, skip)."""
        from gluecell.cell.store import UnknownItemError

        try:
            self.store.items.get(item_id)
        except UnknownItemError as exc:
            raise Problem(404, "not-found", "Unknown work item", f"no work item {item_id!r}") from exc
        return self.request(action, who, why, item_id=item_id)

    def start_job(self, view: dict[str, Any]) -> None:
        """Hand a job order that became Running to the cell (the store's job; items are ordered by ``feed``)."""
        from gluecell.cell.store import StoreError

        job = view["JobOrder"]
        try:
            self.store.jobs.add(job["JobOrderID"], job["WorkMasterID"], max(1, view["JobResponse"]["Actuals"]
                                ["PairsPlanned"]), priority=int(job["Priority"]), state="Running",
                                data={"MaterialRequirements": job["MaterialRequirements"]})  # fmt: skip
        except StoreError:  # added before a restart: keep it
            self.store.jobs.set_state(job["JobOrderID"], "Running")

    def feed(self, view: dict[str, Any]) -> None:
        """Keep :data:`ORDER_AHEAD` work items of the running job ordered (never more than it asks for).

        A pair's id is its ``MaterialSublotIDs`` entry (the label the infeed reads) or ``<JobOrderID>.<n>``.
        """
        job = view["JobOrder"]
        jid = job["JobOrderID"]
        rows = self.store.db.query("SELECT COUNT(*), SUM(state = 'ordered') FROM work_items WHERE job_id = ?", (jid,))
        total, waiting = int(rows[0][0]), int(rows[0][1] or 0)
        pairs = [(m["SizeEU"], m["Side"], (m.get("MaterialSublotIDs") or [None] * int(m["Quantity"]))[k])
                 for m in job["MaterialRequirements"] for k in range(int(m["Quantity"]))]  # fmt: skip
        for n in range(total, min(len(pairs), total + ORDER_AHEAD - waiting)):
            size, side, sublot = pairs[n]
            self.store.items.order(sublot or f"{jid}.{n + 1:05d}", job["WorkMasterID"], size_eu=size, side=side,
                                   job_id=jid)  # fmt: skip

    def end_job(self, job_id: str, state: str) -> None:
        """Mirror a job's end in the store and withdraw its items that have not arrived (skipped, with history)."""
        self.store.jobs.set_state(job_id, state)
        for r in self.store.db.query("SELECT id FROM work_items WHERE job_id = ? AND state = 'ordered'", (job_id,)):
            self.store.items.transition(r["id"], "skipped", expect=("ordered",), detail={"why": f"job {state}"},
                                        reason=f"job order {state}")  # fmt: skip

    def actuals(self, job_id: str) -> dict[str, Any]:
        """The job's actuals from its work items: done, passed first time, reworked, scrapped, cycle times."""
        rows = self.store.db.query(
            "SELECT w.id, w.state, w.attempts, MIN(CASE WHEN h.state = 'arrived' THEN h.ts END) AS t0,"
            " MAX(CASE WHEN h.state IN ('passed', 'rework', 'skipped') THEN h.ts END) AS t1,"
            " SUM(h.state = 'rework') AS n_rework FROM work_items w JOIN item_history h ON h.item_id = w.id"
            " WHERE w.job_id = ? GROUP BY w.id", (job_id,))  # fmt: skip
        done = [r for r in rows if r["state"] in _FINAL and r["t0"] is not None]
        return {"PairsDone": len(done),
                "PassedFirstTime": sum(r["state"] == "passed" and not r["n_rework"] for r in done),
                "Reworked": sum(bool(r["n_rework"]) for r in done),
                "Scrapped": sum(r["state"] == "skipped" for r in done),
                "CycleTimes_s": [float(r["t1"] - r["t0"]) for r in done if r["t1"] is not None]}  # fmt: skip


class JobBridge:
    """Matches job orders with the cell: dispatch by priority when the cell is free, feed, count, complete."""

    def __init__(self, jobs: JobOrders, port: Any) -> None:
        self.jobs = jobs
        self.port = port

    def tick(self) -> None:
        """One round: update the active job's actuals (completing it when done), else dispatch the next one."""
        active = self.jobs.active()
        if active is None:
            if not self.port.is_free():
                return
            active = self.jobs.dispatch_next()
            if active is None:
                return
            self.port.start_job(active)
        jid = active["JobOrder"]["JobOrderID"]
        view = self.jobs.set_actuals(jid, self.port.actuals(jid))
        if view["JobState"]["StateNumber"] == 5:
            self.port.end_job(jid, "Ended")
        elif view["JobState"]["StateNumber"] == 3:
            self.port.feed(view)

    def on_method(self, job_id: str, method: str, who: str, why: str) -> None:
        """Carry a client's method on a job order to the cell (after the job order's state changed)."""
        if method == "Pause":
            self.port.request("command", who, why, args={"command": "Hold"}, wait=False)
        elif method == "Resume":
            self.port.request("command", who, why, args={"command": "Unhold"}, wait=False)
        elif method in ("Stop", "Abort"):
            self.port.end_job(job_id, "Ended" if method == "Stop" else "Aborted")

    async def run(self, period_s: float) -> None:
        """Tick forever (in a worker thread, so the event loop never waits on SQLite)."""
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # a bad round must not stop the dispatcher; the next round retries
                log.exception("job bridge round failed")
            await asyncio.sleep(period_s)
