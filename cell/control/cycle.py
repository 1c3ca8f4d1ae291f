"""The production cycle of the controller (Execute, unit mode Produce), pipelined over two stations.

One :meth:`CycleMixin._step`: spray the pair at the spray station (its plan was made while the previous pair
was sprayed) -> inspect -> route -> record; make sure the pair at the scan station is planned; index the
conveyor; identify the new pair at the scan station and start its scan/predict/plan in a background thread.
The conveyor positions are written to the store before and after each step (``meta.conveyor``), so a restart
knows which pair is where (or that it does not).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gluecell.cell.store import StoreError, UnknownItemError
from gluecell.core.errors import GlueCellError

from . import flow
from .packml import Event, State
from .packtags import StopReason
from .pipeline import PreparedPair

__all__ = ["CycleMixin", "TimedLink"]


class TimedLink:
    """The robot link with the wall time of every call (and of waiting on a goal) added to ``waits["link"]``,
    so the controller's own overhead per pair can be told apart from robot and transport time."""

    _TIMED = ("execute", "index_conveyor", "wait_item", "goal_status", "state", "set_gun", "clear_robot_error")

    def __init__(self, link: Any) -> None:
        self.inner = link
        self.waits: dict[str, float] = {}

    def _add(self, t: float) -> None:
        self.waits["link"] = self.waits.get("link", 0.0) + (time.perf_counter() - t) * 1e3

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self._TIMED:
            return attr

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                out = attr(*a, **k)
            finally:
                self._add(t)
            return _TimedHandle(out, self) if name == "execute" else out

        return timed


