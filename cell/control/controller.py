"""The orchestrator: the PackML machine driving the flow of pairs through the robot link, state in the store.

    with Store(db) as store, RosbridgeLink(cfg) as link:
        ctl = Controller(store, link, RealPipeline(...))
        ctl.start()                      # recovers from the store, then runs the worker thread
        ctl.command(Command.RESET, who="ana", why="shift start"); ctl.command(Command.START, who="ana")
        ...
        ctl.close()

One worker thread does all the work: the acting states (Resetting, Starting, Holding, ...) and, in Execute
(unit mode Produce), the cycle: index the conveyor -> identify the pair at the scan station (infeed id, must be
ordered) -> start its scan/predict/plan in a background thread -> spray the pair at the spray station (pipelined:
the next pair is planned meanwhile) -> inspect -> route -> record. Commands (:meth:`command`, from any thread, or
as override requests in the store) change the state at once; the worker stops at the next safe boundary (after
the running goal; Abort and an e-stop cancel it). Link events: a lost link or a robot error hold the cell
(Held, with the reason), an e-stop aborts it. Every state change, refusal and fault is in the event log.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from gluecell.cell.store import Store
from gluecell.core.errors import GlueCellError

from . import flow
from .cycle import CycleMixin, TimedLink
from .packml import Command, CommandRefusedError, Event, PackMLMachine, State, Transition, UnitMode
from .packtags import PackTags, StopReason
from .pipeline import Pipeline
from .recovery import reconcile

__all__ = ["Controller", "ControllerConfig", "StopReason"]


@dataclass(frozen=True)
class ControllerConfig:
    """Timeouts (seconds) and policies of the controller (``[control]`` in ``cell.toml``).

    Attributes:
        poll_s: how often the worker looks at override requests and link state.
        prepare_timeout_s: scan + predict + plan of one pair (then it goes to a human).
        frames_timeout_s: the cameras' frames of a pair must appear within this (camera timeout).
        item_timeout_s: the infeed id must be read within this after an index.
        conveyor_timeout_s: one conveyor step.
        goal_timeout_factor / goal_timeout_margin_s: a goal may take factor x its trajectory + margin.
        ready_timeout_s: Resetting/Starting/Unholding wait this long for a ready robot.
        reconcile_wait_s: on restart, how long to let a goal the robot still runs finish.
        starved_retry_s: in Suspended (no pair at the infeed), how often to index again.
        min_coverage: the stand-in inspection's coverage threshold.
        inspect_timeout_s: the inspection views of a sprayed pair must appear within this, else the stand-in
            judges (and says so in ``inspections.source``).
        qa_model: the QA network (registry alias or name, or a model file; "" switches the QA station off).
        qa_registry: the QA model registry folder ("" = the default: ``$GLUECELL_QA_REGISTRY`` or the shipped one).
        inspect_pictures: folder for the inspection pictures and defect crops ("" = the pipeline's ``out``;
            none without either).
    """

    poll_s: float = 0.05
    prepare_timeout_s: float = 180.0
    frames_timeout_s: float = 15.0
    item_timeout_s: float = 5.0
    conveyor_timeout_s: float = 10.0
    goal_timeout_factor: float = 1.5
    goal_timeout_margin_s: float = 10.0
    ready_timeout_s: float = 5.0
    reconcile_wait_s: float = 120.0
    starved_retry_s: float = 0.5
    min_coverage: float = 0.98
    inspect_timeout_s: float = 60.0
    qa_model: str = "champion"
    qa_registry: str = ""
    inspect_pictures: str = ""


class Controller(CycleMixin):
    """The cell's controller (see the module docstring).

    Args:
        store: the cell database (its state is the controller's state).
        link: a :class:`~gluecell.cell.robot.base.RobotLink` (connected by the caller).
        pipeline: the stages (:mod:`.pipeline`).
        cfg: timeouts and policies.
        camera_root: folder of the simulated cameras' frames (default: the link's ``camera_root``).
    """

    def __init__(self, store: Store, link: Any, pipeline: Pipeline, cfg: ControllerConfig | None = None,
                 camera_root: str | None = None) -> None:  # fmt: skip
        self.store, self.pipeline = store, pipeline
        self.link = TimedLink(link)
        self.cfg = cfg or ControllerConfig()
        self._camera_root = camera_root
        self.machine = PackMLMachine(State.STOPPED)
        self.tags = PackTags()
        self.tags.restore(store.packtags.load())
        self.machine.listen(self._on_transition)
        self._prepared: dict[str, Future] = {}
        self._ready_pairs: dict[str, tuple[Any, int | None]] = {}  # item -> (PreparedPair, plan id), planned
        self._pool: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisten = link.add_listener(self._on_link_event)
        #: per pair through the spray station: cycle wall time, the controller's own share (cycle minus link
        #: calls, goal waits and waiting for the plan), link time, plan wait, and the thread's CPU time (ms)
        self.perf: dict[str, list[float]] = {"cycle_ms": [], "overhead_ms": [], "link_ms": [],
                                             "prepare_wait_ms": [], "thread_cpu_ms": []}  # fmt: skip
        self.last_error: str = ""

    # ---- public ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """``StateCurrent``."""
        return self.machine.state

    def command(self, cmd: Command | str | int, who: str = "operator", why: str = "") -> Transition:
        """Apply a PackML command now (any thread). Refused commands are logged and raise
        :class:`~gluecell.cell.control.packml.CommandRefusedError`; nothing else changes."""
        try:
            c = Command[cmd.upper()] if isinstance(cmd, str) else Command(cmd)
        except (KeyError, ValueError) as exc:
            self._event("refused", f"unknown command {cmd!r:.40} from {who}", who=who)
            raise CommandRefusedError(f"unknown command {cmd!r:.40}; one of {[c.name for c in Command]}") from exc
        try:
            self._precheck(c)
            return self.machine.fire(c, reason=f"{who}: {why}".strip(": "))
        except CommandRefusedError as exc:
            self._event("refused", f"{c.name.title()} refused: {exc.message}", who=who, why=why)
            raise

    def set_mode(self, mode: UnitMode | str, who: str = "operator", why: str = "") -> None:
        """Change the unit mode (only in Stopped, Idle or Aborted)."""
        m = UnitMode[mode.upper()] if isinstance(mode, str) else UnitMode(mode)
        try:
            self.machine.set_mode(m, reason=why)
        except CommandRefusedError as exc:
            self._event("refused", f"mode {m.name.title()} refused: {exc.message}", who=who, why=why)
            raise
        self.tags.mode = m
        self._event("mode", f"unit mode {m.name.title()}", who=who, why=why)
        self._save_tags()

    def status(self) -> dict[str, Any]:
        """State, unit mode, PackTags, conveyor positions, item counts and the rework queue's length."""
        return {"state": int(self.state), "state_name": self.state.name.title(),
                "mode": self.machine.mode.name.title(), "packtags": self.tags.snapshot(),
                "conveyor": self.store.meta.get("conveyor") or {},
                "items": self.store.items.counts(), "pipeline": self.pipeline.name,
                "last_error": self.last_error}  # fmt: skip

    def start(self) -> None:
        """Recover from the store (see :mod:`.recovery`), then run the worker thread."""
        self.recover()
        self._stop.clear()
        self.store.meta.set("running", True)
        self._thread = threading.Thread(target=self._loop, name="gluecell-controller", daemon=True)
        self._thread.start()
        self.store.meta.set("heartbeat", time.time())
        threading.Thread(target=self._heartbeat, name="gluecell-heartbeat", daemon=True).start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the worker at its next safe boundary and mark the shutdown clean."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._unlisten()
        self._save_tags()
        self.store.meta.set("running", False)
        self.store.meta.set("state", int(self.state))

    def wait_for(self, states: set[State] | State, timeout_s: float) -> State:
        """Block until the machine is in one of ``states`` (returns it) or raise TimeoutError."""
        want = {states} if isinstance(states, State) else set(states)
        deadline = time.monotonic() + timeout_s
        while self.state not in want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"state {self.state.name.title()} after {timeout_s:.0f} s, wanted "
                                   f"{sorted(s.name.title() for s in want)} ({self.last_error})")  # fmt: skip
            time.sleep(0.01)
        return self.state

    def recover(self) -> None:
        """Restore the machine from the store; after an unclean stop reconcile goals and stop with the reason."""
        unclean = bool(self.store.meta.get("running", False))
        if not unclean and not self.store.sprays.unfinished():
            return
        note = "restarted after an unclean stop (controller killed or crashed)"
        try:
            rec = reconcile(self.store, self.link, wait_s=self.cfg.reconcile_wait_s)
            note += f"; reconciled: {rec.summary()}"
        except GlueCellError as exc:
            note += f"; goals NOT reconciled ({exc.message}): Reset reconciles them"
        self.tags.set_stop_reason(StopReason.RESTART, note)
        self.tags.alarm(StopReason.RESTART, note)
        self.machine.force(State.STOPPED, note)
        self._event("restart", note)

    # ---- machine and link events -----------------------------------------------------------------------------
    def _precheck(self, c: Command) -> None:
        if c in (Command.RESET, Command.CLEAR, Command.START, Command.UNHOLD):
            st = None
            with contextlib.suppress(GlueCellError):  # no robot state: the acting state's check decides
                st = self.link.state(timeout_s=0.5)
            if st is not None and st.e_stopped:
                raise CommandRefusedError(f"{c.name.title()}: the e-stop is pressed; release it first")

    def _on_transition(self, tr: Transition) -> None:
        self.tags.on_transition(tr)
        if tr.after == State.STOPPING and tr.trigger == "Stop":
            self.tags.set_stop_reason(StopReason.OPERATOR, tr.reason or "operator stop")
        self._event("state", f"{tr.before.name.title()} -> {tr.after.name.title()} ({tr.trigger})",
                    reason=tr.reason, before=int(tr.before), after=int(tr.after))  # fmt: skip
        self.store.meta.set("state", int(tr.after))
        self._save_tags()

    def _on_link_event(self, ev: Any) -> None:
        from gluecell.cell.robot.base import LinkEventKind as K

        self._event("link", f"{ev.kind.value}: {ev.detail}", item_id=ev.item_id)
        if ev.kind is K.ESTOP:
            self._fault(Event.ESTOP, StopReason.ESTOP, f"e-stop: {ev.detail}")
        elif ev.kind is K.ROBOT_ERROR and self.state in (State.RESETTING, State.STARTING, State.UNHOLDING):
            self._event("link", "robot error during an operator's Reset/Start/Unhold: its readiness check decides")
        elif ev.kind is K.ROBOT_ERROR and self._stale_robot_error(ev):
            self._event("link", "robot error already cleared (an operator's Reset/Unhold unlocked it): ignored")
        elif ev.kind in (K.LINK_LOST, K.ROBOT_ERROR):
            code = StopReason.LINK_LOST if ev.kind is K.LINK_LOST else StopReason.ROBOT_ERROR
            self._fault(Event.FAULT, code, f"{ev.kind.value}: {ev.detail}")

    def _stale_robot_error(self, ev: Any) -> bool:
        """A robot-error event delivered after a newer status says the error is gone (e.g. unlocked meanwhile)."""
        try:
            st = self.link.inner.state(timeout_s=0.2)
        except GlueCellError:
            return False
        return st.t > ev.t and not st.in_error

    def _fault(self, trigger: Event | Command, code: int, reason: str) -> None:
        """Hold (or abort) the cell with the reason; in a state that takes no fault, just record it."""
        self.last_error = reason
        self.tags.alarm(code, reason)
        if self.machine.accepts(trigger):
            self.tags.set_stop_reason(code, reason)
            self.machine.fire(trigger, reason)
        else:
            self._event("fault", f"{reason} (state {self.state.name.title()} unchanged)")

    def _event(self, kind: str, message: str, item_id: str | None = None, **data: Any) -> None:
        self.store.events.add(kind, message, item_id=item_id, data={k: v for k, v in data.items() if v})

    def _save_tags(self) -> None:
        self.store.packtags.save(self.tags.snapshot())

    # ---- the worker --------------------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """``meta.heartbeat`` (UNIX s) every second, so readers (API, console) see the controller is alive."""
        while not self._stop.wait(1.0):
            with contextlib.suppress(GlueCellError, sqlite3.Error):
                self.store.meta.set("heartbeat", time.time())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._apply_overrides()
                self._tick()
            except GlueCellError as exc:  # a failure the cycle did not map: hold and report, never continue
                self._fault(Event.FAULT, StopReason.SAFETY, f"{exc}")
                time.sleep(self.cfg.poll_s)
            except Exception as exc:  # a bug must not leave the cell running unattended
                self._fault(Event.FAULT, StopReason.SAFETY, f"controller error: {type(exc).__name__}: {exc}")
                time.sleep(self.cfg.poll_s)

    def _apply_overrides(self) -> None:
        from .overrides import apply_override

        for o in self.store.overrides.pending():
            try:
                result = apply_override(self, o)
            except GlueCellError as exc:
                result = f"refused: {exc.message}"
            self.store.overrides.resolve(o["id"], result)
            self._save_tags()
            self._event("override", f"{o['action']} by {o['who']} ({o['why']}): {result}", item_id=o["item_id"],
                        who=o["who"], override_id=o["id"])  # fmt: skip

    def _tick(self) -> None:
        s = self.state
        if s == State.EXECUTE and self.machine.mode == UnitMode.PRODUCE:
            self._step()
            return
        if s in (State.RESETTING, State.STARTING, State.UNHOLDING):
            ok, why = self._ready()
            if not ok:
                self._fault(Event.FAULT if s == State.UNHOLDING else Command.STOP, StopReason.NOT_READY, why)
                return
            if s == State.RESETTING:
                self.tags.clear_alarms()
        elif s == State.ABORTING:
            with contextlib.suppress(GlueCellError):
                self.link.set_gun(False, timeout_s=1.0)
        elif s == State.CLEARING:
            with contextlib.suppress(GlueCellError):
                if self.link.state(timeout_s=1.0).in_error:
                    self.link.clear_robot_error()
        elif s == State.SUSPENDED:
            self._starved()
            return
        elif s not in (State.HOLDING, State.STOPPING, State.SUSPENDING, State.UNSUSPENDING, State.COMPLETING):
            time.sleep(self.cfg.poll_s)
            return
        with contextlib.suppress(CommandRefusedError):  # a command may have moved the machine meanwhile
            if self.state == s:
                self.machine.fire(Event.SC, "state complete")

    def _starved(self) -> None:
        """Suspended: index the (empty) line now and then; unsuspend when a pair arrives or nothing is left."""
        time.sleep(self.cfg.starved_retry_s)
        if self.state != State.SUSPENDED:
            return
        if not self._job_done({}):
            st = self.link.index_conveyor(timeout_s=self.cfg.conveyor_timeout_s)
            if not (st.at_scan or st.at_spray):
                return
            self.store.meta.set("conveyor", {"at_scan": st.at_scan, "at_spray": st.at_spray, "seated": st.seated,
                                             "moving": False})  # fmt: skip
            if st.at_scan:
                self._identify(st.at_scan)
        with contextlib.suppress(CommandRefusedError):
            self.machine.fire(Event.UNSTARVED, "a pair arrived" if not self._job_done({}) else "nothing left")

    def _ready(self) -> tuple[bool, str]:
        """The robot is connected, not e-stopped, not in error, and no goal is unreconciled."""
        deadline = time.monotonic() + self.cfg.ready_timeout_s
        why = ""
        while time.monotonic() < deadline and self.state in (State.RESETTING, State.STARTING, State.UNHOLDING):
            try:
                st = self.link.state(timeout_s=1.0)
                if st.in_error and not st.e_stopped and self.state in (State.RESETTING, State.UNHOLDING):
                    self.link.clear_robot_error()  # the operator's Reset/Unhold acknowledges the protective stop
                    self._event("robot", "protective stop unlocked by the operator's command")
                    time.sleep(self.cfg.poll_s)
                    st = self.link.state(timeout_s=1.0)
                if st.e_stopped or st.in_error:
                    why = "the e-stop is pressed" if st.e_stopped else f"the robot is in error ({st.error_code})"
                elif self.store.sprays.unfinished():
                    rec = reconcile(self.store, self.link, wait_s=self.cfg.reconcile_wait_s)
                    self._event("reconcile", rec.summary())
                    if not rec.unsettled:
                        return True, ""
                    why = f"goals still running on the robot: {rec.unsettled}"
                else:
                    return True, ""
            except GlueCellError as exc:
                why = f"robot link: {exc.message}"
            time.sleep(self.cfg.poll_s)
        return False, f"not ready: {why or 'state changed'}"

    def _goal_timeout(self, duration_s: float) -> float:
        return duration_s * self.cfg.goal_timeout_factor + self.cfg.goal_timeout_margin_s

    def _route_fail(self, item: dict[str, Any], cause: str, reason: str) -> None:
        """Send a pair to the rework queue (not through inspection) and count it."""
        if self.store.items.get(item["id"])["state"] in flow.FINAL_STATES:
            return
        self.store.items.transition(item["id"], "rework", verdict="fail", cause=cause, reason=reason)
        self.tags.count(defective=True)
