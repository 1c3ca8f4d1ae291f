"""Robot-link bench: rosbridge round trip, and where the gun really switches along planned spray paths.

Programs: the planner's UR10e programs (upper and sole) for pairs of the bench world's ``test`` split, planned
on ideal scans with the true bite line (as in the ``pathplan`` section), so the paths move at the planned
spray speeds. They run on the simulated cell (``gluecell.cell.sim``) in its own event-loop thread, driven
through :class:`~gluecell.cell.robot.rosbridge.RosbridgeLink` (roslibpy) over a loopback websocket.

Metrics:
- ``robot_rosbridge_rtt_p50_ms`` / ``_p99_ms``: a service call (``/gluecell/goal_status``) through roslibpy,
  the simulated cell's server and back; loopback, so the transport and both libraries, not a network.
- ``robot_gun_switch_error_p50_mm`` / ``_p99_mm`` / ``_max_mm``: the gun schedule armed with the goal and
  switched on the controller's 2 ms tick on the trajectory clock (the design): distance between the nozzle
  where the plan switches and where it really was when the valve acted (tick quantisation, 1 ms servo lag,
  0.5 ms valve spread, at ``robot_nozzle_speed_at_switch_p50_mm_s``). Run at 20x accelerated time (the tick
  is simulated time, so the figure does not depend on the speed-up).
- ``robot_gun_service_call_error_p50_mm`` / ``_p99_mm``: the alternative, for comparison: no schedule, the
  client calls ``SetIO`` itself at each event's time on its own clock (started at the goal's acceptance), in
  real time (speed 1): late by the service round trip, the accept-time uncertainty and the controller's
  cycle. Only the first ``SERVICE_WINDOW_S`` of one upper program (real time is slow).
- ``robot_gun_switch_events``: switching events measured with the schedule; ``robot_goal_refusals``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["bench"]

#: Pairs whose programs are executed (quick / full).
N_QUICK, N_FULL = 1, 3
#: Round trips timed (quick / full).
RTT_QUICK, RTT_FULL = 200, 1000
#: Seconds of one program run in real time for the service-call comparison (quick / full).
SERVICE_WINDOW_S = (8.0, 20.0)
FAST = 20.0


def _programs(ctx: Any, n: int) -> list[Any]:
    from gluecell.cell.bench.pathplan import sample_scan
    from gluecell.datasets.format import open_dataset
    from gluecell.pathplan.pipeline import plan_pair

    ds = open_dataset(ctx.dataset)
    out: list[Any] = []
    test = ds.ids("test")
    # no model is fitted here, so after the test split the other pairs of the held-out world serve as well
    for k, sid in enumerate(test + [i for i in ds.ids() if i not in test]):
        if len(out) >= 2 * n:
            break
        truth = ds.truth(sid)
        u, un = sample_scan(truth["upper_mesh"], 60_000, ctx.seed + k, drop_below=-1.1)
        s, sn = sample_scan(truth["sole_mesh"], 40_000, ctx.seed + k + 1)
        try:
            plan = plan_pair(u, s, truth["bite_line"], upper_normals=un, sole_normals=sn)
        except Exception as exc:  # a pair the planner refuses is not the robot link's figure
            log.warning("robot bench: pair %s not planned: %s", sid, exc)
            continue
        out.extend((f"{sid}:{part}", prog) for part, prog in plan.programs.items())
    return out


def _rtt(link: Any, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        link.goal_status("rtt-probe", timeout_s=2.0)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _speed_at(traj: Any, t: np.ndarray) -> np.ndarray:
    from gluecell.cell.sim.executed import nozzle_poses

    dt = 1e-3
    a, b = nozzle_poses(traj.at(t - dt))[:, :3, 3], nozzle_poses(traj.at(t + dt))[:, :3, 3]
    return np.linalg.norm(b - a, axis=1) / (2 * dt) * 1e3


def _scheduled(sim: Any, link: Any, programs: list[Any]) -> tuple[list[float], list[float], int]:
    from gluecell.cell.sim.executed import switching_errors_mm

    errors, speeds, refused = [], [], 0
    for gid, prog in programs:
        try:
            link.execute(prog, goal_id=gid, timeout_s=10.0).wait(prog.duration / FAST + 30.0)
        except Exception as exc:
            refused += 1
            log.warning("robot bench: %s failed: %s", gid, exc)
            continue
        goal = sim.cell.goals[gid]
        sw = [s for s in goal.switches if np.isfinite(s[0])]
        errors += switching_errors_mm(goal.traj, sw, sim.cell.cfg.robot.tracking_lag_s)
        speeds += _speed_at(goal.traj, np.array([p for p, _, _ in sw])).tolist()
    return errors, speeds, refused


def _truncated(prog: Any, window_s: float) -> Any:
    from gluecell.core.types import RobotProgram

    k = int(np.searchsorted(prog.t, prog.t[0] + window_s))
    last = float(prog.t[k - 1]) - 0.2  # the last switch well before the end: a client switching at the very
    events = tuple(e for e in prog.gun_events if e[0] <= last)  # end would race the goal's result
    if events and events[-1][1]:
        events = (*events, (last, False))
    qd = None if prog.qd is None else prog.qd[:k]
    return RobotProgram(joint_names=prog.joint_names, t=prog.t[:k], q=prog.q[:k], qd=qd, gun_events=events)


def _service_calls(sim: Any, link: Any, prog: Any) -> list[float]:
    """Client-timed SetIO along ``prog`` at speed 1; errors (mm) of the switches against the plan."""
    from gluecell.cell.robot.base import GunSchedule
    from gluecell.cell.sim.executed import switching_errors_mm

    handle = link.execute(prog, goal_id="service-call", gun=GunSchedule(()), timeout_s=10.0)
    t_accept = time.monotonic()
    lead = handle.duration_s - prog.duration
    planned = [(t - prog.t[0] + lead, on) for t, on in prog.gun_events]

    def switcher() -> None:
        for t_ev, on in planned:
            time.sleep(max(0.0, t_accept + t_ev - time.monotonic()))
            link.set_gun(on, timeout_s=2.0)

    th = threading.Thread(target=switcher)
    th.start()
    handle.wait(prog.duration + 30.0)
    th.join()
    goal = sim.cell.goals["service-call"]
    sw = [(p, a, on) for (p, _), (a, on) in zip(planned, goal.manual)]
    return switching_errors_mm(goal.traj, sw, sim.cell.cfg.robot.tracking_lag_s)


def _run(sim_speed: float, fn: Any) -> Any:
    from gluecell.cell.robot.config import RobotLinkConfig
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.sim.cell import SimCell, SimCellConfig
    from gluecell.cell.sim.run import start_in_thread

    with start_in_thread(SimCell(SimCellConfig(speed=sim_speed), ids=[])) as sim, RosbridgeLink(
            RobotLinkConfig(port=sim.port)) as link:  # fmt: skip
        return fn(sim, link)


def bench(ctx: Any) -> dict[str, float]:
    """Run the robot-link bench (see the module docstring)."""
    programs = _programs(ctx, N_QUICK if ctx.quick else N_FULL)
    if not programs:
        raise RuntimeError("no pair of the test split could be planned")
    rtt, (errors, speeds, refused) = _run(FAST, lambda s, lk: (
        _rtt(lk, RTT_QUICK if ctx.quick else RTT_FULL), _scheduled(s, lk, programs)))  # fmt: skip
    upper = next(p for gid, p in programs if gid.endswith(":upper"))
    window = SERVICE_WINDOW_S[0] if ctx.quick else SERVICE_WINDOW_S[1]
    service = _run(1.0, lambda s, lk: _service_calls(s, lk, _truncated(upper, window)))

    def pct(v: list[float], q: float) -> float:
        return float(np.percentile(v, q)) if v else float("nan")

    return {
        "robot_rosbridge_rtt_p50_ms": pct(rtt, 50), "robot_rosbridge_rtt_p99_ms": pct(rtt, 99),
        "robot_gun_switch_error_p50_mm": pct(errors, 50), "robot_gun_switch_error_p99_mm": pct(errors, 99),
        "robot_gun_switch_error_max_mm": max(errors) if errors else float("nan"),
        "robot_nozzle_speed_at_switch_p50_mm_s": pct(speeds, 50), "robot_gun_switch_events": float(len(errors)),
        "robot_gun_service_call_error_p50_mm": pct(service, 50),
        "robot_gun_service_call_error_p99_mm": pct(service, 99),
        "robot_gun_service_call_events": float(len(service)), "robot_programs": float(len(programs)),
        "robot_goal_refusals": float(refused),
    }  # fmt: skip
