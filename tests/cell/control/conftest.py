"""Fixtures: a plan recorded once by the REAL pipeline (replayed for speed), the simulated cell on a thread, and
a controller wired to it through the real robot link (roslibpy over the rosbridge protocol)."""

import contextlib
import gzip
import time
from pathlib import Path

import pytest

from gluecell.cell.control import Controller, ControllerConfig, ReplayPipeline

#: Sim speed-up for the controller tests: a pair's two programs (~51 s of robot time) take ~0.6 s.
SPEED = 80.0


#: A plan of the REAL pipeline (perception -> deformation -> pathplan) for one sneaker pair (world seed 7, sample
#: 00000), recorded with ``record_replay`` (see its ``recorded_with`` key) so the tests need not spend ~10 s
#: planning; ``test_demo`` runs the real pipeline end to end.
RECORDING = Path(__file__).parent / "data" / "sneaker.replay.json.gz"


@pytest.fixture(scope="session")
def replay_dir(tmp_path_factory):
    """A replay folder holding the recorded sneaker plan."""
    out = tmp_path_factory.mktemp("replay")
    (out / "sneaker.json").write_bytes(gzip.decompress(RECORDING.read_bytes()))
    return out


@pytest.fixture
def sim():
    """``sim(ids, **kw)`` starts a simulated cell on a thread (stopped after the test)."""
    from gluecell.cell.sim.cell import SimCell, SimCellConfig
    from gluecell.cell.sim.run import start_in_thread

    handles = []

    def start(ids, speed=SPEED, index_time_s=1.5, **kw):
        h = start_in_thread(SimCell(SimCellConfig(speed=speed, index_time_s=index_time_s), ids=list(ids), **kw))
        handles.append(h)
        return h

    yield start
    for h in handles:
        h.stop()


@pytest.fixture
def cell(tmp_path, replay_dir):
    """``cell(handle, ids, style="sneaker", **cfg)`` -> (controller, store, link), items ordered; closed after."""
    from gluecell.cell.robot.config import RobotLinkConfig
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.store import Store

    made = []

    def make(handle, ids, style="sneaker", camera_root=None, **cfg):
        store = Store(tmp_path / f"cell{len(made)}.db")
        for i in ids:
            store.items.order(i, style)
        link = RosbridgeLink(RobotLinkConfig(port=handle.port))
        link.connect(10)
        cfg.setdefault("goal_timeout_margin_s", 5.0)
        cfg.setdefault("ready_timeout_s", 3.0)
        ctl = Controller(store, link, ReplayPipeline.load(replay_dir), ControllerConfig(**cfg), camera_root=camera_root)
        made.append((ctl, store, link))
        ctl.start()
        return ctl, store, link

    yield make
    for ctl, store, link in made:
        with contextlib.suppress(Exception):
            ctl.close(5)
        link.disconnect()
        store.close()


def sprays(handle):
    """The simulated cell's spray count per item and part."""
    return handle.call(lambda: {k: dict(v.sprays) for k, v in handle.cell.items.items()})


def wait_until(pred, timeout_s=20.0, what=""):
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def fault(handle, **spec):
    """Inject a fault into the simulated cell (as its /gluecell_sim/fault service does)."""
    from gluecell.cell.sim.faults import parse_fault

    return handle.call(lambda: handle.cell.inject(parse_fault(spec)))


def clear_fault(handle, kind):
    from gluecell.cell.sim.services import _clear

    return handle.call(lambda: _clear(handle.cell, kind))



@pytest.fixture
def tools():
    """The helpers above, as a fixture (test modules here are not a package)."""
    from types import SimpleNamespace

    return SimpleNamespace(sprays=sprays, wait_until=wait_until, fault=fault, clear_fault=clear_fault)
