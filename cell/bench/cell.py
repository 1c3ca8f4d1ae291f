"""``gluecell bench`` section ``cell``: the controller on the simulated line, its faults and SIGKILL restarts.

* **Line** — 1,000 pairs (100 with ``--quick``) through ``gluecell sim`` (its own process, x300: faster, the
  simulator's 500 Hz loop starves on 2 cores and its heartbeat lapses; no world: ids only) and the controller
  over rosbridge, in the REPLAY pipeline mode: each style's plan was made once by the real pipeline on a bench
  pair and is replayed for every pair of that style, so these figures measure the controller, the robot link
  and the store — not the glue. First-pass yield and its causes are the stand-in verdicts (robot success + the
  recorded plan's own coverage check). Controller overhead per pair is the controller thread's wall time
  outside link calls, goal waits and waiting for a plan. A hold (lost heartbeat) is answered with Unhold and
  counted.
* **Faults** — each injected fault on a short line: the state the cell went to, the operator's way back, and
  the proof (the simulated cell's spray counts; every ordered pair routed).
* **SIGKILL** — ``gluecell serve`` killed before, during and after sprays (``KILL_ROUNDS`` rounds), restarted
  each time: pairs lost, parts sprayed twice, the state after restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bench", "record_styles", "run_line", "run_faults", "run_sigkill", "FAULT_TABLE"]

PAIRS = (100, 1000)
SPEED = 300.0
KILL_ROUNDS = (1, 2)
#: fault -> (how the operator brings the cell back), as the bench plays it.
FAULT_TABLE = {"robot_error": "Unhold (unlocks the protective stop)",
               "estop": "release the e-stop, Clear, Reset, Start",
               "link_drop": "the link reconnects by itself; Unhold",
               "part_off_station": "skip the pair (gluecell op skip), Unhold",
               "clogged_nozzle": "none needed: NOT detected by the stand-in inspection (needs quality/)"}  # fmt: skip


def record_styles(dataset: Path, out: Path) -> dict[str, str]:
    """Run the REAL pipeline on the first pair of each style it plans (test split first) and record its plan
    (``<out>/<style>.json``)."""
    from gluecell.cell.control.pipeline import RealPipeline, record_replay
    from gluecell.cell.control.settings import sim_style_library
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(dataset)
    pipe, done, errors = RealPipeline(sim_style_library()), {}, []
    test = ds.ids("test")
    for sid in [*test, *(i for i in ds.ids() if i not in test)]:  # any pair will do: a replay source, no score
        wi = json.loads((Path(dataset) / "inputs" / sid / "workitem.json").read_text())
        if wi["style"] in done:
            continue
        item = {"id": sid, "style": wi["style"], "size_eu": wi["size_eu"], "side": wi["side"]}
        try:
            record_replay(pipe, item, Path(dataset) / "inputs" / sid, out)
            done[wi["style"]] = sid
        except Exception as exc:  # a refused pair: try the next one of the style
            errors.append(f"{sid}: {type(exc).__name__}: {exc}")
    if not done:
        raise RuntimeError(f"the real pipeline refused every bench pair: {errors[:3]}")
    return done


def _sim(n_or_ids: Any, speed: float, faults: Path | None = None) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "sim", "--port", "0", "--speed", f"{speed:g}", "--no-world",
           "--pairs", str(n_or_ids)]  # fmt: skip
    if faults is not None:
        cmd += ["--faults", str(faults)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "ws://127.0.0.1:" in line:
            return proc, int(line.split("ws://127.0.0.1:")[1].split()[0])
    raise RuntimeError("gluecell sim did not start")


def _ids(n: int) -> list[str]:
    return [f"P{i:05d}" for i in range(n)]  # the ids ``gluecell sim --no-world`` brings


def _controller(db: Path, port: int, replay: Path, n: int, styles: list[str]) -> tuple[Any, Any, Any]:
    from gluecell.cell.control import Controller, ControllerConfig, ReplayPipeline
    from gluecell.cell.robot.config import RobotLinkConfig
    from gluecell.cell.robot.rosbridge import RosbridgeLink
    from gluecell.cell.store import Store

    store = Store(db)
    with store.db.transaction():
        for k, i in enumerate(_ids(n)):
            store.items.order(i, styles[k % len(styles)])
    link = RosbridgeLink(RobotLinkConfig(port=port))
    link.connect(20)
    ctl = Controller(store, link, ReplayPipeline.load(replay), ControllerConfig(goal_timeout_margin_s=5.0))
    ctl.start()
    return ctl, store, link


def _start(ctl: Any) -> None:
    from gluecell.cell.control import Command, State

    ctl.command(Command.RESET, who="bench", why="bench")
    ctl.wait_for(State.IDLE, 20)
    ctl.command(Command.START, who="bench", why="bench")


def run_line(replay: Path, n: int, tmp: Path) -> dict[str, float]:
    """``n`` pairs through the line (replay mode); yield, causes, throughput, controller overhead."""

    styles = sorted(p.stem for p in replay.glob("*.json"))
    proc, port = _sim(n, SPEED)
    try:
        ctl, store, link = _controller(tmp / "line.db", port, replay, n, styles)
        try:
            t0 = time.perf_counter()
            _start(ctl)
            final, holds = _run_to_end(ctl, link)
            wall = time.perf_counter() - t0
            perf = {k: list(v) for k, v in ctl.perf.items()}
        finally:
            ctl.close()
            link.disconnect()
        items = store.items.list(limit=n + 10)
        store.close()
        twice = _twice(port)
    finally:
        proc.terminate()
        proc.wait(20)
    out = {"cell_pairs": float(n), "cell_final_state": float(final), "cell_holds": float(holds), "cell_twice": twice,
           "cell_routed": float(sum(i["state"] in ("passed", "rework") for i in items)),
           "cell_fpy": float(np.mean([i["state"] == "passed" and i["attempts"] == 1 for i in items])),
           "cell_pairs_per_s": n / wall}  # fmt: skip
    causes = [i["cause"] or i["state"] for i in items if i["state"] != "passed"]
    for cause in sorted(set(causes)):
        out[f"cell_rework_{cause}"] = causes.count(cause) / n
    for style in styles:
        out[f"cell_fpy_{style}"] = float(np.mean([i["state"] == "passed" for i in items if i["style"] == style]))
    for k, q in (("overhead_ms", 50), ("overhead_ms", 99), ("cycle_ms", 50), ("link_ms", 50), ("thread_cpu_ms", 50)):
        out[f"cell_{k.removesuffix('_ms')}_p{q}_ms"] = float(np.percentile(perf[k], q)) if perf[k] else float("nan")
    return out


def _run_to_end(ctl: Any, link: Any, max_holds: int = 20) -> tuple[Any, int]:
    """Run until Complete; a hold (lost link, robot error) is answered as an operator would: once the link is
    back, Unhold. Returns the final state and the number of holds (each is in the store's event log)."""
    from gluecell.cell.control import Command, State

    holds = 0
    while True:
        final = ctl.wait_for({State.COMPLETE, State.HELD, State.STOPPED, State.ABORTED}, 3600)
        if final != State.HELD or holds >= max_holds:
            break
        holds += 1
        print(f"bench cell: hold {holds}: {ctl.last_error}; Unhold once the link is back", file=sys.stderr)
        _wait_link(link)
        time.sleep(0.5)
        ctl.command(Command.UNHOLD, who="bench", why="operator: fault gone")
        ctl.wait_for({State.EXECUTE, State.HELD, State.COMPLETE}, 30)
    if final != State.COMPLETE:
        print(f"bench cell: the line ended {final.name.title()}: {ctl.last_error}", file=sys.stderr)
    return final, holds


def _fault_case(kind: str, replay: Path, tmp: Path) -> dict[str, float]:
    """3 pairs, ``kind`` injected on the second; the operator's way back; the proof from the cell's counts."""
    from gluecell.cell.control import Command, State

    spec = {"kind": kind, "item": 1}
    if kind in ("robot_error", "estop", "link_drop", "clogged_nozzle"):
        spec.update(during="upper", at_fraction=0.4)
    if kind == "link_drop":
        spec["value"] = 0.5
    faults = tmp / f"{kind}.toml"
    faults.write_text("[[fault]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in spec.items()))
    proc, port = _sim(3, 50.0, faults)
    went, back = 0, 0.0
    try:
        ctl, store, link = _controller(tmp / f"{kind}.db", port, replay, 3, ["sneaker"])
        try:
            _start(ctl)
            went = int(ctl.wait_for({State.COMPLETE, State.HELD, State.STOPPED, State.ABORTED}, 60))
            if went == State.HELD and kind == "part_off_station":
                store.overrides.request("skip", "bench", "pair off its fixture", item_id=_ids(3)[1])
                time.sleep(0.3)
            if went == State.HELD:
                _wait_link(link)
                ctl.command(Command.UNHOLD, who="bench", why="fault cleared")
            elif went == State.ABORTED:
                _sim_call(port, "/gluecell_sim/fault", {"kind": kind, "clear": True})
                time.sleep(0.3)
                ctl.command(Command.CLEAR, who="bench", why="e-stop released")
                ctl.wait_for(State.STOPPED, 20)
                _start(ctl)
            back = float(ctl.wait_for({State.COMPLETE, State.HELD, State.ABORTED}, 60) == State.COMPLETE)
        finally:
            ctl.close()
            link.disconnect()
        counts = store.items.counts()
        store.close()
        twice = _twice(port)
    finally:
        proc.terminate()
        proc.wait(20)
    return {f"fault_{kind}_state": float(went), f"fault_{kind}_recovered": back, f"fault_{kind}_twice": twice,
            f"fault_{kind}_lost": float(3 - sum(counts.get(s, 0) for s in ("passed", "rework", "skipped"))),
            f"fault_{kind}_rework": float(counts.get("rework", 0) + counts.get("skipped", 0))}  # fmt: skip


def _wait_link(link: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not link.is_connected and time.monotonic() < deadline:
        time.sleep(0.05)


def _sim_call(port: int, service: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call a service of the simulated cell (its fault and stats services) with a one-message rosbridge client
    (roslibpy belongs to the robot link alone); returns the response's values."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}", open_timeout=10, max_size=2**24) as ws:
        ws.send(json.dumps({"op": "call_service", "id": "bench", "service": service, "args": args}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=10))
            if msg.get("op") == "service_response" and msg.get("id") == "bench":
                return dict(msg.get("values") or {})
    raise RuntimeError(f"the simulated cell did not answer {service}")


def run_faults(replay: Path, tmp: Path) -> dict[str, float]:
    """Every fault of :data:`FAULT_TABLE` on its own short line."""
    out: dict[str, float] = {}
    for kind in FAULT_TABLE:
        try:
            out.update(_fault_case(kind, replay, tmp))
        except Exception as exc:  # one broken case must not hide the others
            out[f"fault_{kind}_error"] = 1.0
            print(f"bench cell: fault {kind}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return out


def _twice(port: int) -> float:
    """Parts the simulated cell sprayed more than once (its own counts)."""
    sprays = _sim_call(port, "/gluecell_sim/stats", {}).get("sprays", {})
    return float(sum(n > 1 for parts in sprays.values() for n in parts.values()))


def _serve(config: Path, start: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "serve", "--config", str(config), "--status-s", "0"]
    return subprocess.Popen([*cmd, *(["--start"] if start else [])], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def _until(pred: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.002)
    raise TimeoutError("bench cell: a SIGKILL point was not reached")


def _resume(store: Any, config: Path) -> subprocess.Popen:
    from gluecell.cell.control import StopReason

    proc = _serve(config)
    _until(lambda: (store.packtags.load().get("StopReason") or {}).get("ID") == StopReason.RESTART, 60)
    for cmd in ("Reset", "Start"):
        oid = store.overrides.request("command", "bench", "resume after SIGKILL", args={"command": cmd})
        _until(lambda oid=oid: store.overrides.get(oid)["applied"], 30)
    return proc


def _kill_points(store: Any) -> list[tuple[str, Any]]:
    def sent(part: str) -> Any:
        return lambda: store.db.query_one("SELECT 1 FROM sprays WHERE status = 'sent' AND part = ?", (part,))

    return [("before", lambda: (store.meta.get("conveyor") or {}).get("moving")), ("during", sent("upper")),
            ("after", sent("sole"))]  # fmt: skip


def run_sigkill(replay: Path, tmp: Path, rounds: int) -> dict[str, float]:
    """Kill ``gluecell serve`` before / during / after sprays, ``rounds`` times each, restart; count the damage."""
    from gluecell.cell.store import Store

    n = 3 * rounds + 2
    sim, port = _sim(n, 20.0)
    db, config = tmp / "kill.db", tmp / "kill.toml"
    config.write_text(f'[store]\npath = "{db}"\nsynchronous = "NORMAL"\n[control]\ngoal_timeout_margin_s = 5.0\n'
                      f'[pipeline]\nmode = "replay"\nreplay_dir = "{replay}"\n[robot]\nport = {port}\n')  # fmt: skip
    store = Store(db)
    styles = sorted(p.stem for p in replay.glob("*.json"))
    style = "sneaker" if "sneaker" in styles else styles[0]  # a style whose recorded plan passes, if any
    for i in _ids(n):
        store.items.order(i, style)
    proc, kills, restarted_stopped = _serve(config, start=True), 0, 0
    try:
        for _ in range(rounds):
            for name, point in _kill_points(store):
                _until(point, 120)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                kills += 1
                if name == "after":
                    time.sleep(4.0)  # the robot finishes the goal while the controller is dead
                proc = _resume(store, config)
                restarted_stopped += 1
        _until(lambda: store.packtags.load().get("StateCurrentName") == "Complete", 300)
        counts = store.items.counts()
        twice = _twice(port)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        sim.terminate()
        sim.wait(20)
        store.close()
    return {"sigkill_kills": float(kills), "sigkill_restarts_stopped_with_reason": float(restarted_stopped),
            "sigkill_pairs": float(n), "sigkill_lost": float(n - counts.get("passed", 0) - counts.get("rework", 0)),
            "sigkill_twice": twice, "sigkill_passed": float(counts.get("passed", 0)),
            "sigkill_rework": float(counts.get("rework", 0))}  # fmt: skip


def bench(ctx: Any) -> dict[str, float]:
    """The ``cell`` section (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="gluecell-bench-cell-") as d:
        tmp = Path(d)
        replay = tmp / "replay"
        recorded = record_styles(ctx.dataset, replay)
        out = {"cell_styles_recorded": float(len(recorded))}
        out.update(run_line(replay, PAIRS[0] if ctx.quick else PAIRS[1], tmp))
        out.update(run_faults(replay, tmp))
        out.update(run_sigkill(replay, tmp, KILL_ROUNDS[0] if ctx.quick else KILL_ROUNDS[1]))
        return out
