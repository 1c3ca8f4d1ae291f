"""The robot link over rosbridge v2 (``roslibpy``): the only module of gluecell that imports ``roslibpy``.

Contract and flow: :mod:`gluecell.cell.robot.base`. roslibpy's twisted transport runs in its own reactor
thread (one per process; it cannot be restarted, so this module never calls ``terminate``). Callbacks from
that thread only store values and queue events; listeners run on this link's dispatcher thread, and a
watchdog thread turns a silent ``/joint_states`` or a closed socket into LINK_LOST within
``heartbeat_timeout_s`` (+ 50 ms) of the process's own running time: a tick that woke late (the process held the
interpreter, starving the transport thread too, which must get its turn to read what arrived) adds at most 100 ms
to the silence. Reconnection is roslibpy's (twisted's ``ReconnectingClientFactory``:
exponential backoff from ``reconnect_initial_s`` to ``reconnect_max_s``, topics re-subscribed); a goal in
flight when the link drops loses its result channel, so the watchdog reconciles it through ``goal_status``
once the link is back.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gluecell.core.types import RobotProgram

from .base import (
    ConveyorState,
    ExecutionHandle,
    ExecutionResult,
    GoalReport,
    GoalStatus,
    GunSchedule,
    LinkEvent,
    LinkEventKind,
    RobotState,
)
from .config import RobotLinkConfig
from .errors import GoalRejectedError, LinkDownError, RobotBusyError, RobotLinkError, RobotTimeoutError
from .wire import gun_schedule_request, seconds, trajectory_msg

__all__ = ["RosbridgeLink"]

LOG = logging.getLogger(__name__)
_WATCH_S = 0.05
#: the most one watchdog tick adds to the link's silence (a tick woke this late: the process was starved, not
#: necessarily the link)
_LATE_S = 0.1
#: how long ``connect`` waits for the latched conveyor state (a line without one goes on after this)
CONVEYOR_WAIT_S = 1.0


def _tri(msg: dict[str, Any], key: str, unknown: bool) -> bool:
    v = msg.get(key)
    v = v.get("val", -1) if isinstance(v, dict) else -1
    return unknown if v not in (0, 1) or isinstance(v, bool) else bool(v)


def _valid_js(msg: Any) -> bool:
    """A usable ``sensor_msgs/JointState``: names, and finite numeric positions (and velocities) for each."""
    import math

    if not isinstance(msg, dict):
        return False
    names, pos, vel = msg.get("name"), msg.get("position"), msg.get("velocity") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return False
    for arr, need in ((pos, True), (vel, False)):
        if not isinstance(arr, list) or ((need or arr) and len(arr) != len(names)):
            return False
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in arr):
            return False
    return True


class RosbridgeLink:
    """:class:`~gluecell.cell.robot.base.RobotLink` over rosbridge (a real UR driver or ``gluecell sim``)."""

    def __init__(self, cfg: RobotLinkConfig | None = None) -> None:
        self.cfg = cfg or RobotLinkConfig()
        self._ros: Any = None
        self._lock = threading.Lock()
        self._js: dict[str, Any] | None = None
        self._js_t = 0.0
        self._status: dict[str, Any] = {}
        self._gun: bool | None = None
        self._conveyor = ConveyorState(None, None, False)
        self._conveyor_seen = False
        self._camera_root: str | None = None
        self._items: queue.Queue[str] = queue.Queue(maxsize=1000)
        self._events: queue.Queue[LinkEvent | None] = queue.Queue()
        self._listeners: list[Callable[[LinkEvent], None]] = []
        self._up = False
        self._active: ExecutionHandle | None = None
        self._orphans: dict[str, ExecutionHandle] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        """Transport open and ``/joint_states`` fresh."""
        return self._up

    @property
    def camera_root(self) -> str | None:
        """The simulated cameras' folder (from the sim's latched topic), None on a real line."""
        return self._camera_root or None

    def connect(self, timeout_s: float | None = None) -> None:
        """Connect (retrying with backoff) and wait for the first ``/joint_states``."""
        import roslibpy
        from roslibpy.comm import select_factory

        if self._ros is not None:
            return  # already connected or reconnecting by itself; disconnect() first to start anew
        timeout = self.cfg.connect_timeout_s if timeout_s is None else timeout_s
        factory_cls = select_factory(None)
        factory_cls.set_initial_delay(self.cfg.reconnect_initial_s)
        factory_cls.set_max_delay(self.cfg.reconnect_max_s)
        deadline = time.monotonic() + timeout
        self._ros = roslibpy.Ros(self.cfg.host, self.cfg.port)
        try:
            self._ros.run(timeout)
        except Exception as exc:
            self._abandon()
            raise RobotTimeoutError(f"no rosbridge at {self.cfg.host}:{self.cfg.port} within {timeout:.1f} s",
                                    stage="robot") from exc  # fmt: skip
        self._subscribe(roslibpy)
        self._stop.clear()
        for target, name in ((self._watch, "robot-link-watchdog"), (self._dispatch, "robot-link-events")):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self._threads.append(th)
        while not (self._up and self._status):  # the first joint state and robot status
            if time.monotonic() > deadline:
                self.disconnect()
                raise RobotTimeoutError(f"connected to {self.cfg.host}:{self.cfg.port} but no "
                                        f"{self.cfg.joint_states_topic} and {self.cfg.robot_status_topic} "
                                        f"within {timeout:.1f} s", stage="robot")  # fmt: skip
            time.sleep(0.01)
        conveyor_deadline = min(deadline, time.monotonic() + CONVEYOR_WAIT_S)
        while not self._conveyor_seen and time.monotonic() < conveyor_deadline:  # latched: arrives on subscribe
            time.sleep(0.01)

    def _abandon(self) -> None:
        ros, self._ros = self._ros, None
        if ros is not None:
            stop = getattr(ros.factory, "stopTrying", None)  # twisted transport: no reconnect after this
            if stop is not None:
                ros.call_later(0, stop)
            try:
                ros.close(timeout=1)
            except Exception:  # already closed
                pass

    def disconnect(self) -> None:
        """Close the connection and the link's threads (safe to call twice). Running goals keep running."""
        self._stop.set()
        self._events.put(None)
        for th in self._threads:
            th.join(2.0)
        self._threads.clear()
        self._abandon()
        self._up = False

    def __enter__(self) -> RosbridgeLink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def _subscribe(self, roslibpy: Any) -> None:
        c = self.cfg
        for name, type_, cb in (
            (c.joint_states_topic, "sensor_msgs/msg/JointState", self._on_js),
            (c.robot_status_topic, "industrial_msgs/msg/RobotStatus", self._on_status),
            ("/io_and_status_controller/io_states", "ur_msgs/msg/IOStates", self._on_io),
            (c.infeed_topic, "std_msgs/msg/String", self._on_item),
            (c.conveyor_state_topic, "std_msgs/msg/String", self._on_conveyor),
            (c.camera_root_topic, "std_msgs/msg/String", self._on_camera_root),
        ):
            roslibpy.Topic(self._ros, name, type_).subscribe(cb)

    # --- incoming (transport thread: store and queue only) ------------------------------------------------
    def _on_js(self, msg: dict[str, Any]) -> None:
        if not _valid_js(msg):  # refused, and it does not count as a heartbeat
            LOG.warning("joint_states refused: malformed message %s", str(msg)[:120])
            return
        with self._lock:
            self._js, self._js_t = msg, time.monotonic()

    def _on_status(self, msg: dict[str, Any]) -> None:
        if not isinstance(msg, dict):
            LOG.warning("robot_status refused: not an object")
            return
        with self._lock:
            old, self._status = self._status, msg
        for key, on, off in (("e_stopped", LinkEventKind.ESTOP, LinkEventKind.ESTOP_RELEASED),
                             ("in_error", LinkEventKind.ROBOT_ERROR, LinkEventKind.ROBOT_ERROR_CLEARED)):  # fmt: skip
            was, now = _tri(old, key, False), _tri(msg, key, True)
            if now != was:
                self._emit(on if now else off, f"robot_status.{key} = {now} (error code {msg.get('error_code', 0)})")

    def _on_io(self, msg: dict[str, Any]) -> None:
        for d in msg.get("digital_out_states") or []:
            if isinstance(d, dict) and d.get("pin") == self.cfg.gun_pin:
                self._gun = bool(d.get("state"))

    def _on_item(self, msg: dict[str, Any]) -> None:
        item = msg.get("data")
        if not isinstance(item, str) or not 0 < len(item) <= 128 or not item.isprintable():
            LOG.warning("infeed: refused a malformed work-item id %r", str(item)[:40])
            return
        try:
            self._items.put_nowait(item)
        except queue.Full:
            LOG.error("infeed: queue full, id %s dropped", item)
        self._emit(LinkEventKind.ITEM, "infeed", item)

    def _on_conveyor(self, msg: dict[str, Any]) -> None:
        try:
            self._conveyor = _conveyor_state(msg.get("data", ""))
            self._conveyor_seen = True
        except RobotLinkError as exc:
            LOG.warning("conveyor state refused: %s", exc)

    def _on_camera_root(self, msg: dict[str, Any]) -> None:
        data = msg.get("data")
        self._camera_root = data if isinstance(data, str) and len(data) < 4096 else None

    def _emit(self, kind: LinkEventKind, detail: str = "", item_id: str | None = None) -> None:
        self._events.put(LinkEvent(kind, time.monotonic(), detail, item_id))

    # --- threads -----------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            ev = self._events.get()
            if ev is None:
                return
            for fn in list(self._listeners):
                try:
                    fn(ev)
                except Exception:  # a listener's bug must not stop the others
                    LOG.exception("link listener failed on %s", ev.kind)

    def _watch(self) -> None:
        last, seen, silent = time.monotonic(), self._js_t, 0.0
        while not self._stop.wait(_WATCH_S):
            ros, now = self._ros, time.monotonic()
            step, last = now - last, now
            # silence counts only while this process ran: a tick that woke late (the process held the interpreter,
            # e.g. a long C call) starved the transport thread too, which has not yet read what arrived meanwhile,
            # so one tick adds at most _LATE_S
            if self._js_t != seen:  # a joint state arrived since the last tick
                seen, silent = self._js_t, min(now - self._js_t, _LATE_S)
            else:
                silent += min(step, _LATE_S)
            fresh = seen > 0.0 and silent <= self.cfg.heartbeat_timeout_s
            up = bool(ros is not None and ros.is_connected and fresh)
            if up != self._up:
                self._up = up
                why = "heartbeat" if ros is not None and ros.is_connected else "socket closed"
                self._emit(LinkEventKind.LINK_RESTORED if up else LinkEventKind.LINK_LOST,
                           "" if up else f"{why}: no {self.cfg.joint_states_topic} for "
                           f"> {self.cfg.heartbeat_timeout_s:.2f} s")  # fmt: skip
                if not up and self._active is not None and not self._active.done():
                    self._orphans[self._active.goal_id] = self._active
            if up and self._orphans:
                self._reconcile()

    def _reconcile(self) -> None:
        """Finish handles whose result channel died with the link, from the robot side's goal status."""
        for gid, handle in list(self._orphans.items()):
            if handle.done():
                self._orphans.pop(gid, None)
                continue
            try:
                rep = self.goal_status(gid, timeout_s=0.4)
            except RobotLinkError:
                return
            if rep.status.terminal or rep.status == GoalStatus.UNKNOWN:
                status = rep.status if rep.status.terminal else GoalStatus.ABORTED
                handle._finish(ExecutionResult(gid, status, rep.error_code, "reconciled after a link loss"))
                self._orphans.pop(gid, None)
            else:
                handle.progress_s = rep.progress_s

    # --- calls -------------------------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[LinkEvent], None]) -> Callable[[], None]:
        """Register ``callback(event)``; returns its remover."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _require(self) -> None:
        if not self._up or self._ros is None:
            raise LinkDownError(f"robot link to {self.cfg.host}:{self.cfg.port} is down", stage="robot")

    def _call(self, name: str, type_: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        import roslibpy

        self._require()
        try:
            return dict(roslibpy.Service(self._ros, name, type_).call(roslibpy.ServiceRequest(args), timeout=timeout_s))
        except roslibpy.core.ServiceException as exc:
            raise GoalRejectedError(f"{name} refused: {exc}", stage="robot") from exc
        except roslibpy.core.RosTimeoutError as exc:
            raise RobotTimeoutError(f"{name}: no answer within {timeout_s:.1f} s", stage="robot") from exc

    def state(self, timeout_s: float = 1.0) -> RobotState:
        """The newest robot state (waits up to ``timeout_s`` for the first one)."""
        deadline = time.monotonic() + timeout_s
        while self._js is None:
            if time.monotonic() > deadline:
                raise RobotTimeoutError(f"no {self.cfg.joint_states_topic} within {timeout_s:.1f} s", stage="robot")
            time.sleep(0.01)
        with self._lock:
            js, t, st = self._js, self._js_t, self._status
        names = tuple(js.get("name") or ())
        order = [names.index(n) for n in self.cfg.joint_names] if set(self.cfg.joint_names) <= set(names) else None
        if order is None:
            raise RobotLinkError(f"joint_states names {names} are not the robot's {self.cfg.joint_names}")
        pos = np.asarray(js.get("position"), dtype=np.float64)[order]
        vel = np.asarray(js.get("velocity") or [0.0] * len(names), dtype=np.float64)[order]
        code = st.get("error_code", 0)
        code = code if isinstance(code, int) else -1
        return RobotState(t, self.cfg.joint_names, pos, vel, _tri(st, "e_stopped", True), _tri(st, "in_error", True),
                          _tri(st, "motion_possible", False), _tri(st, "in_motion", False),
                          _tri(st, "drives_powered", False), code, self._gun)  # fmt: skip

    def execute(self, program: RobotProgram, *, goal_id: str, gun: GunSchedule | None = None, approach: bool = True,
                timeout_s: float = 5.0) -> ExecutionHandle:  # fmt: skip
        """Arm the gun schedule and send the trajectory (see ``base``); returns once the robot side accepted it."""
        self._require()
        if not goal_id or len(goal_id) > 200 or not goal_id.isprintable():
            raise GoalRejectedError(f"goal id must be 1-200 printable characters, got {goal_id!r}", stage="robot")
        if self._active is not None and not self._active.done():
            raise RobotBusyError(f"goal {self._active.goal_id} is still running", stage="robot")
        if tuple(program.joint_names) != tuple(self.cfg.joint_names):
            raise GoalRejectedError(f"program joints {program.joint_names} are not the robot's", stage="robot")
        sched = gun if gun is not None else GunSchedule.from_program(program, self.cfg.gun_pin)
        if sched.events and (sched.events[0][0] < program.t[0] or sched.events[-1][0] > program.t[-1] + 1e-9):
            raise GoalRejectedError("gun events lie outside the program's time", stage="robot")
        t = program.t - program.t[0]
        if approach:
            q_now = self.state().q
            vmax = np.asarray(self.cfg.max_speed_rad_s) * self.cfg.approach_speed_fraction
            lead = max(float(np.max(np.abs(program.q[0] - q_now) / vmax)), 0.05)
            t, sched = t + lead, sched.shifted(lead - float(program.t[0]))
        else:
            sched = sched.shifted(-float(program.t[0]))
        traj = trajectory_msg(self.cfg.joint_names, t, program.q, program.qd)
        arm = self._call(self.cfg.gun_schedule_service, "gluecell_msgs/srv/ArmGunSchedule",
                         gun_schedule_request(goal_id, sched.events, sched.pin, traj), timeout_s)  # fmt: skip
        if not arm.get("success", False):
            raise GoalRejectedError(f"gun schedule refused: {arm.get('message', '')}", stage="robot")
        handle = ExecutionHandle(goal_id, float(t[-1]))
        handle._cancel = lambda: self._ros.send_on_ready(
            {"op": "cancel_action_goal", "id": goal_id, "action": self.cfg.trajectory_action})
        refused = threading.Event()
        self._send_goal(handle, traj, refused)
        self._active = handle
        self.goal_status(goal_id, timeout_s)  # answered after the goal: a refusal has arrived by then
        if handle.done() and handle._result is not None and refused.is_set():
            res = handle._result
            raise GoalRejectedError(f"goal {goal_id} refused: {res.error_string}", stage="robot",
                                    error_code=res.error_code)  # fmt: skip
        return handle

    def _send_goal(self, handle: ExecutionHandle, traj: dict[str, Any], refused_flag: threading.Event) -> None:
        t0 = time.monotonic()

        def done(res: Any, refused: bool) -> None:
            if refused:
                refused_flag.set()
            values = res.get("values", {})
            values = dict(values) if hasattr(values, "get") else {"error_string": str(values)}
            raw = res.get("status", 6)
            try:
                status = GoalStatus(int(getattr(raw, "value", raw)))
            except (TypeError, ValueError):
                status = GoalStatus.ABORTED
            code = int(values.get("error_code", -1 if refused else 0))
            handle._finish(ExecutionResult(handle.goal_id, GoalStatus.ABORTED if refused else status, code,
                                           str(values.get("error_string", "")), time.monotonic() - t0))  # fmt: skip

        def feedback(fb: Any) -> None:
            handle.progress_s = seconds((fb.get("actual") or {}).get("time_from_start"))

        msg = {"op": "send_action_goal", "id": handle.goal_id, "action": self.cfg.trajectory_action,
               "action_type": self.cfg.trajectory_action_type, "args": {"trajectory": traj},
               "feedback": True}  # fmt: skip
        self._ros.call_async_action(msg, lambda r: done(r, False), feedback, lambda r: done(r, True))

    def goal_status(self, goal_id: str, timeout_s: float = 2.0) -> GoalReport:
        """The robot side's record of ``goal_id``."""
        v = self._call(self.cfg.goal_status_service, "gluecell_msgs/srv/GoalStatus", {"goal_id": goal_id}, timeout_s)
        try:
            status = GoalStatus(int(v.get("status", 0)))
        except ValueError:
            status = GoalStatus.UNKNOWN
        return GoalReport(goal_id, status, float(v.get("progress_s", 0.0)), float(v.get("duration_s", 0.0)),
                          int(v.get("gun_switches", 0)), int(v.get("error_code", 0)))  # fmt: skip

    def set_gun(self, on: bool, timeout_s: float = 2.0) -> None:
        """Switch the gun output now (``ur_msgs/srv/SetIO``)."""
        v = self._call(self.cfg.set_io_service, "ur_msgs/srv/SetIO",
                       {"fun": 1, "pin": self.cfg.gun_pin, "state": 1.0 if on else 0.0}, timeout_s)  # fmt: skip
        if not v.get("success", False):
            raise GoalRejectedError(f"set_io refused switching the gun {'on' if on else 'off'}", stage="robot")

    def clear_robot_error(self, timeout_s: float = 5.0) -> None:
        """Unlock a protective stop."""
        v = self._call(self.cfg.unlock_service, "std_srvs/srv/Trigger", {}, timeout_s)
        if not v.get("success", False):
            raise GoalRejectedError(f"unlock refused: {v.get('message', '')}", stage="robot")

    def wait_item(self, timeout_s: float) -> str:
        """The next work-item id from the infeed reader."""
        try:
            return self._items.get(timeout=timeout_s)
        except queue.Empty:
            raise RobotTimeoutError(f"no work item at the infeed within {timeout_s:.1f} s", stage="identify") from None

    def index_conveyor(self, timeout_s: float = 10.0) -> ConveyorState:
        """Move the conveyor one step."""
        v = self._call(self.cfg.conveyor_service, "std_srvs/srv/Trigger", {}, timeout_s)
        if not v.get("success", False):
            raise GoalRejectedError(f"conveyor refused to index: {v.get('message', '')}", stage="conveyor")
        self._conveyor = _conveyor_state(v.get("message", ""))
        return self._conveyor

    @property
    def conveyor(self) -> ConveyorState:
        """The conveyor's last reported state."""
        return self._conveyor


def _conveyor_state(text: Any) -> ConveyorState:
    try:
        d = json.loads(text)
        ids = [d.get(k) for k in ("at_scan", "at_spray")]
        if not all(i is None or (isinstance(i, str) and 0 < len(i) <= 128) for i in ids):
            raise ValueError("bad ids")
        return ConveyorState(ids[0], ids[1], bool(d.get("seated", True)))
    except (ValueError, TypeError, AttributeError) as exc:
        raise RobotLinkError(f"malformed conveyor state {str(text)[:80]!r}: {exc}") from exc
