"""Process lifetime: a worker process that exits once the process that started it is gone.

A ``spawn`` pool's worker (``concurrent.futures.ProcessPoolExecutor``) whose parent is killed (SIGKILL, a crash,
a stop that does not reach ``shutdown``) is re-parented and can keep rendering or planning for as long as its
queue holds work, holding a core of the 2-core cell machine. :func:`watch_parent` in the worker's initializer
ends it within about ``period_s`` of the parent's death.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["watch_parent"]


def _exit_with(parent: int, period_s: float) -> None:
    """Exit this process once ``parent`` is no longer its parent (it died and this process was re-parented)."""
    while os.getppid() == parent:
        time.sleep(period_s)
    os._exit(0)


def watch_parent(parent: int, period_s: float = 1.0, name: str = "parent-watch") -> threading.Thread:
    """Start a daemon thread in this (worker) process that exits it once ``parent`` (the pid of the process that
    started it, passed in by the parent) is gone; returns the thread."""
    if parent <= 0 or period_s <= 0:
        raise ValueError(f"need a parent pid > 0 and a period > 0 (got {parent}, {period_s})")
    t = threading.Thread(target=_exit_with, args=(parent, period_s), name=name, daemon=True)
    t.start()
    return t
