"""The cell routes: commands through the controller's override queue, ISA-18.2 alarm handling, work items as smart
products, overrides, pictures only from the media roots."""

from __future__ import annotations

import time

from gluecell.cell.api.alarms import FLOOD_COUNT


def test_commands_are_applied_refused_and_audited(cell):
    op, eng = cell["c"]["operator"], cell["c"]["engineer"]
    assert op.get("/api/v1/cell").json()["AllowedCommands"] == ["Reset", "Abort"]
    r = op.post("/api/v1/cell/commands", json={"Command": "Start", "Reason": "too early"})
    assert r.status_code == 409 and r.json()["StateCurrent"] == 2  # Start is not accepted in Stopped
    r = op.post("/api/v1/cell/commands", json={"Command": "Reset", "Reason": "shift start"})
    assert r.status_code == 200 and r.json()["outcome"] == "applied: Stopped -> Idle"
    assert op.get("/api/v1/cell").json()["State"] == "Idle"
    assert op.post("/api/v1/cell/commands", json={"Command": "Complete", "Reason": "role"}).status_code == 403
    assert op.post("/api/v1/cell/commands", json={"Command": "Reset", "Reason": "x"}).status_code == 422  # reason
    r = eng.post("/api/v1/cell/mode", json={"Mode": "Manual", "Reason": "jog the robot"})
    assert r.status_code == 200 and cell["applier"].machine.mode.name == "MANUAL"
    audit = eng.get("/api/v1/audit").json()["items"]
    assert [(a["user"], a["action"], a["outcome"][:7]) for a in audit] == [
        ("operator-1", "command:Start", "refused"), ("operator-1", "command:Reset", "applied"),
        ("engineer-1", "mode:Manual", "applied")]  # fmt: skip


def _alarm(cell, alarms):
    cell["applier"].alarms = alarms
    cell["applier"].save()


def test_alarms_follow_isa_18_2(cell):
    op = cell["c"]["operator"]
    _alarm(cell, [{"ID": 4, "Value": "e-stop pressed", "Time": 1000.0}, {"ID": 1, "Value": "operator stop",
                                                                         "Time": 1001.0}])  # fmt: skip
    items = {a["key"]: a for a in op.get("/api/v1/alarms").json()["items"]}
    assert {k: (a["priority"], a["state"]) for k, a in items.items()} == {
        "4@1000.000": ("urgent", "unacknowledged"), "1@1001.000": ("low", "unacknowledged")}
    r = op.post("/api/v1/alarms/4@1000.000/actions", json={"Action": "acknowledge", "Reason": "seen, checking"})
    assert r.json()["state"] == "acknowledged" and r.json()["acked_by"] == "operator-1"
    r = op.post("/api/v1/alarms/1@1001.000/actions", json={"Action": "shelve", "Reason": "known", "ShelveMinutes": 5})
    assert r.json()["state"] == "shelved" and r.json()["shelved_until"] > time.time() + 290
    _alarm(cell, [])  # both return to normal
    items = {a["key"]: a["state"] for a in op.get("/api/v1/alarms?history=true").json()["items"]}
    assert items == {"4@1000.000": "normal", "1@1001.000": "shelved"}
    op.post("/api/v1/alarms/1@1001.000/actions", json={"Action": "unshelve", "Reason": "back"})
    assert [a["state"] for a in op.get("/api/v1/alarms").json()["items"]] == ["rtn_unacknowledged"]
    assert op.post("/api/v1/alarms/9@1.000/actions", json={"Action": "shelve", "Reason": "none"}).status_code == 404
    _alarm(cell, [{"ID": 2, "Value": "robot error", "Time": 2000.0 + k} for k in range(FLOOD_COUNT + 1)])
    flood = op.get("/api/v1/alarms").json()
    assert flood["flood"] is False  # raised long ago (Time 2000 s after the epoch): not in the last 10 minutes
    now = time.time()
    _alarm(cell, [{"ID": 2, "Value": "robot error", "Time": now - k} for k in range(FLOOD_COUNT + 1)])
    assert op.get("/api/v1/alarms").json()["flood"] is True


def test_work_item_history_overrides_and_pictures(cell, tmp_path):
    store, op = cell["app"].state.store, cell["c"]["operator"]
    store.items.order("W-1", "sneaker", size_eu=42, side="left")
    store.items.transition("W-1", "arrived", seq=1)
    store.items.transition("W-1", "rework", verdict="fail", cause="coverage", reason="coverage 97 %",
                           picture=str(tmp_path / "W-1_plan.png"))  # fmt: skip
    (tmp_path / "W-1_plan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    d = op.get("/api/v1/work-items/W-1").json()
    assert [h["state"] for h in d["history"]] == ["ordered", "arrived", "rework"]
    assert d["where"] == "rework bin" and d["next"].startswith("the operator decides")
    png = op.get("/api/v1/work-items/W-1/inspection.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert op.get("/api/v1/work-items/W-1/geometry").status_code == 404  # no plan yet
    assert [i["id"] for i in op.get("/api/v1/rework-queue").json()["items"]] == ["W-1"]
    r = op.post("/api/v1/work-items/W-1/overrides", json={"Action": "force_pass", "Reason": "checked by hand"},
                headers={"Idempotency-Key": "o-1"})  # fmt: skip
    assert r.status_code == 201 and r.json()["outcome"] == "applied: force_pass W-1"
    assert store.overrides.get(r.json()["override_id"])["who"] == "operator-1"
    assert op.post("/api/v1/work-items/W-1/overrides", json={"Action": "skip", "Reason": "no key"}).status_code == 400
    r = op.post("/api/v1/work-items/nope/overrides", json={"Action": "skip", "Reason": "unknown"},
                headers={"Idempotency-Key": "o-2"})  # fmt: skip
    assert r.status_code == 404
    store.items.order("W-2", "sneaker")
    store.items.transition("W-2", "rework", picture="/etc/passwd")  # outside the media roots, not a PNG
    assert op.get("/api/v1/work-items/W-2/inspection.png").status_code == 404
    assert op.get("/api/v1/work-items/..%2F..%2Fetc/inspection.png").status_code in (404, 422)
