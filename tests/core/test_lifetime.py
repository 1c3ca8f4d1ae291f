"""A spawned pool worker exits once the process that started it is killed (core.lifetime.watch_parent).

The parent here is a real process that starts a ``spawn`` ProcessPoolExecutor whose initializer watches it (as the
simulator's inspection-capture pool and the planner's worker do), gives the worker a long job, prints the
worker's pid and is then killed with SIGKILL: the worker must be gone within a few seconds, and without the watch
(the control) it is still there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gluecell.core.lifetime import watch_parent

PARENT = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from gluecell.core.lifetime import watch_parent

    def init(parent, watch):
        if watch:
            watch_parent(parent, period_s=0.2)

    def work(_):
        print(os.getpid(), flush=True)
        time.sleep(30)

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=init,
                                   initargs=(os.getpid(), sys.argv[1] == "watch"))
        pool.submit(work, 0)
        time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie counts as gone
        return f.read().split(")")[-1].split()[0] != "Z"


def _worker_after_parent_killed(tmp_path, mode: str, wait_s: float) -> tuple[int, bool]:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    proc = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the worker prints its pid once it runs the job
        assert line.strip().isdigit(), f"no worker pid from the parent: {line!r}"
        worker = int(line)
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _alive(worker):
            time.sleep(0.1)
        return worker, _alive(worker)
    finally:
        proc.kill()


def test_watched_worker_exits_when_parent_is_killed(tmp_path):
    worker, alive = _worker_after_parent_killed(tmp_path, "watch", wait_s=10.0)
    assert not alive, f"worker {worker} outlived its killed parent"


def test_unwatched_worker_lingers_control(tmp_path):
    worker, alive = _worker_after_parent_killed(tmp_path, "none", wait_s=1.5)
    try:
        assert alive, "the control worker exited by itself: the test would not see a missing watch"
    finally:
        if alive:
            os.kill(worker, signal.SIGKILL)


def test_watch_parent_refuses_bad_arguments():
    with pytest.raises(ValueError):
        watch_parent(0)
    with pytest.raises(ValueError):
        watch_parent(os.getpid(), period_s=0.0)
