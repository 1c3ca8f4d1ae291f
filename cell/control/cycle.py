"""The production cycle of the controller (Execute, unit mode Produce), pipelined over two stations.

One :meth:`CycleMixin._step`: spray the pair at the spray station (its plan was made while the previous pair
was sprayed) -> inspect -> route -> record; make sure the pair at the scan station is planned; index the
conveyor; identify the new pair at the scan station and start its scan/predict/plan in a background thread.
The conveyor positions are written to the store before and after each step (``meta.conveyor``), so a restart
knows which pair is where (or that it does not).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gluecell.cell.store import StoreError, UnknownItemError
from gluecell.core.errors import GlueCellError

from . import flow
from .packml import Event, State
from .pipeline import PreparedPair

__all__ = ["CycleMixin"]

_ACTIVE = ("arrived", "planned", "spraying", "sprayed")


class CycleMixin:
    """The Execute work of :class:`~gluecell.cell.control.controller.Controller` (uses its attributes)."""

    store: Any
    link: Any
    pipeline: Any
    cfg: Any
    machine: Any
    tags: Any
    perf: dict[str, list[float]]
    _prepared: dict[str, Future]
    _camera_root: str | None
    _fault: Any
    _event: Any
    _route_fail: Any
    _save_tags: Any
    _goal_timeout: Any

    # ---- timing -------------------------------------------------------------------------------------------------
    @contextmanager
    def _waiting(self, key: str) -> Any:
        t = time.perf_counter()
        try:
            yield
        finally:
            self._waits[key] = self._waits.get(key, 0.0) + (time.perf_counter() - t) * 1e3

    def _step(self) -> None:
        self._waits: dict[str, float] = {}
        t0 = time.perf_counter()
        pos = self.store.meta.get("conveyor") or {}
        sprayed = False
        if pos.get("at_spray"):
            sprayed = self._at_spray(pos["at_spray"], bool(pos.get("seated", True)))
            if self.machine.state != State.EXECUTE:
                return
        if pos.get("at_scan"):
            self._await_prepared(pos["at_scan"])
        if self.machine.state != State.EXECUTE:
            return
        if self._job_done(pos):
            self.machine.fire(Event.SC, "every ordered pair is routed")
            return
        self._index()
        if sprayed:
            total = (time.perf_counter() - t0) * 1e3
            waits = sum(self._waits.values())
            self.perf["cycle_ms"].append(total)
            self.perf["overhead_ms"].append(total - waits)
            self.perf["robot_wall_ms"].append(self._waits.get("robot", 0.0))
            self.perf["prepare_wait_ms"].append(self._waits.get("prepare", 0.0))
            self.perf["link_ms"].append(self._waits.get("link", 0.0))

    def _job_done(self, pos: dict[str, Any]) -> bool:
        counts = self.store.items.counts()
        busy = sum(counts.get(s, 0) for s in ("ordered", *_ACTIVE))
        return busy == 0 and bool(counts) and not pos.get("at_scan") and not pos.get("at_spray")

    # ---- the spray station --------------------------------------------------------------------------------------
    def _at_spray(self, item_id: str, seated: bool) -> bool:
        """Process the pair at the spray station; True when it was sprayed and routed now."""
        try:
            item = self.store.items.get(item_id)
        except UnknownItemError:
            return False  # a pair nobody ordered passes through unsprayed (refused at the infeed)
        if item["state"] == "arrived":
            self._await_prepared(item_id)
            item = self.store.items.get(item_id)
        if item["state"] in ("planned", "spraying"):
            if not seated:
                self._fault(Event.FAULT, 7, f"{item_id} is not seated on its fixtures: not sprayed")
                return False
            out = self._spray(item)
            if out.interrupted or self.machine.state in (State.ABORTING, State.ABORTED):
                if not out.ok and out.cause == "spray":
                    self._route_fail(item, "spray", out.reason)
                return False
            if not out.ok:
                if out.cause in ("spray", "robot_refused", "no_plan"):
                    self._route_fail(item, out.cause, out.reason)
                if out.fault:
                    self._fault(Event.FAULT, 2, f"{item_id}: {out.reason}")
                return False
            item = self.store.items.get(item_id)
        if item["state"] == "sprayed":
            plan = self.store.plans.latest(item_id)
            insp = flow.inspect(plan["data"] if plan else None, True, self.cfg.min_coverage)
            routed = flow.route_item(self.store, item, insp)
            self.tags.count(defective=routed["state"] != "passed")
            self._save_tags()
            return True
        return False

    def _spray(self, item: dict[str, Any]) -> Any:
        def keep_going() -> bool:
            return self.machine.state == State.EXECUTE

        def must_cancel() -> bool:
            return self.machine.state in (State.ABORTING, State.ABORTED)

        with self._waiting("robot"):
            return flow.spray_item(self.store, self.link, item, keep_going=keep_going, must_cancel=must_cancel,
                                   goal_timeout_s=self._goal_timeout)  # fmt: skip

    # ---- the scan station ---------------------------------------------------------------------------------------
    def _index(self) -> None:
        pos = self.store.meta.get("conveyor") or {}
        self.store.meta.set("conveyor", {**pos, "moving": True})
        with self._waiting("link"):
            st = self.link.index_conveyor(timeout_s=self.cfg.conveyor_timeout_s)
        self.store.meta.set("conveyor", {"at_scan": st.at_scan, "at_spray": st.at_spray, "seated": st.seated,
                                         "moving": False})  # fmt: skip
        if st.at_scan:
            self._identify(st.at_scan)
        elif not st.at_spray:
            self.machine.fire(Event.STARVED, "no pair at the infeed")

    def _identify(self, at_scan: str) -> None:
        """Read the infeed id; an id nobody ordered (or already done) is refused: the pair passes unsprayed."""
        try:
            with self._waiting("link"):
                read = self.link.wait_item(timeout_s=self.cfg.item_timeout_s)
        except GlueCellError as exc:
            self._event("refused", f"no id read at the infeed for the pair at the scan station: {exc.message}")
            return
        if read != at_scan:
            self._event("refused", f"infeed read {read!r:.80} but the conveyor reports {at_scan!r:.80}",
                        item_id=None)  # fmt: skip
            return
        try:
            item = self.store.items.get(read)
        except UnknownItemError:
            self._event("refused", f"work item {read!r:.80} was not ordered: passes unsprayed")
            return
        if item["state"] != "ordered":
            self._event("refused", f"work item {read} arrived again but is {item['state']}", item_id=read)
            return
        item = self.store.items.transition(read, "arrived", expect=("ordered",), seq=self.store.items.next_seq(),
                                           attempts=item["attempts"] + 1)  # fmt: skip
        self._start_prepare(item)

    def _start_prepare(self, item: dict[str, Any]) -> Future:
        fut: Future = Future()
        root = self._camera_root or getattr(self.link, "camera_root", None)

        def run() -> None:
            try:
                fut.set_result(self._prepare(item, root))
            except BaseException as exc:  # delivered to the waiting controller thread
                fut.set_exception(exc)

        self._prepared[item["id"]] = fut
        threading.Thread(target=run, name=f"prepare-{item['id']}", daemon=True).start()
        return fut

    def _prepare(self, item: dict[str, Any], root: str | None) -> PreparedPair:
        from gluecell.cell.robot.cameras import CameraTimeoutError, wait_for_frames

        try:
            frames = wait_for_frames(root, item["id"], self.cfg.frames_timeout_s) if root else None
        except CameraTimeoutError as exc:
            return PreparedPair(item["id"], "needs_human", "camera_timeout", exc.message)
        try:
            return self.pipeline.prepare(item, Path(frames) if frames else None)
        except GlueCellError as exc:
            return PreparedPair(item["id"], "needs_human", exc.stage or "pipeline", str(exc))

    def _await_prepared(self, item_id: str) -> None:
        """Wait for the pair's plan (starting it when a restart lost the thread) and record it."""
        try:
            item = self.store.items.get(item_id)
        except UnknownItemError:
            return
        if item["state"] != "arrived":
            return
        fut = self._prepared.get(item_id) or self._start_prepare(item)
        with self._waiting("prepare"):
            try:
                pp = fut.result(timeout=self.cfg.prepare_timeout_s)
            except TimeoutError:
                pp = PreparedPair(item_id, "needs_human", "timeout:pipeline",
                                  f"scan/predict/plan took longer than {self.cfg.prepare_timeout_s:.0f} s")  # fmt: skip
            except Exception as exc:  # a bug in a stage: the pair goes to a human, the cell holds
                pp = PreparedPair(item_id, "needs_human", "pipeline", f"{type(exc).__name__}: {exc}")
                self._fault(Event.FAULT, 7, f"{item_id}: pipeline error {type(exc).__name__}: {exc}")
        self._prepared.pop(item_id, None)
        try:
            routed = flow.record_prepared(self.store, pp)
        except StoreError as exc:  # e.g. skipped by a human meanwhile
            self._event("refused", f"plan of {item_id} not recorded: {exc.message}", item_id=item_id)
            return
        if routed["state"] == "rework":
            self.tags.count(defective=True)

