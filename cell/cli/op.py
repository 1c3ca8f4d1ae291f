"""``gluecell op``: the operator's overrides and commands, until the console exists.

    gluecell op --who ana --why "shift start" reset | start | stop | hold | unhold | abort | clear | ...
    gluecell op --who ana --why "checked by hand" force-pass ITEM | force-fail ITEM | respray ITEM | skip ITEM
    gluecell op --who ana --why "jog the arm" mode manual | maintenance | produce
    gluecell op status | rework | events [--since N] | overrides

Each request is written to the cell database with who and why; the running controller applies it within
its poll period and records when and what it did (or why it refused); this command waits for that answer.
``pause`` is Hold, ``resume`` is Unhold. The database is ``[store] path`` of ``--config`` (or ``--db``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

__all__ = ["register", "run_op", "COMMANDS", "ITEM_ACTIONS"]

#: PackML commands by their CLI names (``pause``/``resume`` are Hold/Unhold).
COMMANDS = {"reset": "Reset", "start": "Start", "stop": "Stop", "hold": "Hold", "pause": "Hold", "unhold": "Unhold",
            "resume": "Unhold", "suspend": "Suspend", "unsuspend": "Unsuspend", "abort": "Abort", "clear": "Clear",
            "complete": "Complete"}  # fmt: skip
#: Overrides that name a work item.
ITEM_ACTIONS = {"force-pass": "force_pass", "force-fail": "force_fail", "respray": "respray", "skip": "skip"}
_VIEWS = ("status", "rework", "events", "overrides")


def register(sub: Any) -> None:
    """Add ``gluecell op``."""
    p = sub.add_parser("op", help="operator overrides and commands (force pass/fail, re-spray, skip, pause, mode)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("action", choices=sorted([*COMMANDS, *ITEM_ACTIONS, "mode", *_VIEWS]))
    p.add_argument("target", nargs="?", help="the work item id (item actions) or the unit mode (mode)")
    p.add_argument("--who", help="who asks (recorded); default $GLUECELL_OPERATOR")
    p.add_argument("--why", help="why (recorded; required for every change)")
    p.add_argument("--config", help="cell.toml (its [store] path)")
    p.add_argument("--db", help="the cell database (instead of --config)")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the controller's answer (default 5)")
    p.add_argument("--since", type=int, default=0, help="events: after this sequence number")
    p.set_defaults(func=_main)


def _db_path(args: argparse.Namespace) -> str:
    if args.db:
        return args.db
    from gluecell.cell.control.settings import load_settings

    return load_settings(args.config).store.path


def _request(args: argparse.Namespace) -> tuple[str, str | None, dict[str, Any]]:
    from gluecell.core.errors import ConfigError

    a = args.action
    if a in COMMANDS:
        return "command", None, {"command": COMMANDS[a]}
    if a == "mode":
        if args.target not in ("produce", "maintenance", "manual"):
            raise ConfigError("mode: give produce, maintenance or manual")
        return "mode", None, {"mode": args.target}
    if not args.target:
        raise ConfigError(f"{a}: give the work item id")
    return ITEM_ACTIONS[a], args.target, {}


def run_op(args: argparse.Namespace) -> int:
    """Queue the request, wait for the controller's answer, print it (exit 0 applied, 3 refused, 4 no answer)."""
    import os

    from gluecell.cell.store import Store
    from gluecell.core.errors import ConfigError

    with Store(_db_path(args)) as store:
        if args.action in _VIEWS:
            return _view(store, args)
        who = args.who or os.environ.get("GLUECELL_OPERATOR")
        if not who or not args.why:
            raise ConfigError("--who (or $GLUECELL_OPERATOR) and --why are required: every override is recorded")
        action, item, extra = _request(args)
        if item is not None:
            store.items.get(item)  # an unknown item is refused here, before anything is queued
        oid = store.overrides.request(action, who, args.why, item_id=item, args=extra)
        deadline = time.monotonic() + max(0.0, args.wait)
        while time.monotonic() < deadline:
            o = store.overrides.get(oid)
            if o["applied"] is not None:
                print(f"#{oid} {o['result']}")
                return 0 if o["result"].startswith("applied") else 3
            time.sleep(0.05)
    print(f"#{oid} queued; no controller answered within {args.wait:g} s (it applies it when it runs)")
    return 4


def _view(store: Any, args: argparse.Namespace) -> int:
    if args.action == "status":
        tags = store.packtags.load()
        print(json.dumps({"state": tags.get("StateCurrentName"), "StopReason": tags.get("StopReason"),
                          "ProdProcessedCount": tags.get("ProdProcessedCount"),
                          "ProdDefectiveCount": tags.get("ProdDefectiveCount"), "Alarm": tags.get("Alarm"),
                          "items": store.items.counts()}, indent=1))  # fmt: skip
    elif args.action == "rework":
        for it in store.items.rework_queue():
            print(f"{it['id']}\t{it['style']}\t{it['cause']}\t{it['reason']}\t{it['picture'] or '-'}")
    elif args.action == "events":
        for e in store.events.since(args.since, limit=500):
            print(f"{e['seq']}\t{time.strftime('%H:%M:%S', time.gmtime(e['ts']))}\t{e['kind']}\t{e['message']}")
    else:
        for o in store.overrides.list():
            who = f"{o['who']}\t{o['why']}"
            print(f"#{o['id']}\t{o['action']}\t{o['item_id'] or '-'}\t{who}\t{o['result'] or 'pending'}")
    return 0


def _main(args: argparse.Namespace) -> int:
    return run_op(args)
