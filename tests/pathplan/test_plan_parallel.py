"""Planning the two parts at once (issue 15 item 4: both cores) gives the same plans as one after the other: in
two threads and with the sole in the warm worker process; the worker's planning errors arrive as they are, and a
worker does not outlive a killed caller."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from gluecell.pathplan import workers
from gluecell.pathplan.errors import PathplanError
from gluecell.pathplan.pipeline import PathplanConfig, plan_pair

#: Longest wait for the worker to warm up (spawn, imports, compiled kernels from numba's cache), s.
WARM_TIMEOUT_S = 90.0
#: Longest a worker may outlive its killed caller, s (it checks its parent every second).
ORPHAN_EXIT_S = 10.0


@pytest.fixture(scope="module")
def worker():
    workers.start()
    assert workers.wait_ready(WARM_TIMEOUT_S), "the plan worker did not warm up"
    yield
    workers.stop()


def _same(a, b) -> None:
    for part in ("upper", "sole"):
        assert np.array_equal(a.paths[part].xyz, b.paths[part].xyz)
        assert np.array_equal(a.paths[part].t, b.paths[part].t)
        assert np.array_equal(a.paths[part].spray, b.paths[part].spray)
        assert np.array_equal(a.programs[part].q, b.programs[part].q)
        assert a.programs[part].gun_events == b.programs[part].gun_events
        assert np.array_equal(a.parts[part].film, b.parts[part].film)
        assert a.metrics[part] == b.metrics[part]


def test_threads_and_the_worker_give_the_serial_plan(clouds, worker):
    u, un, s, sn, line = clouds
    cfg = PathplanConfig()
    serial = plan_pair(u, s, line, cfg, upper_normals=un, sole_normals=sn, parallel=False)
    threads = plan_pair(u, s, line, cfg, upper_normals=un, sole_normals=sn, parallel=True)
    proc = plan_pair(u, s, line, cfg, upper_normals=un, sole_normals=sn, parallel="process")
    default = plan_pair(u, s, line, cfg, upper_normals=un, sole_normals=sn)  # the warm worker is used
    assert serial.metrics["upper"]["coverage_1mm"] > 0.9 and serial.metrics["sole"]["coverage_1mm"] > 0.9
    for other in (threads, proc, default):
        _same(serial, other)
    assert {"upper_total", "sole_total", "pathplan"} <= set(proc.timing_ms)


def test_a_refused_sole_in_the_worker_raises_its_own_error(clouds, worker):
    u, un, _, _, line = clouds
    junk = np.random.default_rng(5).normal([0.55, 0.2, 0.1], 1e-3, (500, 3))  # a blob, no sole
    errors = []
    for mode in (False, "process"):
        with pytest.raises(PathplanError) as info:
            plan_pair(u, junk, line, PathplanConfig(), upper_normals=un, parallel=mode)
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1]) and errors[0].message == errors[1].message
    assert workers.ready()  # a planning error leaves the worker up


_CALLER = """
import os, sys, time
from gluecell.pathplan import workers
if __name__ == "__main__":
    workers.start()
    assert workers.wait_ready(90)
    kids = [p for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/stat")
            and open(f"/proc/{p}/stat").read().split(")")[-1].split()[1] == str(os.getpid())
            and b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()]
    print(" ".join(kids), flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the worker")
def test_the_worker_exits_when_its_caller_is_killed(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(_CALLER)
    caller = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        kids = [int(p) for p in caller.stdout.readline().split()]
        assert len(kids) == 1 and os.path.exists(f"/proc/{kids[0]}")
    finally:
        caller.kill()
        caller.wait(10)
    t0 = time.monotonic()
    while os.path.exists(f"/proc/{kids[0]}") and time.monotonic() - t0 < ORPHAN_EXIT_S:
        time.sleep(0.1)
    alive = os.path.exists(f"/proc/{kids[0]}") and "Z" not in open(f"/proc/{kids[0]}/stat").read().split(")")[-1][:3]
    assert not alive, "the plan worker outlived its killed caller"
