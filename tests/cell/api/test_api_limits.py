"""Rate limiting (429 per caller, also for callers without a token) and the token bucket's arithmetic."""

from __future__ import annotations

import httpx
import pytest

from gluecell.cell.api.app import ApiSettings
from gluecell.cell.api.auth import add_user
from gluecell.cell.api.limits import TokenBucket

BURST = 5


@pytest.fixture
def small_app(tmp_path):
    from gluecell.cell.api.server import start_api_server

    api = start_api_server("127.0.0.1", 0, db_path=str(tmp_path / "cell.db"),
                           settings=ApiSettings(rate_per_s=0.5, burst=BURST))  # fmt: skip
    tokens = [add_user(api.app.state.db, f"u{n}", "viewer") for n in range(2)]
    try:
        with httpx.Client(base_url=api.url, timeout=10) as client:
            yield client, tokens
    finally:
        api.stop()


def test_429_per_caller_with_retry_after(small_app):
    client, (t1, t2) = small_app
    h1, h2 = {"Authorization": f"Bearer {t1}"}, {"Authorization": f"Bearer {t2}"}
    codes = [client.get("/api/v1/me", headers=h1).status_code for _ in range(BURST + 2)]
    assert codes == [200] * BURST + [429, 429]
    r = client.get("/api/v1/me", headers=h1)
    assert r.headers["content-type"] == "application/problem+json" and int(r.headers["retry-after"]) >= 1
    assert client.get("/api/v1/me", headers=h2).status_code == 200  # another caller has its own budget
    anon = [client.get("/api/v1/me").status_code for _ in range(BURST + 1)]
    assert anon == [401] * BURST + [429]  # guessing tokens is throttled too


def test_token_bucket_refills_at_its_rate():
    b = TokenBucket(rate=2.0, burst=2.0)
    assert [b.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]
    assert b.take("k", now=0.5) == 0.0 and b.take("k", now=0.5) == pytest.approx(0.5)
    assert b.take("other", now=0.5) == 0.0
