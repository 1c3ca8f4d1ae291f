"""The simulated cell's rosbridge v2 server, driven by a bare websocket client (the protocol itself)."""

from __future__ import annotations

import json

import pytest

NAMES = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint"]
ACTION = "/scaled_joint_trajectory_controller/follow_joint_trajectory"
ACTION_TYPE = "control_msgs/action/FollowJointTrajectory"


def _still_serves(raw) -> None:
    """A fresh client gets a correct, id-echoed answer."""
    c = raw()
    c.send({"op": "call_service", "id": "probe-1", "service": "/gluecell/goal_status", "args": {"goal_id": "x"}})
    reply = c.recv("service_response", id="probe-1")
    assert reply["result"] is True and reply["values"]["status"] == 0


def test_service_call_echoes_id_and_refuses_unknown_service(raw):
    c = raw()
    c.send({"op": "call_service", "id": "abc", "service": "/gluecell/goal_status", "args": {"goal_id": "g1"}})
    r = c.recv("service_response")
    assert r["id"] == "abc" and r["service"] == "/gluecell/goal_status" and r["result"] is True
    assert r["values"] == {"goal_id": "g1", "status": 0}
    c.send({"op": "call_service", "id": 7, "service": "/nope", "args": {}})
    r = c.recv("service_response", id=7)
    assert r["result"] is False and "does not exist" in r["values"]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("{not json", "not JSON"),
        ("[1, 2, 3]", "JSON object"),
        (json.dumps({"op": "frobnicate", "id": "u1"}), "unknown op"),
        (json.dumps({"op": "subscribe", "id": "u2", "topic": 42}), "ROS name"),
        (json.dumps({"op": "advertise", "id": "u3", "topic": "/x", "type": "not a type"}), "ROS type"),
        (json.dumps({"op": "publish", "id": "u4", "topic": "/never_advertised", "msg": {}}), "not advertised"),
        (json.dumps({"op": "advertise", "id": "u5", "topic": "/joint_states", "type": "std_msgs/msg/String"}),
         "published by the cell"),
        (b"\x00\x01binary", "binary"),
    ],
)
def test_bad_messages_get_a_status_error_and_the_server_keeps_serving(raw, payload, needle):
    c = raw()
    c.send(payload)
    status = c.recv("status")
    assert status["level"] == "error" and needle in status["msg"]
    if isinstance(payload, str) and payload.startswith("{") and '"id"' in payload:
        assert status["id"] == json.loads(payload)["id"]
    _still_serves(raw)
    # the misbehaving client itself is still served too
    c.send({"op": "call_service", "id": "again", "service": "/gluecell/goal_status", "args": {"goal_id": "y"}})
    assert c.recv("service_response", id="again")["result"] is True


def test_oversized_frame_closes_only_that_client(sim, raw):
    from websockets.exceptions import ConnectionClosed

    big, other = raw(), raw()
    big.send("x" * (sim.cell.server.max_message_bytes + 1))
    with pytest.raises(ConnectionClosed) as info:
        big.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    other.send({"op": "call_service", "id": "ok", "service": "/gluecell/goal_status", "args": {"goal_id": "z"}})
    assert other.recv("service_response", id="ok")["result"] is True


def test_topics_between_clients_latch_throttle_and_unsubscribe_by_id(raw):
    a, b = raw(), raw()
    a.send({"op": "advertise", "topic": "/t/chat", "type": "std_msgs/msg/String"})
    b.send({"op": "subscribe", "id": "s1", "topic": "/t/chat", "type": "std_msgs/msg/String"})
    b.send({"op": "subscribe", "id": "s2", "topic": "/t/chat"})
    import time

    time.sleep(0.1)
    a.send({"op": "publish", "topic": "/t/chat", "msg": {"data": "one"}})
    assert b.recv("publish", topic="/t/chat")["msg"] == {"data": "one"}
    b.send({"op": "unsubscribe", "id": "s1", "topic": "/t/chat"})
    time.sleep(0.1)
    a.send({"op": "publish", "topic": "/t/chat", "msg": {"data": "two"}})  # s2 still holds the subscription
    assert b.recv("publish", topic="/t/chat")["msg"] == {"data": "two"}
    b.send({"op": "unsubscribe", "id": "s2", "topic": "/t/chat"})
    time.sleep(0.1)
    a.send({"op": "publish", "topic": "/t/chat", "msg": {"data": "three"}})
    with pytest.raises(TimeoutError):
        b.recv("publish", topic="/t/chat", timeout=0.5)
    # a latched cell topic arrives on subscribe; the 50 Hz joint states throttled to 5 Hz
    b.send({"op": "subscribe", "topic": "/gluecell/conveyor/state"})
    state = json.loads(b.recv("publish", topic="/gluecell/conveyor/state")["msg"]["data"])
    assert state == {"at_scan": None, "at_spray": None, "seated": False}
    b.send({"op": "subscribe", "id": "js", "topic": "/joint_states", "throttle_rate": 200})
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 1.0:
        try:
            b.recv("publish", topic="/joint_states", timeout=max(0.01, 1.0 - (time.monotonic() - t0)))
            n += 1
        except TimeoutError:
            break
    assert 3 <= n <= 7, n


