"""roslibjs (npm ``roslib`` 2.x, run with the machine's node) against the simulated cell: a second, independent
client, so the server is not tuned to roslibpy. ``make node-deps`` (part of ``make test``) installs it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / "build" / "node"
SCRIPT = Path(__file__).with_name("roslibjs_conformance.mjs")


def test_roslibjs_talks_to_the_simulated_cell(sim):
    node = shutil.which("node")
    assert node is not None, "node is not installed: `make sysdeps` installs nodejs"
    assert (NODE_DIR / "node_modules" / "roslib").is_dir(), "roslibjs missing: run `make node-deps`"
    proc = subprocess.run([node, str(SCRIPT), str(sim.port), str(NODE_DIR)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["joint_names"] == list(sim.cell.cfg.robot.joint_names) and len(out["position"]) == 6
    assert out["goal_status"] == {"ok": True, "values": {"goal_id": "never-sent", "status": 0}}
    assert out["missing_service"]["ok"] is False and "does not exist" in out["missing_service"]["error"]
    assert out["chatter"] == "hello from roslibjs"
    assert out["add"] == {"ok": True, "values": {"sum": 42}}
    assert out["goal_ok"]["ok"] is True and out["goal_ok"]["result"] == {"error_code": 0, "error_string": ""}
    assert out["goal_ok"]["feedback"] >= 1
    assert out["goal_bad"]["ok"] is False and "aborted" in out["goal_bad"]["error"]
    assert sim.cell.server.refusals.get("goal") == 1
