"""The simulated cell behind a rosbridge v2 server: robot, gun, conveyor, cameras, faults, the world's spray.

``SimCell`` runs on one asyncio loop: the protocol server (:mod:`.bridge`), the robot's controller tick
(:mod:`.robot`, advanced by the wall clock times ``speed``), the conveyor (:mod:`.line`) and the fault
injection (:mod:`.faults`). Its ROS names are the UR ROS 2 driver's (``RobotLinkConfig`` defaults) plus the
cell's own (infeed, conveyor, gun-schedule and goal-status companion) and the simulator's (``/gluecell_sim/``:
faults, spray outcome, gun log). It counts the sprays per pair and part so a test can prove "never twice",
and sprays what was really executed onto the pair's true meshes when asked (``/gluecell_sim/outcome``). When an
upper goal succeeds, the inspection station photographs the executed spray for the controller's QA step
(:mod:`.inspection`: views beside the cameras' folder, truth labels apart, for evaluation only).
``gluecell sim`` runs it in its own process; tests and the bench may run it on a thread
(:func:`gluecell.cell.sim.run.start_in_thread`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.cell.robot.config import RobotLinkConfig

from .bridge import GoalContext, RosbridgeServer
from .executed import nozzle_poses, station_of
from .faults import FaultSpec
from .line import Line
from .robot import ActiveGoal, GoalRefusal, RobotSim, RobotSimConfig, parse_goal

__all__ = ["SimCell", "SimCellConfig"]

LOG = logging.getLogger(__name__)
KEEP_GOALS = 5000  # goal records kept for goal_status; gun-on samples only for the last KEEP_SAMPLES
KEEP_SAMPLES = 64


@dataclass(frozen=True)
class SimCellConfig:
    """The simulated cell.

    Attributes:
        speed: simulated seconds per wall second (1 = real time).
        index_time_s: one conveyor step, simulated seconds.
        joint_states_hz / status_hz / feedback_hz: publishing rates, wall clock.
        seed: the arm's and the valve's noise.
    """

    speed: float = 1.0
    index_time_s: float = 1.5
    joint_states_hz: float = 50.0
    status_hz: float = 10.0
    feedback_hz: float = 20.0
    seed: int = 0
    robot: RobotSimConfig = field(default_factory=RobotSimConfig)


@dataclass
class ItemRecord:
    """What happened to one pair at the spray station."""

    sprays: dict[str, int] = field(default_factory=lambda: {"upper": 0, "sole": 0})
    goals: list[str] = field(default_factory=list)
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    flow_factor: float = 1.0


class SimCell:
    """The cell; ``await start()``, ``await stop()``.

    Args:
        ids: the pairs the conveyor brings, in order (with ``world``: its sample ids).
        world: dataset folder (cameras and the spray outcome), or None.
        camera_root: folder for the cameras' frames (default ``<world>/../cameras`` with a world).
        faults: faults from configuration.
    """

    def __init__(
        self, cfg: SimCellConfig | None = None, *, ids: list[str] | None = None, world: Path | None = None,
        camera_root: Path | None = None, faults: list[FaultSpec] | None = None, port: int = 0,
    ) -> None:  # fmt: skip
        self.cfg = cfg or SimCellConfig()
        if not 0 < self.cfg.speed <= 1000:
            raise ValueError("speed must be in (0, 1000]")
        self.names = RobotLinkConfig()
        self.server = RosbridgeServer(port=port)
        self.robot = RobotSim(self.cfg.robot, seed=self.cfg.seed)
        if world is not None and camera_root is None:
            camera_root = Path(world).parent / "cameras"
        self.line = Line(list(ids or []), Path(world) if world else None, Path(camera_root) if camera_root else None)
        self.faults: list[FaultSpec] = list(faults or [])
        self.fired: list[tuple[float, FaultSpec]] = []
        self.armed: dict[str, tuple[list[tuple[float, bool]], int, str]] = {}
        self.goals: OrderedDict[str, ActiveGoal] = OrderedDict()
        self.parts: dict[str, str] = {}
        self.ctx: dict[str, GoalContext] = {}
        self.items: dict[str, ItemRecord] = {}
        self.flow_factor = 1.0
        self.pending_offset: float | None = None
        self.camera_block: set[str] = set()
        self.sim_time = 0.0
        self._tasks: list[asyncio.Task] = []
        self._indexing = False
        self._goal_wall_t0 = 0.0
        self._capture_pool: Any = None

    @property
    def port(self) -> int:
        """The rosbridge port."""
        return self.server.port

    async def start(self) -> None:
        """Bind the server, register the names, start the controller loop."""
        from .services import register

        nozzle_poses(self.robot.q[None])  # imports kinematics (scipy) now, not on the first goal's tick
        self.line.clear_frames()
        await self.server.start()
        register(self)
        self.server.add_action(self.names.trajectory_action, self.names.trajectory_action_type, self._on_goal,
                               self._on_cancel)  # fmt: skip
        self._publish_latched()
        self._tasks.append(asyncio.get_running_loop().create_task(self._loop()))

    async def stop(self) -> None:
        """Stop the loop and the server."""
        for t in self._tasks:
            t.cancel()
        await self.server.stop()
        if self._capture_pool is not None:  # a capture still rendering is ended, not left to hog a core
            pool, self._capture_pool = self._capture_pool, None
            procs = list((getattr(pool, "_processes", None) or {}).values())  # no public terminate before 3.14
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()

    def _publish_latched(self) -> None:
        s = self.server
        for topic in (self.names.conveyor_state_topic, self.names.camera_root_topic, "/gluecell_sim/manifest",
                      self.names.infeed_topic):  # fmt: skip
            s.advertise(topic, "std_msgs/msg/String")
        s.publish(self.names.conveyor_state_topic, {"data": json.dumps(self.line.state())}, latch=True)
        root = str(self.line.camera_root.resolve()) if self.line.camera_root else ""
        s.publish(self.names.camera_root_topic, {"data": root}, latch=True)
        s.publish("/gluecell_sim/manifest", {"data": json.dumps(self.line.manifest())}, latch=True)
        s.advertise(self.names.joint_states_topic, "sensor_msgs/msg/JointState")
        s.advertise(self.names.robot_status_topic, "industrial_msgs/msg/RobotStatus")
        s.advertise("/io_and_status_controller/io_states", "ur_msgs/msg/IOStates")

    # --- goals ---------------------------------------------------------------------------------------------
    def _on_goal(self, ctx: GoalContext) -> None:
        try:
            if not self.robot.motion_possible:
                why = "e-stop pressed" if self.robot.e_stopped else "protective stop (robot error)"
                raise GoalRefusal(-1, f"robot not ready: {why}")
            if self._indexing:
                raise GoalRefusal(-1, "interlock: the conveyor is moving")
            traj = parse_goal(ctx.args, self.robot.q, self.cfg.robot, time.time())
            events, pin, digest = self.armed.pop(ctx.goal_id, ([], self.names.gun_pin, traj.digest))
            if digest != traj.digest:
                raise GoalRefusal(-1, "the gun schedule armed for this goal id belongs to another trajectory")
            if events and (events[0][0] < 0 or events[-1][0] > traj.duration + 1e-9):
                raise GoalRefusal(-1, "gun events lie outside the trajectory's time")
        except GoalRefusal as exc:
            self.server.refusals["goal"] = self.server.refusals.get("goal", 0) + 1
            LOG.warning("goal %s refused (%d): %s", ctx.goal_id, exc.code, exc.reason)
            ctx.result({"error_code": exc.code, "error_string": exc.reason}, 6, ok=False)
            return
        goal = ActiveGoal(ctx.goal_id, traj, events, pin, item_id=self.line.at_spray)
        mid = nozzle_poses(traj.at(np.array([traj.duration / 2])))[:, :3, 3]
        self.parts[ctx.goal_id] = station_of(mid)
        self.goals[ctx.goal_id] = goal
        self.ctx[ctx.goal_id] = ctx
        self._trim()
        self._goal_wall_t0 = time.monotonic()  # its clock starts now, not at the loop's last tick
        old = self.robot.start(goal)
        if old is not None:
            self._finish(old)

    def _on_cancel(self, goal_id: str) -> None:
        goal = self.robot.goal
        if goal is not None and goal.goal_id == goal_id:
            self.robot.cancel()
            self._finish(goal)

    def _finish(self, goal: ActiveGoal) -> None:
        """Send the result and count the spray."""
        if goal.item_id is not None and any(on and np.isfinite(p) for p, _, on in goal.switches):
            rec = self.items.setdefault(goal.item_id, ItemRecord())
            rec.sprays[self.parts[goal.goal_id]] += 1
            rec.goals.append(goal.goal_id)
            rec.flow_factor = min(rec.flow_factor, self.flow_factor)
            if self.parts[goal.goal_id] == "upper" and goal.status == 4:  # SUCCEEDED: the station photographs it
                self._capture_inspection(goal.item_id, rec)
        ctx = self.ctx.pop(goal.goal_id, None)
        if ctx is not None:
            ctx.result({"error_code": goal.error_code, "error_string": goal.error_string}, goal.status, ok=True)

    def _capture_inspection(self, item_id: str, rec: ItemRecord) -> None:
        """Photograph the pair's executed upper spray at the inspection station (worker thread; needs a world)."""
        if self.line.world is None or self.line.camera_root is None:
            return
        from types import SimpleNamespace

        from .inspection import capture_item

        ids = [g for g in rec.goals if self.parts.get(g) == "upper" and g in self.goals]
        goals = [SimpleNamespace(gun_on_tau=list(self.goals[g].gun_on_tau), gun_on_q=list(self.goals[g].gun_on_q),
                                 gun_after_tau=list(self.goals[g].gun_after_tau),
                                 gun_after_q=list(self.goals[g].gun_after_q)) for g in ids]  # fmt: skip

        if self._capture_pool is None:  # its own process: rendering must not starve this loop's 500 Hz tick
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._capture_pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_background_priority,
                                                     initargs=(os.getpid(),))  # fmt: skip
        fut = self._capture_pool.submit(capture_item, self.line.world, self.line.camera_root, item_id, ids, goals,
                                        self.cfg.robot.tick_s, rec.flow_factor, rec.offset_m)  # fmt: skip

        def done(f: Any) -> None:
            if f.exception() is not None:  # a failed capture is an inspection camera that delivers nothing
                LOG.error("inspection capture of %s failed: %s", item_id, f.exception())

        fut.add_done_callback(done)

    def _trim(self) -> None:
        while len(self.goals) > KEEP_GOALS:
            gid, _ = self.goals.popitem(last=False)
            self.parts.pop(gid, None)
        for g in list(self.goals.values())[:-KEEP_SAMPLES]:
            g.gun_on_tau, g.gun_on_q, g.gun_after_tau, g.gun_after_q = [], [], [], []

    # --- the controller loop -------------------------------------------------------------------------------
    async def _loop(self) -> None:
        last = time.monotonic()
        nxt = {"js": 0.0, "st": 0.0, "fb": 0.0}
        prev_status: tuple | None = None
        while True:
            await asyncio.sleep(0.004)
            now = time.monotonic()
            dt = (now - last) * self.cfg.speed
            dt_robot = (now - max(last, self._goal_wall_t0)) * self.cfg.speed
            last = now
            self.sim_time += dt
            try:
                trigger = self._next_trigger()
                goal = self.robot.goal
                if trigger is not None and goal is not None:  # a fault fires exactly at its fraction of the goal
                    dt_robot = min(dt_robot, max(trigger - goal.tau, 0.0) + self.cfg.robot.tick_s)
                done = self.robot.step(dt_robot)
                if done is not None:
                    self._finish(done)
                await self._check_faults()
                if now >= nxt["js"]:
                    nxt["js"] = now + 1.0 / self.cfg.joint_states_hz
                    self._publish_joint_states()
                status = (self.robot.e_stopped, self.robot.in_error, self.robot.goal is not None, self.robot.gun_on)
                if now >= nxt["st"] or status != prev_status:
                    nxt["st"], prev_status = now + 1.0 / self.cfg.status_hz, status
                    self._publish_status()
                if now >= nxt["fb"] and self.robot.goal is not None:
                    nxt["fb"] = now + 1.0 / self.cfg.feedback_hz
                    self._feedback(self.robot.goal)
            except Exception:  # the cell must keep running whatever one step did
                LOG.exception("controller loop step failed")

    def _stamp(self) -> dict[str, Any]:
        t = time.time()
        return {"stamp": {"sec": int(t), "nanosec": int((t % 1) * 1e9)}, "frame_id": ""}

    def _publish_joint_states(self) -> None:
        r = self.robot
        self.server.publish(self.names.joint_states_topic, {
            "header": self._stamp(), "name": list(self.cfg.robot.joint_names), "position": r.q.tolist(),
            "velocity": r.qd.tolist(), "effort": []})  # fmt: skip

    def _publish_status(self) -> None:
        r = self.robot

        def tri(b: bool) -> dict[str, int]:
            return {"val": 1 if b else 0}

        self.server.publish(self.names.robot_status_topic, {
            "header": self._stamp(), "mode": {"val": 2}, "e_stopped": tri(r.e_stopped),
            "drives_powered": tri(not r.e_stopped), "motion_possible": tri(r.motion_possible),
            "in_motion": tri(r.goal is not None), "in_error": tri(r.in_error),
            "error_code": int(r.error_code)})  # fmt: skip
        self.server.publish("/io_and_status_controller/io_states", {
            "digital_out_states": [{"pin": r.gun_pin, "state": bool(r.gun_on)}], "digital_in_states": [],
            "flag_states": [], "analog_in_states": [], "analog_out_states": []})  # fmt: skip

    def _feedback(self, goal: ActiveGoal) -> None:
        ctx = self.ctx.get(goal.goal_id)
        if ctx is None:
            return
        from gluecell.cell.robot.wire import duration

        desired = goal.traj.at(np.array([goal.tau]))[0]
        tfs = duration(goal.tau)
        ctx.feedback({"header": self._stamp(), "joint_names": list(self.cfg.robot.joint_names),
                      "desired": {"positions": desired.tolist(), "time_from_start": tfs},
                      "actual": {"positions": self.robot.q.tolist(), "time_from_start": tfs},
                      "error": {"positions": (desired - self.robot.q).tolist(), "time_from_start": tfs}})  # fmt: skip

    # --- faults --------------------------------------------------------------------------------------------
    async def inject(self, spec: FaultSpec) -> str:
        """Fire ``spec`` now if it waits for no pair, else keep it for its pair; returns what happened."""
        if spec.item is None and spec.kind in ("robot_error", "estop", "link_drop", "link_stall", "clogged_nozzle"):
            await self._fire(spec)
            return f"{spec.kind} now"
        if spec.item is None and spec.kind == "camera_timeout":
            spec = FaultSpec(spec.kind, self.line.ids[self.line.next_index] if self.line.next_index < len(
                self.line.ids) else "", "arrive", spec.at_fraction, spec.value)  # fmt: skip
        self.faults.append(spec)
        return f"{spec.kind} armed for item {spec.item!r} ({spec.during})"

    async def _fire(self, spec: FaultSpec) -> None:
        self.fired.append((self.sim_time, spec))
        LOG.warning("fault: %s", spec)
        if spec.kind in ("robot_error", "estop"):
            goal = self.robot.stop(1, f"{spec.kind.replace('_', ' ')} (injected)", estop=spec.kind == "estop")
            if goal is not None:
                self._finish(goal)
            self._publish_status()
        elif spec.kind == "link_drop":
            await self.server.drop_all(spec.value)
        elif spec.kind == "link_stall":
            self.server.stall(spec.value)
        elif spec.kind == "clogged_nozzle":
            self.flow_factor = spec.value
            if spec.item is not None and self.line.at_spray is not None:
                self.items.setdefault(self.line.at_spray, ItemRecord()).flow_factor = spec.value

    def _goal_faults(self) -> list[FaultSpec]:
        """Pending faults that wait for the running goal (its pair at the spray station, its part)."""
        goal, at = self.robot.goal, self.line.at_spray
        if goal is None or at is None:
            return []
        return [f for f in self.faults if f.during in ("upper", "sole", "any")
                and f.kind not in ("camera_timeout", "part_off_station") and f.item is not None
                and f.matches_item(at, self.line.arrivals.get(at))
                and (f.during == "any" or self.parts.get(goal.goal_id) == f.during)]  # fmt: skip

    def _next_trigger(self) -> float | None:
        goal = self.robot.goal
        times = [f.at_fraction * goal.traj.duration for f in self._goal_faults()] if goal is not None else []
        return min(times) if times else None

    async def _check_faults(self) -> None:
        goal = self.robot.goal
        for spec in self._goal_faults():
            if goal is not None and goal.tau >= spec.at_fraction * goal.traj.duration - 1e-9:
                self.faults.remove(spec)
                await self._fire(spec)

    def on_arrival(self, at_scan: str | None, at_spray: str | None) -> None:
        """Faults that wait for a pair reaching a station."""
        for spec in list(self.faults):
            idx_scan = self.line.arrivals.get(at_scan) if at_scan else None
            idx_spray = self.line.arrivals.get(at_spray) if at_spray else None
            if spec.kind == "camera_timeout" and at_scan and spec.matches_item(at_scan, idx_scan):
                self.camera_block.add(at_scan)
            elif spec.kind == "part_off_station" and at_spray and spec.matches_item(at_spray, idx_spray):
                self.line.seated = False
                self.items.setdefault(at_spray, ItemRecord()).offset_m = (spec.value, 0.0, 0.0)
            elif spec.during == "arrive" and at_spray and spec.item is not None and spec.matches_item(
                    at_spray, idx_spray):  # fmt: skip
                asyncio.get_running_loop().create_task(self._fire(spec))
            else:
                continue
            self.faults.remove(spec)


def _background_priority(parent: int) -> None:
    """The inspection capture's process yields the CPU to the arm's 500 Hz loop and the controller (on a loaded
    2-core machine a full-priority capture starved /joint_states past the controller's 0.5 s heartbeat), and
    exits once the simulator's process (``parent``) is gone (a killed simulator left it rendering its queue)."""
    from gluecell.core.lifetime import watch_parent

    watch_parent(parent, name="capture-parent-watch")
    try:
        os.nice(10)
    except (AttributeError, OSError):  # no nice() here, or not allowed: run at the caller's priority
        pass