def test_client_advertised_service_is_forwarded(raw):
    server, caller = raw(), raw()
    server.send({"op": "advertise_service", "service": "/t/add", "type": "example_interfaces/srv/AddTwoInts"})
    import time

    time.sleep(0.1)
    caller.send({"op": "call_service", "id": "mine", "service": "/t/add", "args": {"a": 2, "b": 3}})
    req = server.recv("call_service")
    assert req["id"].startswith("service_request:/t/add:") and req["args"] == {"a": 2, "b": 3}
    server.send({"op": "service_response", "service": "/t/add", "id": req["id"], "values": {"sum": 5}, "result": True})
    r = caller.recv("service_response")
    assert r["id"] == "mine" and r["values"] == {"sum": 5} and r["result"] is True
    # a response nobody asked for is refused
    server.send({"op": "service_response", "service": "/t/add", "id": "forged", "values": {}, "result": True})
    assert "no pending request" in server.recv("status")["msg"]


def _goal(positions, t_s=1.0, names=NAMES):
    return {"trajectory": {"joint_names": names, "points": [
        {"positions": positions, "time_from_start": {"sec": int(t_s), "nanosec": int((t_s % 1) * 1e9)}}]}}


@pytest.mark.parametrize(
    ("mutate", "code", "needle"),
    [
        (lambda q: _goal([None, *q[1:]]), -1, "NaN"),
        (lambda q: _goal([q[0] + 7.0, *q[1:]], 60.0), -1, "beyond its limits"),
        (lambda q: _goal([q[0] + 1.0, *q[1:]], 0.1), -1, "rad/s"),
        (lambda q: _goal(q, 1.0, [*NAMES[::-1][:5], "elbow_joint"]), -2, "joint_names"),
        (lambda q: {**_goal(q), "trajectory": {**_goal(q)["trajectory"],
                    "header": {"stamp": {"sec": 1000, "nanosec": 0}}}}, -3, "old"),
        (lambda q: {"trajectory": {"joint_names": NAMES, "points": []}}, -1, "no points"),
    ],
)
def test_bad_goals_are_refused_with_the_standard_error_codes(sim, raw, mutate, code, needle):
    c = raw()
    q = sim.cell.robot.q.tolist()
    c.send({"op": "send_action_goal", "id": "bad", "action": ACTION, "action_type": ACTION_TYPE, "args": mutate(q)})
    r = c.recv("action_result", id="bad")
    assert r["result"] is False and r["status"] == 6
    assert r["values"]["error_code"] == code and needle in r["values"]["error_string"]
    assert sim.cell.robot.goal is None
    _still_serves(raw)


def test_goal_feedback_result_and_cancel(sim, raw):
    c = raw()
    q = sim.cell.robot.q.tolist()
    q1 = [q[0] + 0.3, *q[1:]]
    c.send({"op": "send_action_goal", "id": "g-ok", "action": ACTION, "action_type": ACTION_TYPE,
            "args": _goal(q1, 2.0), "feedback": True})  # fmt: skip
    fb = c.recv("action_feedback", id="g-ok")
    assert fb["values"]["joint_names"] == NAMES and len(fb["values"]["error"]["positions"]) == 6
    r = c.recv("action_result", id="g-ok")
    assert r["result"] is True and r["status"] == 4 and r["values"]["error_code"] == 0
    assert sim.cell.robot.q[0] == pytest.approx(q1[0], abs=1e-3)
    c.send({"op": "send_action_goal", "id": "g-long", "action": ACTION, "action_type": ACTION_TYPE,
            "args": _goal(q, 60.0)})  # fmt: skip
    c.recv("action_feedback", id="g-long")
    c.send({"op": "cancel_action_goal", "id": "g-long", "action": ACTION})
    r = c.recv("action_result", id="g-long")
    assert r["status"] == 5 and r["result"] is True
    c.send({"op": "cancel_action_goal", "id": "never", "action": ACTION})
    assert "no goal" in c.recv("status")["msg"]


def test_a_flooding_client_does_not_starve_the_others(raw):
    import time

    flooder, other = raw(), raw()
    for i in range(3000):  # bounded: 3000 bad messages on loopback, never read back
        flooder.send({"op": "bogus", "id": i})
    t0 = time.monotonic()
    other.send({"op": "call_service", "id": "during", "service": "/gluecell/goal_status", "args": {"goal_id": "f"}})
    assert other.recv("service_response", id="during")["result"] is True
    assert time.monotonic() - t0 < 2.0


def test_goal_to_a_missing_action_and_during_a_conveyor_move_is_refused(sim, raw):
    c = raw()
    q = sim.cell.robot.q.tolist()
    c.send({"op": "send_action_goal", "id": "nope", "action": "/no/action", "action_type": ACTION_TYPE,
            "args": _goal(q)})  # fmt: skip
    r = c.recv("action_result", id="nope")
    assert r["result"] is False and "does not exist" in r["values"]["error_string"]
    import dataclasses
    import time

    sim.cell.cfg = dataclasses.replace(sim.cell.cfg, index_time_s=20.0)  # 1 s of wall time at 20x
    c.send({"op": "call_service", "id": "idx", "service": "/gluecell/conveyor/index", "args": {}})
    time.sleep(0.2)
    c.send({"op": "send_action_goal", "id": "moving", "action": ACTION, "action_type": ACTION_TYPE,
            "args": _goal([q[0] + 0.1, *q[1:]])})  # fmt: skip
    r = c.recv("action_result", id="moving")
    assert r["result"] is False and "conveyor is moving" in r["values"]["error_string"]
    assert c.recv("service_response", id="idx")["result"] is True
