"""The whole line behind the task API, in one process, for the console's browser test and the ``api`` bench.

    with EmbeddedLine(out, world) as line:          # sim process + controller (real pipeline) + API server
        line.url, line.token("operator")            # the console's address and a token per role

The simulated cell runs as its own process (``gluecell sim``, as ``gluecell demo`` starts it); the controller
keeps its state in ``<out>/cell.db``, which the API serves; it waits in Stopped for an operator's Reset and
Start. Work arrives as MES job orders (the pairs' ids as ``MaterialSublotIDs``), not pre-ordered items.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedLine", "world_pairs", "job_for"]


def world_pairs(world: Path) -> list[dict[str, Any]]:
    """The work items of a generated world (id, style, size, side), in id order."""
    out = []
    for d in sorted((world / "inputs").iterdir()):
        if (d / "workitem.json").is_file():
            wi = json.loads((d / "workitem.json").read_text())
            out.append({"id": d.name, "style": wi["style"], "size_eu": float(wi["size_eu"]), "side": wi["side"]})
    return out


def job_for(job_id: str, pairs: list[dict[str, Any]], priority: int = 0) -> dict[str, Any]:
    """A job order for ``pairs`` of one style: one MaterialRequirement per pair with its id as the sublot."""
    return {"JobOrderID": job_id, "WorkMasterID": pairs[0]["style"], "Priority": priority,
            "Description": f"{len(pairs)} pairs", "MaterialRequirements": [
                {"SizeEU": p["size_eu"], "Side": p["side"], "Quantity": 1, "MaterialSublotIDs": [p["id"]]}
                for p in pairs]}  # fmt: skip


class EmbeddedLine:
    """Simulated cell (process) + robot link + controller + API server on ``<out>/cell.db``.

    Args:
        out: folder of the run (database, cameras, pairs).
        world: generated dataset the simulated cell plays.
        speed: simulated robot speed-up.
        pipeline: a :mod:`gluecell.cell.control.pipeline` pipeline (default: the real one, pictures on).
        api_settings: :class:`gluecell.cell.api.app.ApiSettings` overrides (db and media roots are set here).
        faults: a ``[[fault]]`` TOML file the simulated cell plays (e.g. a clogged nozzle on one pair).
    """

    def __init__(self, out: Path, world: Path, speed: float = 80.0, pipeline: Any = None,
                 api_settings: Any = None, faults: Path | None = None) -> None:  # fmt: skip
        self.out, self.world, self.speed = Path(out), Path(world), float(speed)
        self.faults = Path(faults) if faults is not None else None
        self.pipeline, self.api_settings = pipeline, api_settings
        self._stack = contextlib.ExitStack()
        self._tokens: dict[str, str] = {}

    def __enter__(self) -> EmbeddedLine:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        from gluecell.cell.api.server import start_api_server
        from gluecell.cell.cli.demo import start_sim_process
        from gluecell.cell.control import Controller, RealPipeline
        from gluecell.cell.control.settings import sim_style_library
        from gluecell.cell.robot.config import RobotLinkConfig
        from gluecell.cell.robot.rosbridge import RosbridgeLink
        from gluecell.cell.sim.operator import sim_line_marker
        from gluecell.cell.store import Store

        self.out.mkdir(parents=True, exist_ok=True)
        proc, port = start_sim_process(self.out, self.world, self.speed, faults=self.faults)
        self._stack.callback(_stop_process, proc)
        self.store = self._stack.enter_context(Store(self.out / "cell.db"))
        # the longest heartbeat the link allows: a loaded CI machine can pause the sim's /joint_states for 0.5 s
        self.link = self._stack.enter_context(RosbridgeLink(RobotLinkConfig(port=port, heartbeat_timeout_s=0.9)))
        pipeline = self.pipeline or RealPipeline(sim_style_library(), out=self.out / "pairs", pictures=True,
                                                 marker=sim_line_marker(self.world))  # fmt: skip
        self.controller = Controller(self.store, self.link, pipeline)
        self.controller.start()
        self._stack.callback(self.controller.close)
        self.api = start_api_server("127.0.0.1", 0, db_path=str(self.out / "cell.db"), media_roots=(str(self.out),),
                                    settings=self.api_settings)  # fmt: skip
        self._stack.callback(lambda: self.api.stop())  # late-bound: a bench may restart the server

    @property
    def url(self) -> str:
        """Base URL of the API and console."""
        return self.api.url.rstrip("/")

    def token(self, role: str) -> str:
        """A token of a user with ``role`` (made on first use)."""
        from gluecell.cell.api.auth import add_user

        if role not in self._tokens:
            self._tokens[role] = add_user(self.api.app.state.db, f"{role}-{len(self._tokens)}", role)
        return self._tokens[role]

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    if proc.poll() is None:
        proc.kill()
