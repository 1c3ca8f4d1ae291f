"""Restart reconciliation: what the store says the controller intended, against what the robot says happened.

Run once when a controller starts on an existing database (and again on Reset while goals stay unsettled).
For every spray goal stored as ``intent`` or ``sent`` it asks the robot side (``goal_status``):

* UNKNOWN -> ``not_sent``: the goal never arrived; the part may be sprayed (with a new goal id).
* ACCEPTED/EXECUTING/CANCELING -> wait for it to end (the robot finishes its trajectory alone), then as below.
* SUCCEEDED -> ``succeeded``: the spray happened; it is recorded, never repeated.
* ABORTED/CANCELED -> ``interrupted``: a partial spray; the pair goes to rework (never sprayed twice).

A conveyor step that was under way when the controller died leaves the positions unknown until the controller
reads them from the line (:func:`resolve_positions`: the conveyor's latched state topic); when the line cannot
tell, the pairs that were at the stations go to rework with that reason (a human checks them). Nothing is
deleted.
"""

from __future__ import annotations

import time
from typing import Any

from gluecell.cell.store import Store

from .flow import FINAL_STATES

__all__ = ["reconcile", "resolve_positions", "Reconciliation"]


class Reconciliation:
    """Outcome of :func:`reconcile`: per-goal decisions, items sent to rework, and whether anything is left."""

    def __init__(self) -> None:
        self.goals: dict[str, str] = {}
        self.reworked: list[str] = []
        self.unsettled: list[str] = []

    def summary(self) -> str:
        """One line for the stop reason and the event log."""
        parts = [f"{g}: {s}" for g, s in self.goals.items()]
        if self.reworked:
            parts.append(f"to rework: {', '.join(self.reworked)}")
        if self.unsettled:
            parts.append(f"unsettled: {', '.join(self.unsettled)}")
        return "; ".join(parts) if parts else "nothing to reconcile"


def _settle(link: Any, goal: str, wait_s: float) -> Any:
    from gluecell.cell.robot.base import GoalStatus

    deadline = time.monotonic() + wait_s
    while True:
        rep = link.goal_status(goal, timeout_s=2.0)
        if rep.status == GoalStatus.UNKNOWN or rep.status.terminal or time.monotonic() > deadline:
            return rep
        time.sleep(0.02)


def _to_rework(store: Store, item_id: str, cause: str, reason: str, out: Reconciliation) -> None:
    item = store.items.get(item_id)
    if item["state"] in FINAL_STATES:
        return
    store.items.transition(item_id, "rework", verdict="fail", cause=cause, reason=reason,
                           detail={"recovery": True})  # fmt: skip
    out.reworked.append(item_id)


def reconcile(store: Store, link: Any, *, wait_s: float = 120.0) -> Reconciliation:
    """Settle every unfinished spray goal and an interrupted conveyor step (see the module docstring).

    Raises:
        RobotLinkError: the robot side could not be asked (the goals stay unsettled; run it again).
    """
    from gluecell.cell.robot.base import GoalStatus

    out = Reconciliation()
    for row in store.sprays.unfinished():
        rep = _settle(link, row["goal_id"], wait_s)
        detail = {"recovered": True, "robot_status": rep.status.name, "progress_s": rep.progress_s,
                  "gun_switches": rep.gun_switches}  # fmt: skip
        if rep.status == GoalStatus.UNKNOWN:
            status = "not_sent"
        elif rep.status == GoalStatus.SUCCEEDED:
            status = "succeeded"
        elif rep.status.terminal:
            status = "interrupted"
        else:
            out.unsettled.append(row["goal_id"])
            continue
        store.sprays.set_status(row["goal_id"], status, detail)
        out.goals[row["goal_id"]] = status
        if status == "interrupted":
            _to_rework(store, row["item_id"], "spray", f"{row['part']}: spray interrupted by a controller restart "
                       f"({rep.status.name} at {rep.progress_s:.1f} s of {rep.duration_s:.1f} s)", out)  # fmt: skip
    conv = store.meta.get("conveyor") or {}
    if conv.get("moving"):  # the controller died while the conveyor moved: ask the line (see resolve_positions)
        store.meta.set("conveyor", {**conv, "moving": False, "unknown": True})
    return out


def resolve_positions(store: Store, link: Any, wait_s: float = 1.0) -> tuple[dict[str, Any], list[str]]:
    """Positions after an interrupted conveyor step: the line's own report (``link.conveyor``) when the link
    has one, else unknown (the pairs recorded at the stations go to rework). Returns (positions, reworked)."""
    conv = store.meta.get("conveyor") or {}
    out = Reconciliation()
    st = None
    if hasattr(link, "conveyor"):
        deadline = time.monotonic() + wait_s
        st = link.conveyor
        while st.at_scan is None and st.at_spray is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the latched state arrives just after (re)subscribing
            st = link.conveyor
    if st is None:
        for key in ("at_scan", "at_spray"):
            if conv.get(key):
                _to_rework(store, conv[key], "position", "the conveyor was moving when the controller stopped: "
                           "where the pair is must be checked by hand", out)  # fmt: skip
        pos = {"at_scan": None, "at_spray": None, "seated": False, "moving": False}
    else:
        pos = {"at_scan": st.at_scan, "at_spray": st.at_spray, "seated": st.seated, "moving": False}
    store.meta.set("conveyor", pos)
    return pos, out.reworked
