"""Rate limiting per key: over the limit MCP answers `rate_limited` with the wait, REST 429 with
Retry-After; a new minute opens a new window; the count holds across processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from server.mcp_app import Runtime
from server.rest import rest_routes
from storage.rate_limits import counter_for
from tests.support.factories import add_key, error, mcp_client, ok
from tools.core.ratelimit import RateLimiter


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def test_over_the_limit_mcp_answers_rate_limited_with_the_wait(store, tenant):
    clock = Clock(datetime(2026, 5, 1, 9, 0, 45, tzinfo=UTC))
    limiter = RateLimiter(per_minute=3, counter=counter_for(store))
    async with mcp_client(store, tenant.key, clock=clock, rate_limiter=limiter) as client:
        for _ in range(3):
            ok(await client.call_tool("list_students", {}))
        body = error(await client.call_tool("list_students", {}))
        clock.now += timedelta(seconds=15)  # 09:01:00, a new window
        ok(await client.call_tool("list_students", {}))
    assert body == {
        "error": "rate_limited",
        "message": "Rate limit exceeded for this API key; retry in 15 seconds",
        "retryAfter": 15,
    }


async def test_each_key_has_its_own_limit(store, tenant):
    clock = Clock(datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC))
    limiter = RateLimiter(per_minute=2, counter=counter_for(store))
    other = await add_key(store, tenant, ["*"])
    async with (
        mcp_client(store, tenant.key, clock=clock, rate_limiter=limiter) as first,
        mcp_client(store, other, clock=clock, rate_limiter=limiter) as second,
    ):
        for _ in range(2):
            ok(await first.call_tool("whoami", {}))
        assert error(await first.call_tool("whoami", {}))["error"] == "rate_limited"
        ok(await second.call_tool("whoami", {}))


async def test_over_the_limit_rest_answers_429_with_retry_after(store, tenant):
    clock = Clock(datetime(2026, 5, 1, 9, 0, 30, tzinfo=UTC))
    runtime = Runtime(
        store=store, clock=clock, rate_limiter=RateLimiter(per_minute=2, counter=counter_for(store))
    )
    app = Starlette(routes=rest_routes(runtime))
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        statuses = [(await client.get("/api/v1/students", headers=headers)).status_code for _ in range(2)]
        limited = await client.get("/api/v1/students", headers=headers)
    assert statuses == [200, 200]
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
    assert limited.json()["error"] == "rate_limited"


def test_the_default_limit_is_on_and_generous():
    from server.settings import Settings

    assert Settings(database_url="sqlite+aiosqlite:///:memory:").rate_limit_per_minute >= 600


async def test_the_count_holds_across_server_processes(store, tenant):
    """Two counters on one database stand for two processes: they share every window (in the
    database on PostgreSQL, in the file beside it on SQLite)."""
    clock = Clock(datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC))
    first = RateLimiter(per_minute=3, counter=counter_for(store))
    second = RateLimiter(per_minute=3, counter=counter_for(store))
    async with (
        mcp_client(store, tenant.key, clock=clock, rate_limiter=first) as a,
        mcp_client(store, tenant.key, clock=clock, rate_limiter=second) as b,
    ):
        ok(await a.call_tool("whoami", {}))
        ok(await b.call_tool("whoami", {}))
        ok(await a.call_tool("whoami", {}))
        refused = error(await b.call_tool("whoami", {}))
    assert json.dumps(refused).count("rate_limited") == 1
