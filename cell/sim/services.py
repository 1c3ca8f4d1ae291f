"""The simulated cell's services (registered on its rosbridge server by :meth:`SimCell.start`).

Robot side, as a real cell has them: ``ur_msgs/srv/SetIO`` (the gun, immediately), the dashboard's
unlock of a protective stop, the gun-schedule and goal-status companion, the conveyor's index. Simulator
only (``/gluecell_sim/``): fault injection, the spray outcome of a pair, the gun log of a goal, counters.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING, Any

from gluecell.core.errors import ConfigError

from .bridge import Refused
from .faults import parse_fault

if TYPE_CHECKING:
    from .cell import SimCell

__all__ = ["register"]

MAX_ARMED = 256
MAX_EVENTS = 20_000


def _str(args: dict[str, Any], key: str, max_len: int = 256) -> str:
    v = args.get(key)
    if not isinstance(v, str) or not 0 < len(v) <= max_len:
        raise Refused(f"'{key}' must be a string of 1-{max_len} characters")
    return v


def register(cell: SimCell) -> None:
    """Add every service of the cell to its server."""
    n, s = cell.names, cell.server

    async def set_io(args: dict[str, Any]) -> dict[str, Any]:
        fun, pin, state = args.get("fun"), args.get("pin"), args.get("state")
        if fun != 1 or not isinstance(pin, int) or not 0 <= pin <= 17 or state not in (0, 1, 0.0, 1.0, True, False):
            return {"success": False}
        if pin == n.gun_pin:
            on = bool(state)
            goal = cell.robot.goal
            if goal is not None and on != cell.robot.gun_on:
                goal.manual.append((goal.tau, on))
            cell.robot.gun_on = on
        return {"success": True}

    async def unlock(args: dict[str, Any]) -> dict[str, Any]:
        if cell.robot.e_stopped:
            return {"success": False, "message": "e-stop pressed: release it first"}
        cell.robot.in_error, cell.robot.error_code = False, 0
        return {"success": True, "message": "protective stop unlocked"}

    async def arm(args: dict[str, Any]) -> dict[str, Any]:
        goal_id, digest = _str(args, "goal_id"), _str(args, "trajectory_digest", 64)
        times, states, pin = args.get("times", []), args.get("states", []), args.get("pin", n.gun_pin)
        if not isinstance(times, list) or not isinstance(states, list) or len(times) != len(states) or len(
                times) > MAX_EVENTS:  # fmt: skip
            raise Refused(f"'times' and 'states' must be lists of equal length (at most {MAX_EVENTS})")
        if not all(isinstance(t, int | float) and math.isfinite(t) and t >= 0 for t in times) or times != sorted(times):
            raise Refused("'times' must be finite, >= 0 and sorted")
        if not isinstance(pin, int) or not 0 <= pin <= 17:
            raise Refused("'pin' must be 0-17")
        while len(cell.armed) >= MAX_ARMED:
            cell.armed.pop(next(iter(cell.armed)))
        cell.armed[goal_id] = ([(float(t), bool(x)) for t, x in zip(times, states)], pin, digest)
        return {"success": True, "message": f"{len(times)} events armed for {goal_id}"}

    async def goal_status(args: dict[str, Any]) -> dict[str, Any]:
        goal_id = _str(args, "goal_id")
        goal = cell.goals.get(goal_id)
        return goal.report() if goal is not None else {"goal_id": goal_id, "status": 0}

    async def index(args: dict[str, Any]) -> dict[str, Any]:
        if cell.robot.goal is not None:
            return {"success": False, "message": "interlock: the robot is moving"}
        if cell._indexing:
            return {"success": False, "message": "the conveyor is already moving"}
        cell._indexing = True
        try:
            await asyncio.sleep(cell.cfg.index_time_s / cell.cfg.speed)
            at_scan, at_spray = cell.line.index()
            cell.on_arrival(at_scan, at_spray)
            if at_scan is not None and at_scan not in cell.camera_block:
                await asyncio.get_running_loop().run_in_executor(None, cell.line.put_frames, at_scan)
            state = json.dumps(cell.line.state())
            s.publish(n.conveyor_state_topic, {"data": state}, latch=True)
            if at_scan is not None:
                s.publish(n.infeed_topic, {"data": at_scan})
            return {"success": True, "message": state}
        finally:
            cell._indexing = False

    async def fault(args: dict[str, Any]) -> dict[str, Any]:
        try:
            spec = parse_fault(args)
        except ConfigError as exc:
            raise Refused(exc.message) from exc
        if args.get("clear"):
            return {"success": True, "message": _clear(cell, spec.kind)}
        return {"success": True, "message": await cell.inject(spec)}

    async def outcome(args: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, _outcome, cell, _str(args, "item_id", 128))

    async def gun_log(args: dict[str, Any]) -> dict[str, Any]:
        from .executed import switching_errors_mm

        goal = cell.goals.get(_str(args, "goal_id"))
        if goal is None:
            raise Refused("unknown goal")
        sw = [x for x in goal.switches if math.isfinite(x[0])]
        return {"planned_s": [p for p, _, _ in sw], "actual_s": [a for _, a, _ in sw], "on": [o for _, _, o in sw],
                "error_mm": switching_errors_mm(goal.traj, sw, cell.cfg.robot.tracking_lag_s),
                "manual_s": [t for t, _ in goal.manual], "manual_on": [o for _, o in goal.manual],
                "events_s": [t for t, _ in goal.events]}  # fmt: skip

    async def stats(args: dict[str, Any]) -> dict[str, Any]:
        return {"sprays": {k: v.sprays for k, v in cell.items.items()}, "refusals": dict(s.refusals),
                "faults_fired": [f.kind for _, f in cell.fired], "clients": len(s.clients),
                "sim_time_s": cell.sim_time, "goals": len(cell.goals)}  # fmt: skip

    for name, type_, fn in (
        (n.set_io_service, "ur_msgs/srv/SetIO", set_io),
        (n.unlock_service, "std_srvs/srv/Trigger", unlock),
        (n.gun_schedule_service, "gluecell_msgs/srv/ArmGunSchedule", arm),
        (n.goal_status_service, "gluecell_msgs/srv/GoalStatus", goal_status),
        (n.conveyor_service, "std_srvs/srv/Trigger", index),
        ("/gluecell_sim/fault", "gluecell_msgs/srv/SimFault", fault),
        ("/gluecell_sim/outcome", "gluecell_msgs/srv/SimOutcome", outcome),
        ("/gluecell_sim/gun_log", "gluecell_msgs/srv/SimGunLog", gun_log),
        ("/gluecell_sim/stats", "gluecell_msgs/srv/SimStats", stats),
    ):
        s.add_service(name, type_, fn)


def _clear(cell: SimCell, kind: str) -> str:
    if kind == "estop":
        cell.robot.e_stopped = False
        return "e-stop released"
    if kind == "clogged_nozzle":
        cell.flow_factor = 1.0
        return "nozzle cleaned"
    if kind == "robot_error":
        cell.robot.in_error, cell.robot.error_code = False, 0
        return "robot error cleared"
    before = len(cell.faults)
    cell.faults = [f for f in cell.faults if f.kind != kind]
    return f"{before - len(cell.faults)} pending {kind} fault(s) removed"


def _outcome(cell: SimCell, item_id: str) -> dict[str, Any]:
    """The world's spray of what was executed on ``item_id`` (runs on a worker thread)."""
    from .executed import gun_on_paths, spray_executed

    rec = cell.items.get(item_id)
    out: dict[str, Any] = {"item_id": item_id, "sprays": rec.sprays if rec else {"upper": 0, "sole": 0},
                           "offset_m": list(rec.offset_m) if rec else [0.0, 0.0, 0.0],
                           "flow_factor": rec.flow_factor if rec else 1.0, "scores": {}}  # fmt: skip
    if rec is None or cell.line.world is None:
        return out
    goals = [cell.goals[g] for g in rec.goals if g in cell.goals]
    paths = [p for g in goals for p in gun_on_paths(g.gun_on_tau, g.gun_on_q, cell.cfg.robot.tick_s, g.gun_after_tau,
                                                    g.gun_after_q)]  # fmt: skip
    if not paths:
        return out
    from gluecell.datasets.format import open_dataset

    truth = open_dataset(cell.line.world).truth(item_id)
    seed = int(item_id) if item_id.isdigit() else 0
    out["scores"] = spray_executed(truth, paths, seed, flow_factor=rec.flow_factor, offset_m=rec.offset_m)
    return out
