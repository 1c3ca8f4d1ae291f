"""A warm worker process that plans the sole while the caller plans the upper: both cores, no GIL between them.

Two threads (:func:`gluecell.pathplan.pipeline.plan_pair`'s default) share one interpreter: the compiled film sum,
the k-d trees and large numpy operations release the GIL, but the modifiers, the IK search and the many small
array operations of a plan hold it, so two threads overlap only part of a plan. A second process overlaps all of
it. Starting one costs ~1-3 s (interpreter, numpy/scipy, the compiled kernels from numba's disk cache), so a
long-running caller (the cell) starts it once with :func:`start` and keeps it; :func:`plan_pair` uses it only when
it is :func:`ready` (warm), and plans in threads otherwise, so a one-shot ``gluecell plan`` never waits for it.

The worker is a ``spawn`` process (no fork of a threaded parent), one at a time, shut down at interpreter exit or
by :func:`stop`, and it exits by itself within a second when its caller is killed. A worker that died is dropped
and the part is planned in the caller (logged).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

__all__ = ["start", "stop", "ready", "wait_ready", "join_here", "submit", "beside", "result"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: Any = None
_warm: Future | None = None
_here: threading.Thread | None = None


def start() -> None:
    """Start the worker (once; returns at once, it warms up in the background: :func:`ready`), and load the
    compiled film kernels in this process too, in a background thread (the upper is planned here; loading them
    is ~1 s of the first plan otherwise)."""
    global _pool, _warm, _here
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with _lock:
        if _pool is not None:
            return
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        _warm = _pool.submit(_warm_up, os.getpid())
        if _here is None:
            _here = threading.Thread(target=_warm_up, name="plan-kernels-warm-up", daemon=True)
            _here.start()


def join_here(timeout: float = 60.0) -> None:
    """Wait (at most ``timeout`` s) until this process has loaded the compiled film kernels. The cell calls it
    before it runs the line: loading numba holds the interpreter for up to seconds, and a controller doing that
    while the robot sprays starves its own robot link's heartbeat (a false "link lost" Hold)."""
    here = _here
    if here is not None:
        here.join(timeout)


def wait_ready(timeout: float = 120.0) -> bool:
    """Wait (at most ``timeout`` s) until the started worker and this process's kernels are warm: a timing run
    (a bench) measures the cell's warm state, not the one-off start. Returns :func:`ready`."""
    import time

    t_end = time.monotonic() + timeout
    while not ready() and _warm is not None and time.monotonic() < t_end:
        time.sleep(0.02)
    if _here is not None:
        _here.join(max(t_end - time.monotonic(), 0.0))
    return ready()


def stop() -> None:
    """Shut the worker down (waits for a part it is planning)."""
    global _pool, _warm
    with _lock:
        pool, _pool, _warm = _pool, None, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def ready() -> bool:
    """Whether a started worker has warmed up and is alive."""
    with _lock:
        warm = _warm
    if warm is None or not warm.done():
        return False
    if warm.exception() is not None:
        log.warning("plan worker failed to start (%s): planning in threads", warm.exception())
        stop()
        return False
    return True


def submit(fn: Any, *args: Any) -> Future | None:
    """``fn(*args)`` in the worker (``fn`` a module-level function), or None when it is not :func:`ready` or has
    died (then it is dropped; :func:`start` makes a new one)."""
    from concurrent.futures.process import BrokenProcessPool

    if not ready():
        return None
    try:
        with _lock:
            return _pool.submit(fn, *args) if _pool is not None else None
    except (BrokenProcessPool, RuntimeError) as exc:
        log.warning("plan worker is gone (%s): planning in the caller", exc)
        stop()
        return None


def beside(fut: Future, fn: Any) -> Any:
    """``fn()`` here while ``fut`` runs in the worker; when ``fn`` raises, wait for ``fut`` first (the worker is
    then free for the next pair)."""
    from concurrent.futures import wait

    try:
        return fn()
    except BaseException:
        wait([fut])
        raise


def result(fut: Future, here: Any) -> Any:
    """The worker's result; a planning error (:class:`GlueCellError`) is raised as it is (it pickles with its
    attributes); a worker that failed otherwise (died, result not picklable) is dropped and ``here()`` runs in
    this process instead."""
    from gluecell.core.errors import GlueCellError

    try:
        return fut.result()
    except GlueCellError:
        raise
    except Exception as exc:
        log.warning("plan worker failed (%r): planning the part here", exc)
        stop()
        return here()


def _warm_up(parent: int | None = None) -> bool:
    """Import the planner and load the compiled film kernels (from numba's cache); in the worker (``parent``: the
    caller's pid) also watch the caller: a worker whose caller was killed exits instead of lingering."""
    import numpy as np

    if parent is not None:
        from gluecell.core.lifetime import watch_parent

        watch_parent(parent, name="plan-worker-watch")
        from .kernelsplit import off_in_this_process

        off_in_this_process()  # the sole's kernels run whole: the second core is for the caller's upper

    from . import pipeline  # noqa: F401  (the imports the first plan would pay for)
    from .deposition import SpraySamples, film_thickness

    pts = np.array([[0.0, 0.0, 0.0], [1e-3, 0.0, 0.0]])
    nrm = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    s = SpraySamples(np.array([[0.0, 0.0, 0.02]]), np.array([[0.0, 0.0, -1.0]]), np.array([[1.0, 0.0, 0.0]]),
                     np.array([1e-3]))  # fmt: skip
    film_thickness(s, pts, nrm)
    from .ikkernel import warm_up as ik_warm_up

    ik_warm_up()  # the compiled IK and roll search (~0.5 s from the disk cache)
    from .grading import warm_up

    warm_up()  # the ring designs' flat-plate profiles (~1.8 s the first time in a process)
    return True
