"""Both cores for one part's compiled kernels (issue 15, fast planning): a GIL-free loop split in two halves
whose outputs do not overlap, one half in a helper thread, the other in the caller.

Why: in the cell the sole is planned in the warm worker process (:mod:`~gluecell.pathplan.workers`) beside the
upper, but the sole takes about a third of the upper's time, so the second core idles for the upper's later
tuning rounds. The film sum, the standoff ray cast and the inverse kinematics are compiled loops that release the
GIL (``nogil``); each output element is computed by one half only, in the same order as by the whole loop, so a
split gives the same numbers bit for bit (tests/pathplan/test_planlat_split.py). Where a half is too small to pay
for the hand-over (~50 us), or the process may use one CPU only, the loop runs whole.

``GLUECELL_PLAN_SPLIT=0`` in the environment, or :func:`plain`, turns the split off (the reference in the tests).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["enabled", "run_halves", "plain", "off_in_this_process"]

_lock = threading.Lock()
_pool: Any = None
_pool_pid = 0
_off = threading.local()  # per thread: plain() blocks
_ENV_OFF = os.environ.get("GLUECELL_PLAN_SPLIT", "1").strip() == "0"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_CPUS = _cpus()


_process_off = False


def off_in_this_process() -> None:
    """Run every kernel whole in this process: the warm worker's (it plans the sole, the shorter part; a helper
    thread of its own could only take CPU from the caller's upper, the critical path)."""
    global _process_off
    _process_off = True


def enabled(n: int, min_n: int) -> bool:
    """Whether a loop over ``n`` items is worth splitting (``min_n``: the smallest worth it) here and now."""
    return n >= min_n and _CPUS >= 2 and not (_ENV_OFF or _process_off) and not getattr(_off, "on", False)


@contextmanager
def plain() -> Iterator[None]:
    """Within this block (in this thread) every kernel runs whole, as before the split."""
    old = getattr(_off, "on", False)
    _off.on = True
    try:
        yield
    finally:
        _off.on = old


def _executor() -> Any:
    """The helper threads of this process (a forked child does not inherit running threads: it makes its own)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            _pool, _pool_pid = ThreadPoolExecutor(max_workers=2, thread_name_prefix="plan-kernel-half"), os.getpid()
        return _pool


def run_halves(fn: Callable[[int, int], None], n: int, mid: int | None = None) -> None:
    """``fn(0, mid)`` in a helper thread and ``fn(mid, n)`` here (``mid`` default ``n // 2``); returns when both
    are done (an error in either is raised). ``fn`` must write disjoint outputs for disjoint ranges."""
    mid = n // 2 if mid is None else mid
    fut = _executor().submit(fn, 0, mid)
    try:
        fn(mid, n)
    finally:
        fut.result()
