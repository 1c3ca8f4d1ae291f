"""Human overrides: force pass/fail, re-spray, skip, PackML commands (pause = Hold) and unit mode (manual).

A request is written to the store (``gluecell op``, the console, the API: :meth:`Store.overrides.request`) with
who and why; the controller applies it at its next poll (every ``poll_s``, 50 ms by default) and writes when and
what it did (``result`` starts with "applied" or "refused"). A human decision outranks every automatic one: a
forced verdict replaces the inspection's, also for a pair that was already routed.
"""

from __future__ import annotations

from typing import Any

from gluecell.cell.store import Store

from .flow import FINAL_STATES
from .packml import Command, CommandRefusedError, UnitMode

__all__ = ["apply_override"]


def _force(store: Store, o: dict[str, Any], tags: Any) -> str:
    item = store.items.get(o["item_id"])
    verdict = "pass" if o["action"] == "force_pass" else "fail"
    if item["state"] in ("passed", "rework"):  # already routed: re-route now
        state = "passed" if verdict == "pass" else "rework"
        with store.db.transaction():
            store.inspections.add(item["id"], "override", verdict, cause="override", data={"override_id": o["id"]})
            store.items.transition(item["id"], state, verdict=verdict, cause="override",
                                   reason=f"{o['action']} by {o['who']}: {o['why']}",
                                   detail={"override_id": o["id"]})  # fmt: skip
        if item["state"] != state:
            tags.recount(defective_delta=1 if state == "rework" else -1)
        return f"applied: {item['id']} -> {state}"
    if item["state"] == "skipped":
        raise CommandRefusedError(f"{item['id']} was skipped; ask for a re-spray first")
    return f"applied: {item['id']} will be routed {verdict} after its spray"


def _respray(store: Store, o: dict[str, Any]) -> str:
    item = store.items.get(o["item_id"])
    if item["state"] not in FINAL_STATES:
        raise CommandRefusedError(f"{item['id']} is {item['state']}; only a routed pair can be re-sprayed")
    store.items.transition(item["id"], "ordered", detail={"override_id": o["id"], "respray": True})
    return f"applied: {item['id']} is expected at the infeed again (attempt {item['attempts'] + 1})"


def _skip(store: Store, o: dict[str, Any]) -> str:
    item = store.items.get(o["item_id"])
    if item["state"] in (*FINAL_STATES, "sprayed"):
        raise CommandRefusedError(f"{item['id']} is {item['state']}: nothing left to skip")
    if item["state"] == "spraying":
        raise CommandRefusedError(f"{item['id']} is being sprayed; hold the cell first")
    store.items.transition(item["id"], "skipped", verdict="fail", cause="override",
                           reason=f"skipped by {o['who']}: {o['why']}", detail={"override_id": o["id"]})  # fmt: skip
    return f"applied: {item['id']} skipped"


def apply_override(controller: Any, o: dict[str, Any]) -> str:
    """Apply one pending request; returns the ``result`` text (the caller stores it).

    Raises:
        GlueCellError: the request cannot be applied now (the text becomes "refused: ...").
    """
    store: Store = controller.store
    action, args = o["action"], o["args"] or {}
    if action in ("force_pass", "force_fail"):
        return _force(store, o, controller.tags)
    if action == "respray":
        return _respray(store, o)
    if action == "skip":
        return _skip(store, o)
    if action == "command":
        name = str(args.get("command", "")).upper()
        if name not in Command.__members__:
            raise CommandRefusedError(f"unknown command {args.get('command')!r}; one of {list(Command.__members__)}")
        tr = controller.command(Command[name], who=o["who"], why=o["why"])
        return f"applied: {tr.before.name.title()} -> {tr.after.name.title()}"
    if action == "mode":
        name = str(args.get("mode", "")).upper()
        if name not in UnitMode.__members__:
            raise CommandRefusedError(f"unknown unit mode {args.get('mode')!r}; one of {list(UnitMode.__members__)}")
        controller.set_mode(UnitMode[name], who=o["who"], why=o["why"])
        return f"applied: unit mode {name.title()}"
    raise CommandRefusedError(f"unknown override {action!r}")
