"""``gluecell serve --config cell.toml``: run the cell controller against a rosbridge server and its cameras.

The robot link connects to ``[robot] host:port`` (a real UR driver behind ``rosbridge_server``, or
``gluecell sim``); the controller keeps its state in ``[store] path`` and starts in Stopped (after an unclean
stop: Stopped with the reason, goals reconciled with the robot). Commands come from ``gluecell op`` (or the
console); ``--start`` sends Reset and Start at launch. SIGINT/SIGTERM stop at the next safe boundary (after the
running goal) and close the database cleanly. A status line is printed every ``--status-s`` seconds.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any

__all__ = ["register", "run_serve"]


def register(sub: Any) -> None:
    """Add ``gluecell serve``."""
    p = sub.add_parser("serve", help="run the cell controller against rosbridge (real robot or gluecell sim)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--config", required=True, help="cell.toml ([store], [control], [pipeline], [robot])")
    p.add_argument("--start", action="store_true", help="send Reset and Start once connected")
    p.add_argument("--status-s", type=float, default=10.0, help="seconds between status lines (0: none)")
    p.add_argument("--exit-when-complete", action="store_true", help="exit 0 once the machine reaches Complete")
    from gluecell.cell.api.server import add_server_options

    add_server_options(p)  # the task API and operator console (issue 10)
    p.set_defaults(func=_main)


def _status_line(ctl: Any) -> str:
    st = ctl.status()
    tags = st["packtags"]
    reason = tags["StopReason"]["Value"]
    return (f"{st['state_name']:<12} processed {tags['ProdProcessedCount']} defective {tags['ProdDefectiveCount']}"
            f" items {st['items']}" + (f" stop reason: {reason}" if reason else ""))  # fmt: skip


def run_serve(args: argparse.Namespace) -> int:
    """Connect, recover, serve until a signal (or Complete with ``--exit-when-complete``)."""
    from gluecell.cell.control import Command, Controller, State
    from gluecell.cell.control.settings import build_pipeline, load_settings, sim_style_library
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.store import Store

    cfg = load_settings(args.config)
    refs = sim_style_library() if cfg.pipeline.references == "sim" and cfg.pipeline.mode == "real" else None
    pipeline = build_pipeline(cfg.pipeline, refs)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Store(cfg.store.path, synchronous=cfg.store.synchronous) as store:
        link = RosbridgeLink(cfg.robot)
        link.connect(cfg.robot.connect_timeout_s)
        ctl = Controller(store, link, pipeline, cfg.control)
        api = None
        try:
            ctl.start()
            if not args.no_api:  # the task API and operator console on the same database (issue 10)
                from gluecell.cell.api.server import serve_beside_controller

                api = serve_beside_controller(args, cfg.store.path, cfg.pipeline.out or "runs")
            print(f"gluecell serve: {cfg.robot.host}:{cfg.robot.port}, {cfg.store.path}, pipeline {pipeline.name};"
                  f" {_status_line(ctl)}", flush=True)  # fmt: skip
            if args.start:
                ctl.command(Command.RESET, who="serve", why="--start")
                ctl.wait_for(State.IDLE, cfg.control.ready_timeout_s + 5)
                ctl.command(Command.START, who="serve", why="--start")
            last = time.monotonic()
            while not stop.wait(0.1):
                if args.exit_when_complete and ctl.state == State.COMPLETE:
                    break
                if args.status_s > 0 and time.monotonic() - last >= args.status_s:
                    print(_status_line(ctl), flush=True)
                    last = time.monotonic()
        finally:
            if api is not None:
                api.stop()
            ctl.close()
            link.disconnect()
        print(f"gluecell serve: stopped; {_status_line(ctl)}", flush=True)
    return 0


def _main(args: argparse.Namespace) -> int:
    return run_serve(args)
