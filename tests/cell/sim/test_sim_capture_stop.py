"""Stopping the simulated cell ends its inspection-capture worker, even mid-render (a test's capture left
rendering at 95 % of a core starved the next tests' controller on CI's 2 cores)."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_stop_terminates_a_capture_still_running():
    from gluecell.cell.sim.cell import SimCell, SimCellConfig
    from gluecell.cell.sim.run import start_in_thread

    h = start_in_thread(SimCell(SimCellConfig(speed=20.0), ids=["P0"]))
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        worker = pool.submit(os.getpid).result(60)  # the worker is up (builtins: the child cannot import this module)
        pool.submit(time.sleep, 30.0)  # a long render in progress
        h.call(lambda: setattr(h.cell, "_capture_pool", pool))
        time.sleep(0.3)
        assert _alive(worker)
        h.stop()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and _alive(worker):
            time.sleep(0.05)
        assert not _alive(worker), "the capture worker outlived the cell's stop"
        assert h.cell._capture_pool is None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
