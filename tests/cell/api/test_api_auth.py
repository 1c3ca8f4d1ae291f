"""Every route's authorisation matrix: no token 401, a wrong role 403, the right roles pass the gate."""

from __future__ import annotations

import uuid

from gluecell.cell.api.auth import ROLES, add_user, hash_token

ALL = set(ROLES)
OPS = {"operator", "engineer"}
MES = {"mes", "engineer"}
ITEM = "J-1.00001"
ALARM = "2@1000.000"
# (method, path template, concrete path, body, roles that pass): every /api/v1 route must be listed.
MATRIX = [
    ("GET", "/api/v1/me", "/api/v1/me", None, ALL),
    ("GET", "/api/v1/cell", "/api/v1/cell", None, ALL),
    ("POST", "/api/v1/cell/commands", "/api/v1/cell/commands", {"Command": "Abort", "Reason": "matrix test"}, OPS),
    ("POST", "/api/v1/cell/mode", "/api/v1/cell/mode", {"Mode": "Manual", "Reason": "matrix test"}, {"engineer"}),
    ("GET", "/api/v1/work-items", "/api/v1/work-items", None, ALL),
    ("GET", "/api/v1/rework-queue", "/api/v1/rework-queue", None, ALL),
    ("GET", "/api/v1/work-items/{item_id}", f"/api/v1/work-items/{ITEM}", None, ALL),
    ("GET", "/api/v1/work-items/{item_id}/geometry", f"/api/v1/work-items/{ITEM}/geometry", None, ALL),
    ("GET", "/api/v1/work-items/{item_id}/inspection.png", f"/api/v1/work-items/{ITEM}/inspection.png", None, ALL),
    ("POST", "/api/v1/work-items/{item_id}/overrides", f"/api/v1/work-items/{ITEM}/overrides",
     {"Action": "skip", "Reason": "matrix test"}, OPS),
    ("GET", "/api/v1/inspections", "/api/v1/inspections", None, ALL),
    ("GET", "/api/v1/kpis", "/api/v1/kpis", None, ALL),
    ("GET", "/api/v1/alarms", "/api/v1/alarms", None, ALL),
    ("POST", "/api/v1/alarms/{key}/actions", f"/api/v1/alarms/{ALARM}/actions",
     {"Action": "acknowledge", "Reason": "matrix test"}, OPS),
    ("GET", "/api/v1/audit", "/api/v1/audit", None, {"engineer"}),
    ("GET", "/api/v1/events", "/api/v1/events", None, ALL),
    ("POST", "/api/v1/job-orders", "/api/v1/job-orders", "new-job", MES),
    ("GET", "/api/v1/job-orders", "/api/v1/job-orders", None, ALL),
    ("GET", "/api/v1/job-orders/{job_order_id}", "/api/v1/job-orders/J-0", None, ALL),
    ("GET", "/api/v1/job-orders/{job_order_id}/response", "/api/v1/job-orders/J-0/response", None, ALL),
    ("PATCH", "/api/v1/job-orders/{job_order_id}", "/api/v1/job-orders/J-0", {"Priority": 5, "Reason": "matrix"}, MES),
    ("POST", "/api/v1/job-orders/{job_order_id}/methods", "/api/v1/job-orders/J-0/methods",
     {"Method": "Pause", "Reason": "matrix test"}, {"mes", "operator", "engineer"}),
    ("POST", "/api/v1/job-orders/{job_order_id}/methods", "/api/v1/job-orders/J-0/methods",
     {"Method": "Start", "Reason": "matrix test"}, MES),
]


def _call(client, method, path, body, n, job_body):
    headers = {}
    if body == "new-job":
        body = job_body(f"J-new-{n}")
        headers["Idempotency-Key"] = str(uuid.uuid4())
    with client.stream(method, path, json=body, headers=headers) as r:
        return r.status_code, r.headers.get("content-type", "")


def test_every_api_route_is_in_the_matrix(cell):
    paths = cell["app"].openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/") for m in ops}
    listed = {(m, t) for m, t, _, _, _ in MATRIX}
    assert routes - listed == set(), "add these routes to MATRIX"
    assert listed - routes == set()


def test_authorisation_matrix(cell, job_body):
    c = cell["c"]
    r = c["mes"].post("/api/v1/job-orders", json=job_body("J-0"), headers={"Idempotency-Key": "k0"})
    assert r.status_code == 201
    n = 0
    for method, _, path, body, allowed in MATRIX:
        status, ctype = _call(c["anon"], method, path, body, n := n + 1, job_body)
        assert status == 401 and ctype.startswith("application/problem+json"), (method, path, "anon", status)
        for role in ROLES:
            status, ctype = _call(c[role], method, path, body, n := n + 1, job_body)
            if role in allowed:
                assert status not in (401, 403), (method, path, role, status)
            else:
                assert status == 403 and ctype.startswith("application/problem+json"), (method, path, role, status)


def test_only_healthz_and_static_console_are_public(cell):
    anon = cell["c"]["anon"]
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/openapi.json").status_code == 401
    assert anon.get("/").status_code == 200 and "gluecell" in anon.get("/").text
    for cdn_page in ("/docs", "/redoc"):
        assert anon.get(cdn_page).status_code == 404
    spec = cell["c"]["viewer"].get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "/api/v1/job-orders" in spec["paths"]


def test_bad_tokens_are_refused_and_tokens_are_stored_hashed(cell):
    url = cell["url"]
    import httpx

    for header in ("Bearer nope", "Basic abc", "Bearer", "bearer " + "x" * 300, "Bearer " + cell["tokens"]["mes"][:-1]):
        r = httpx.get(url + "/api/v1/me", headers={"Authorization": header})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), header
    rows = cell["app"].state.db.query("SELECT name, token_sha256 FROM api_users")
    stored = {r["token_sha256"] for r in rows}
    assert all(t not in stored for t in cell["tokens"].values())
    assert {hash_token(t) for t in cell["tokens"].values()} <= stored
    cmds = ["Reset", "Start", "Stop", "Hold", "Unhold", "Suspend", "Unsuspend", "Abort", "Clear"]
    assert cell["c"]["operator"].get("/api/v1/me").json() == {
        "name": "operator-1", "role": "operator", "commands": cmds, "may_override": True, "may_change_mode": False,
        "may_order_jobs": False}  # fmt: skip


def test_disabled_and_rotated_tokens_stop_working(cell):
    from gluecell.cell.api.auth import rotate_token, set_disabled

    db = cell["app"].state.db
    tok = add_user(db, "temp", "viewer")
    import httpx

    h = {"Authorization": f"Bearer {tok}"}
    assert httpx.get(cell["url"] + "/api/v1/me", headers=h).status_code == 200
    new = rotate_token(db, "temp")
    assert httpx.get(cell["url"] + "/api/v1/me", headers=h).status_code == 401
    assert httpx.get(cell["url"] + "/api/v1/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert set_disabled(db, "temp")
    assert httpx.get(cell["url"] + "/api/v1/me", headers={"Authorization": f"Bearer {new}"}).status_code == 401
