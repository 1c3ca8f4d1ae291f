"""A bounded property-based fuzz of the published OpenAPI schema (schemathesis + hypothesis) on loopback.

Every operation (but the endless event stream, tested on its own) gets schema-driven requests, valid and not,
from every role's token. The properties: no 5xx, every refusal is ``application/problem+json`` with the status
it is sent with, and every success is JSON or a PNG.
"""

from __future__ import annotations

import time

import pytest

EXAMPLES = 12  # per operation
BUDGET_S = 25.0  # the whole fuzz


def _check(response) -> None:
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert ctype.startswith("application/problem+json"), (response.status_code, ctype)
        assert response.json()["status"] == response.status_code
    else:
        assert ctype.startswith(("application/json", "image/png")), ctype


@pytest.mark.slow
def test_openapi_fuzz(cell, job_body):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    c = cell["c"]
    c["mes"].post("/api/v1/job-orders", json=job_body("F-1"), headers={"Idempotency-Key": "f1"})
    spec = c["viewer"].get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    deadline = time.monotonic() + BUDGET_S
    tested = 0
    seen: dict[int, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/api/v1/events" or time.monotonic() > deadline:
            continue
        role = "engineer" if op.method.upper() != "GET" or op.path.endswith("/audit") else "viewer"
        auth = {"Authorization": f"Bearer {cell['tokens'][role]}"}

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case):
            headers = {**(case.headers or {}), **run.auth}
            r = case.call(base_url=cell["url"], headers=headers, timeout=10)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            _check(r)

        run.auth = auth
        run()
        tested += 1
    assert tested >= 15, f"only {tested} operations fuzzed within {BUDGET_S} s"
    assert sum(seen.values()) >= tested * 3 and any(s < 300 for s in seen) and any(s >= 400 for s in seen), seen
    print("fuzz statuses", sorted(seen.items()))
