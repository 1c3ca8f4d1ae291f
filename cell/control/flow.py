"""The flow of one pair after it was planned: spray (intent first) -> inspect -> route -> record.

Called by :class:`~gluecell.cell.control.controller.Controller` from its worker thread. Every step writes the
store before and after it acts, so a restart can tell what happened (see :mod:`.recovery`). A pair's attempt
number (``work_items.attempts``) is part of its goal ids, ``<item>:<attempt>:<part>``: a goal id is sprayed
at most once, and a part whose goal of this attempt succeeded is never sprayed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gluecell.cell.store import Store

from .pipeline import PreparedPair, program_from_dict, standin_inspect

__all__ = ["FINAL_STATES", "goal_id", "attempt_goals", "store_plan", "record_prepared", "stored_programs",
           "spray_item", "route_item", "forced_verdict", "SprayOutcome"]  # fmt: skip

#: Item states after which the controller does nothing more with a pair (unless a human overrides).
FINAL_STATES = ("passed", "rework", "skipped")


def goal_id(item_id: str, attempt: int, part: str) -> str:
    """The goal id of one part of one attempt (unique per spray the controller ever sends)."""
    return f"{item_id}:{attempt}:{part}"


def attempt_goals(store: Store, item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """part -> newest spray row of the item's current attempt."""
    prefix = f"{item['id']}:{item['attempts']}:"
    return {r["part"]: r for r in store.sprays.for_item(item["id"]) if r["goal_id"].startswith(prefix)}


def store_plan(store: Store, pp: PreparedPair) -> int | None:
    """Store the pipeline's plan (the controller calls it on the preparing thread, so the write is pipelined).
    A plan judged ``needs_human`` is stored too (the operator sees it and its reasons), but returns no id to
    spray."""
    if pp.plan is None:
        return None
    plan_id = store.plans.add(pp.item_id, pp.source, pp.verdict, pp.plan)
    return plan_id if pp.verdict == "ok" else None


def record_prepared(store: Store, pp: PreparedPair, plan_id: int | None) -> dict[str, Any]:
    """Record the pipeline's result: item -> planned (plan ``plan_id``), or -> rework with the refusal's reason."""
    if pp.verdict == "ok" and plan_id is not None:
        return store.items.transition(pp.item_id, "planned", expect=("arrived",), picture=pp.picture,
                                      detail={"plan_id": plan_id, "timing_ms": pp.timing_ms})  # fmt: skip
    return store.items.transition(pp.item_id, "rework", expect=("arrived",), verdict="fail", cause=pp.cause,
                                  reason=pp.reason, picture=pp.picture,
                                  detail={"timing_ms": pp.timing_ms})  # fmt: skip


class SprayOutcome:
    """What :func:`spray_item` did: ``ok`` (every part sprayed), or the cause and reason it stopped, and
    ``fault`` when the cell must hold (robot refused, link lost, robot error), ``interrupted`` when the machine
    left Execute between parts (the pair resumes on Unhold/restart)."""

    def __init__(self, ok: bool, cause: str | None = None, reason: str = "", fault: bool = False,
                 interrupted: bool = False, robot_s: float = 0.0) -> None:  # fmt: skip
        self.ok, self.cause, self.reason, self.fault = ok, cause, reason, fault
        self.interrupted, self.robot_s = interrupted, robot_s


def stored_programs(store: Store, item_id: str) -> tuple[int, dict[str, Any]] | None:
    """(plan id, part -> RobotProgram) of the item's newest ok plan, read back from the store (after a restart)."""
    plan = store.plans.latest(item_id)
    if plan is None or plan["verdict"] != "ok":
        return None
    return plan["id"], {k: program_from_dict(v) for k, v in plan["data"]["robot_programs"].items() if v}