class _TimedHandle:
    def __init__(self, handle: Any, owner: TimedLink) -> None:
        self.inner, self.owner = handle, owner

    def wait(self, timeout_s: float) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.wait(timeout_s)
        finally:
            self.owner._add(t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

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
    _ready_pairs: dict[str, tuple[PreparedPair, int | None]]
    _pool: ThreadPoolExecutor | None
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
            self.link.waits[key] = self.link.waits.get(key, 0.0) + (time.perf_counter() - t) * 1e3

    def _step(self) -> None:
        self.link.waits = waits = {}
        t0, c0 = time.perf_counter(), time.thread_time()
        pos = self.store.meta.get("conveyor") or {}
        if pos.get("unknown"):
            pos = self._resolve_positions()
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
        if sprayed:  # one pair through the spray station: book its cycle
            total = (time.perf_counter() - t0) * 1e3
            self.perf["cycle_ms"].append(total)
            self.perf["overhead_ms"].append(total - waits.get("link", 0.0) - waits.get("prepare", 0.0)
                                            - waits.get("inspect", 0.0))
            self.perf.setdefault("inspect_ms", []).append(waits.get("inspect", 0.0))
            self.perf["link_ms"].append(waits.get("link", 0.0))
            self.perf["prepare_wait_ms"].append(waits.get("prepare", 0.0))
            self.perf["thread_cpu_ms"].append((time.thread_time() - c0) * 1e3)

    def _resolve_positions(self) -> dict[str, Any]:
        """After a restart that interrupted a conveyor step: read the positions from the line; a pair at the scan
        station whose id was read while the controller was down is identified now."""
        from .recovery import resolve_positions

        pos, reworked = resolve_positions(self.store, self.link.inner)
        for item_id in reworked:
            self._event("restart", f"{item_id}: position unknown after the restart: to rework", item_id=item_id)
        self._event("restart", f"positions read from the line: {pos}")
        if pos.get("at_scan"):
            self._admit(pos["at_scan"])
        return pos

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
        if item["state"] == "ordered":  # reached the spray station unscanned (its id was read while we were down)
            self._route_fail(item, "not_scanned", "reached the spray station without being scanned (restart)")
            return False
        if item["state"] == "arrived":
            self._await_prepared(item_id)
            item = self.store.items.get(item_id)
        if item["state"] in ("planned", "spraying"):
            if not seated:
                self._fault(Event.FAULT, StopReason.SAFETY, f"{item_id} is not seated on its fixtures: not sprayed")
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
                    self._robot_fault(f"{item_id}: {out.reason}")
                return False
            item = self.store.items.get(item_id)
        if item["state"] == "sprayed":
            pp = self._ready_pairs.pop(item_id, None)
            if pp is not None:
                plan_data = pp[0].plan or {}
            else:  # after a restart: from the stored plan
                plan = self.store.plans.latest(item_id)
                plan_data = plan["data"] if plan else {}
            insp = flow.inspect(plan_data.get("metrics"), True, self.cfg.min_coverage,
                                qa=lambda: self._qa(item, plan_data))  # fmt: skip
            routed = flow.route_item(self.store, item, insp)
            self.tags.count(defective=routed["state"] != "passed")
            self._save_tags()
            return True
        return False

    def _qa(self, item: dict[str, Any], plan_data: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The QA station's inspection of the sprayed pair (None and why: the stand-in judges)."""
        from .inspection import qa_inspection

        if not self.cfg.qa_model:
            return None, "the QA station is switched off ([control] qa_model = '')"
        root = self._camera_root or getattr(self.link, "camera_root", None)
        out = self.cfg.inspect_pictures or getattr(self.pipeline, "out", None)
        upper = flow.attempt_goals(self.store, item).get("upper")
        with self._waiting("inspect"):
            return qa_inspection(item, plan_data, root, Path(out) if out is not None else None,
                                 upper_goal=upper["goal_id"] if upper and upper["status"] == "succeeded" else None,
                                 timeout_s=self.cfg.inspect_timeout_s, model=self.cfg.qa_model,
                                 registry=self.cfg.qa_registry or None)  # fmt: skip

    def _robot_fault(self, reason: str) -> None:
        """A goal failed: abort on an e-stop (whichever of the result and the status event comes first), else hold."""
        estop = False
        with contextlib.suppress(GlueCellError):
            estop = bool(self.link.inner.state(timeout_s=0.2).e_stopped)
        if estop:
            self._fault(Event.ESTOP, StopReason.ESTOP, f"e-stop: {reason}")
        else:
            self._fault(Event.FAULT, StopReason.ROBOT_ERROR, reason)

    def _spray(self, item: dict[str, Any]) -> Any:
        def keep_going() -> bool:
            return self.machine.state == State.EXECUTE

        def must_cancel() -> bool:
            return self.machine.state in (State.ABORTING, State.ABORTED)

        cached = self._ready_pairs.get(item["id"])
        programs = (cached[1], cached[0].programs) if cached else flow.stored_programs(self.store, item["id"])
        return flow.spray_item(self.store, self.link, item, programs, keep_going=keep_going,
                               must_cancel=must_cancel, goal_timeout_s=self._goal_timeout)  # fmt: skip

    # ---- the scan station ---------------------------------------------------------------------------------------
    def _index(self) -> None:
        pos = self.store.meta.get("conveyor") or {}
        self.store.meta.set("conveyor", {**pos, "moving": True})
        try:
            st = self.link.index_conveyor(timeout_s=self.cfg.conveyor_timeout_s)
        except GlueCellError:  # did it move? the next step reads the positions from the line
            self.store.meta.set("conveyor", {**pos, "moving": False, "unknown": True})
            raise
        self.store.meta.set("conveyor", {"at_scan": st.at_scan, "at_spray": st.at_spray, "seated": st.seated,
                                         "moving": False})  # fmt: skip
        if st.at_scan:
            self._identify(st.at_scan)
        elif not st.at_spray:
            if self._job_done({}):
                self.machine.fire(Event.SC, "every ordered pair is routed")
            else:
                self.machine.fire(Event.STARVED, "no pair at the infeed")

    def _identify(self, at_scan: str) -> None:
        """Read the infeed id; an id nobody ordered (or already done) is refused: the pair passes unsprayed."""
        for _ in range(5):  # an id left in the reader's queue from before is skipped (and logged)
            try:
                read = self.link.wait_item(timeout_s=self.cfg.item_timeout_s)
            except GlueCellError as exc:
                self._event("refused", f"no id read at the infeed for {at_scan!r:.80}: {exc.message}")
                return
            if read == at_scan:
                self._admit(read)
                return
            self._event("refused", f"infeed read {read!r:.80} but the conveyor reports {at_scan!r:.80}")

    def _admit(self, item_id: str) -> None:
        """An id at the scan station: an ordered pair is taken in and its plan started; others are refused."""
        try:
            item = self.store.items.get(item_id)
        except UnknownItemError:
            self._event("refused", f"work item {item_id!r:.80} was not ordered: passes unsprayed")
            return
        if item["state"] == "arrived":  # a restart: its plan is made again
            self._start_prepare(item)
            return
        if item["state"] != "ordered":
            self._event("refused", f"work item {item_id} arrived again but is {item['state']}", item_id=item_id)
            return
        item = self.store.items.transition(item_id, "arrived", expect=("ordered",), seq=self.store.items.next_seq(),
                                           attempts=item["attempts"] + 1)  # fmt: skip
        self._start_prepare(item)

    def _start_prepare(self, item: dict[str, Any]) -> Future:
        fut: Future = Future()
        root = self._camera_root or getattr(self.link, "camera_root", None)

        def run() -> None:
            try:
                pp = self._prepare(item, root)
                fut.set_result((pp, flow.store_plan(self.store, pp)))
            except BaseException as exc:  # delivered to the waiting controller thread
                fut.set_exception(exc)

        self._prepared[item["id"]] = fut
        if self._pool is None:  # threads, not processes: the stages release the GIL in numpy/open3d
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gluecell-prepare")
        self._pool.submit(run)  # a stuck stage keeps one worker; the timeout hands its pair to a human
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
            plan_id = None
            try:
                pp, plan_id = fut.result(timeout=self.cfg.prepare_timeout_s)
            except TimeoutError:
                pp = PreparedPair(item_id, "needs_human", "timeout:pipeline",
                                  f"scan/predict/plan took longer than {self.cfg.prepare_timeout_s:.0f} s")  # fmt: skip
            except Exception as exc:  # a bug in a stage: the pair goes to a human, the cell holds
                pp = PreparedPair(item_id, "needs_human", "pipeline", f"{type(exc).__name__}: {exc}")
                self._fault(Event.FAULT, StopReason.SAFETY, f"{item_id}: pipeline error {type(exc).__name__}: {exc}")
        self._prepared.pop(item_id, None)
        try:
            routed = flow.record_prepared(self.store, pp, plan_id)
            if routed["state"] == "planned":
                self._ready_pairs[item_id] = (pp, plan_id)
        except StoreError as exc:  # e.g. skipped by a human meanwhile
            self._event("refused", f"plan of {item_id} not recorded: {exc.message}", item_id=item_id)
            return
        if routed["state"] == "rework":
            self.tags.count(defective=True)