def spray_item(store: Store, link: Any, item: dict[str, Any], programs: tuple[int, dict[str, Any]] | None, *,
               keep_going: Callable[[], bool],
               must_cancel: Callable[[], bool], goal_timeout_s: Callable[[float], float],
               poll_s: float = 0.02) -> SprayOutcome:  # fmt: skip
    """Spray every part of ``item`` whose goal of this attempt has not succeeded.

    Args:
        programs: (plan id, part -> RobotProgram) in spraying order (None: no plan, the pair goes to rework).
        keep_going: checked between parts (False: stop at this safe boundary, the pair resumes later).
        must_cancel: checked while a goal runs (True: cancel it now: abort / e-stop).
        goal_timeout_s: the wait allowed for a program of the given duration.
    """
    from gluecell.cell.robot.base import GoalStatus
    from gluecell.cell.robot.errors import GoalRejectedError, LinkDownError, RobotLinkError, RobotTimeoutError

    if programs is None:
        return SprayOutcome(False, "no_plan", "no plan was recorded for the pair")
    plan_id, progs = programs
    done = attempt_goals(store, item)
    robot_s = 0.0
    for part, prog in progs.items():
        prev = done.get(part)
        if prev is not None and prev["status"] == "succeeded":
            continue
        if prev is not None and prev["status"] in ("intent", "sent"):  # recovery must have settled it first
            return SprayOutcome(False, "unreconciled", f"goal {prev['goal_id']} is unreconciled", fault=True)
        if prev is not None and prev["status"] in ("failed", "cancelled", "interrupted"):
            return SprayOutcome(False, "spray", f"{part}: spray did not finish ({prev['status']})")
        if not keep_going():
            return SprayOutcome(False, interrupted=True, robot_s=robot_s)
        gid = goal_id(item["id"], item["attempts"], part)
        if prev is not None:  # not_sent: the same attempt may send a fresh goal id
            gid = f"{gid}.{len(store.sprays.for_item(item['id']))}"
        with store.db.transaction():  # intent first: a restart asks the robot about this goal id
            store.sprays.intent(item["id"], plan_id, part, gid)
            if item["state"] != "spraying":
                store.items.transition(item["id"], "spraying", expect=("planned", "spraying"))
                item = {**item, "state": "spraying"}
        try:
            handle = link.execute(prog, goal_id=gid, timeout_s=5.0)
        except LinkDownError as exc:
            store.sprays.set_status(gid, "not_sent", {"error": exc.message})
            return SprayOutcome(False, "link", f"{part}: {exc.message}", fault=True, robot_s=robot_s)
        except GoalRejectedError as exc:
            store.sprays.set_status(gid, "failed", {"error": exc.message, **exc.diagnostics})
            return SprayOutcome(False, "robot_refused", f"{part}: robot refused the goal: {exc.message}",
                                fault=True, robot_s=robot_s)  # fmt: skip
        except (RobotTimeoutError, RobotLinkError) as exc:  # unknown whether it arrived: stays 'intent'
            return SprayOutcome(False, "link", f"{part}: {exc.message}", fault=True, robot_s=robot_s)
        store.sprays.set_status(gid, "sent")
        res = _wait(handle, goal_timeout_s(float(prog.duration)), must_cancel, poll_s)
        if res is None:
            return SprayOutcome(False, "timeout:execute", f"{part}: the robot did not finish in time", fault=True,
                                robot_s=robot_s)  # fmt: skip
        status = "succeeded" if res.ok else ("cancelled" if res.status == GoalStatus.CANCELED else "failed")
        store.sprays.set_status(gid, status, {"error_code": res.error_code, "error": res.error_string,
                                              "duration_s": res.duration_s})  # fmt: skip
        robot_s += float(prog.duration)
        if not res.ok:
            return SprayOutcome(False, "spray", f"{part}: {status} ({res.error_string or res.error_code})",
                                fault=status == "failed", robot_s=robot_s)  # fmt: skip
    store.items.transition(item["id"], "sprayed", expect=("spraying", "planned"))
    return SprayOutcome(True, robot_s=robot_s)


def _wait(handle: Any, timeout_s: float, must_cancel: Callable[[], bool], poll_s: float) -> Any:
    """The goal's result; cancels it when ``must_cancel()``; None when it did not end within ``timeout_s``."""
    from gluecell.cell.robot.errors import RobotTimeoutError

    deadline = time.monotonic() + timeout_s
    cancelled = False
    while True:
        try:
            return handle.wait(poll_s)
        except RobotTimeoutError:
            pass
        if must_cancel() and not cancelled:
            handle.cancel()
            cancelled, deadline = True, time.monotonic() + 5.0
        if time.monotonic() > deadline:
            return None


def forced_verdict(store: Store, item_id: str) -> dict[str, Any] | None:
    """The newest applied force_pass/force_fail override of ``item_id``'s current attempt (it outranks any
    inspection); one given before a re-spray does not carry over."""
    since = max((h["ts"] for h in store.items.history(item_id) if h["state"] == "ordered"), default=0.0)
    for o in store.overrides.for_item(item_id):
        if (o["action"] in ("force_pass", "force_fail") and o["applied"] and o["created"] >= since
                and (o["result"] or "").startswith("applied")):  # fmt: skip
            return o
    return None


def route_item(store: Store, item: dict[str, Any], inspection: dict[str, Any]) -> dict[str, Any]:
    """Record the inspection and route the pair: next station (pass) or the rework queue, with the reason (fail:
    the defects; uncertain: to the human).

    A human's force_pass/force_fail of the item outranks the inspection (recorded as its own inspection row).
    """
    forced = forced_verdict(store, item["id"])
    with store.db.transaction():
        store.inspections.add(item["id"], inspection["source"], inspection["verdict"], cause=inspection["cause"],
                              data=inspection.get("data"), picture=inspection.get("picture"))  # fmt: skip
        verdict, cause = inspection["verdict"], inspection["cause"]
        reason = inspection.get("reason") or (f"inspection ({inspection['source']}): {cause}" if cause else "")
        if forced is not None:
            verdict = "pass" if forced["action"] == "force_pass" else "fail"
            cause, reason = "override", f"{forced['action']} by {forced['who']}: {forced['why']}"
            store.inspections.add(item["id"], "override", verdict, cause=cause, data={"override_id": forced["id"]})
        state = "passed" if verdict == "pass" else "rework"
        picture = inspection.get("picture") or item.get("picture")
        return store.items.transition(item["id"], state, expect=("sprayed",), verdict=verdict, cause=cause,
                                      reason=reason, picture=picture)  # fmt: skip


def inspect(metrics: dict[str, Any] | None, executed_ok: bool, min_coverage: float,
            qa: Callable[[], tuple[dict[str, Any] | None, str]] | None = None) -> dict[str, Any]:
    """The inspection hook: the QA station's verdict (``gluecell.quality.inspect`` on the pair's inspection
    views, :func:`.inspection.qa_inspection`), or, when ``qa`` is None or returns no inspection (no views in
    time, no cameras, a plan without a bite line), the explicit stand-in from the plan's own checks, with the
    reason recorded (``data["qa_fallback"]``). ``metrics``: the plan's per-part metrics."""
    why = "no QA station configured"
    if qa is not None:
        judged, why = qa()
        if judged is not None:
            return judged
    out = standin_inspect(PreparedPair("", "ok", plan={"metrics": metrics or {}}), executed_ok,
                          min_coverage=min_coverage)  # fmt: skip
    out["data"]["qa_fallback"] = why
    return out
