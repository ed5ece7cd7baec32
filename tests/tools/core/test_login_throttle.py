"""The login throttle, bounded password hashing and audited sign-ins."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import anyio
import httpx
from sqlalchemy import select
from sqlmodel import col

import tools.core.passwords
from server.http_app import create_http_app
from server.mcp_app import Runtime
from server.settings import Settings
from storage.engine import open_store
from storage.tables import AuditEvent
from tests.support.rest import API, rest_client
from tools.core.context import Services
from tools.core.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _app(store, *, clock=None, **throttle):
    runtime = Runtime(store=store, services=Services(login_throttle=LoginThrottle(**throttle)))
    if clock is not None:
        runtime.clock = clock
    return create_http_app(Settings(database_url=store.url), runtime)


async def _sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/auth/login", json={"email": email, "password": password})


async def test_the_sixth_failure_for_an_account_in_15_minutes_gets_429_with_retry_after(store, tenant):
    clock = Clock()
    async with rest_client(_app(store, clock=clock)) as http:
        failures = []
        for _ in range(5):
            failures.append((await _sign_in(http, tenant.owner_email, "wrong-password")).status_code)
            clock.now += timedelta(minutes=1)
        throttled = await _sign_in(http, tenant.owner_email, tenant.owner_password)  # even the right password
        clock.now += timedelta(minutes=10, seconds=1)  # the first failure is now 15 minutes old
        again = await _sign_in(http, tenant.owner_email, tenant.owner_password)
    assert failures == [401] * 5
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == str(10 * 60) == str(throttled.json()["retryAfter"])
    assert (
        throttled.json()["error"] == "rate_limited"
        and "Too many failed sign-ins" in throttled.json()["message"]
    )
    assert again.status_code == 200


async def test_unknown_emails_are_throttled_like_known_ones(store):
    async with rest_client(_app(store)) as http:
        statuses = [
            (await _sign_in(http, "nobody@example.com", "whatever-password")).status_code for _ in range(6)
        ]
    assert statuses == [401] * 5 + [429]


async def test_a_client_address_has_its_own_larger_budget_across_accounts(store, tenant):
    async with rest_client(_app(store, per_address=8)) as http:
        statuses = [
            (await _sign_in(http, f"guess-{n}@example.com", "wrong-password")).status_code for n in range(9)
        ]
        owner = await _sign_in(http, tenant.owner_email, tenant.owner_password)
    assert statuses == [401] * 8 + [429]
    assert owner.status_code == 429  # the address, not the account, is out of budget
    transport = httpx.ASGITransport(app=_app(store, per_address=8), client=("10.1.2.3", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=API) as elsewhere:
        assert (await _sign_in(elsewhere, tenant.owner_email, tenant.owner_password)).status_code == 200


async def test_a_right_password_resets_the_account_count(store, tenant):
    async with rest_client(_app(store)) as http:
        first = [(await _sign_in(http, tenant.owner_email, "wrong-password")).status_code for _ in range(4)]
        assert (await _sign_in(http, tenant.owner_email, tenant.owner_password)).status_code == 200
        second = [(await _sign_in(http, tenant.owner_email, "wrong-password")).status_code for _ in range(6)]
    assert first == [401] * 4
    assert second == [401] * 5 + [429]


async def test_concurrent_attempts_cannot_spend_more_than_the_account_budget(store, tenant):
    statuses: list[int] = []
    async with rest_client(_app(store)) as http:

        async def attempt() -> None:
            statuses.append((await _sign_in(http, tenant.owner_email, "wrong-password")).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(attempt)
    assert sorted(statuses) == [401] * 5 + [429] * 25


async def test_the_count_is_kept_in_the_database_so_another_process_sees_it(store, tenant, database_url):
    async with rest_client(_app(store)) as http:
        for _ in range(5):
            assert (await _sign_in(http, tenant.owner_email, "wrong-password")).status_code == 401
    async with open_store(database_url) as other_process, rest_client(_app(other_process)) as other:
        assert (await _sign_in(other, tenant.owner_email, tenant.owner_password)).status_code == 429


async def test_sign_ins_on_an_owner_account_are_audited_without_the_password(store, tenant):
    async with rest_client(_app(store)) as http:
        assert (await _sign_in(http, tenant.owner_email, "wrong-password-123")).status_code == 401
        signed_in = await _sign_in(http, tenant.owner_email, tenant.owner_password)
        assert (await _sign_in(http, "stranger@example.com", "wrong-password-123")).status_code == 401
    async with store.sessions() as session:
        events = (await session.scalars(select(AuditEvent).order_by(col(AuditEvent.occurred_at)))).all()
    assert [(e.operation, e.outcome, e.producer_id) for e in events] == [
        ("login", "unauthorized", tenant.producer_id),
        ("login", "ok", tenant.producer_id),
    ]
    assert events[0].target_ids == {"userId": tenant.owner_user_id}
    assert events[1].target_ids == {
        "userId": tenant.owner_user_id,
        "sessionId": signed_in.json()["session"]["id"],
    }
    recorded = repr([(e.target_ids, e.key_name, e.operation) for e in events])
    assert "wrong-password-123" not in recorded and tenant.owner_password not in recorded


async def test_no_more_password_hashes_run_at_once_than_the_limit(monkeypatch):
    running = peak = 0
    lock = threading.Lock()
    real = tools.core.passwords._hasher

    class CountingHasher:
        def hash(self, password: str) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)  # a hash takes time in its thread, so the others overlap it if they may
            with lock:
                running -= 1
            return real.hash(password)

    monkeypatch.setattr(tools.core.passwords, "_hasher", CountingHasher())
    tools.core.passwords.limit_concurrent_hashes(2)
    async with anyio.create_task_group() as group:
        for n in range(12):
            group.start_soon(tools.core.passwords.hash_password, f"password-{n}")
    assert peak == 2


async def test_40_concurrent_failed_sign_ins_keep_a_real_server_under_400_mb(databases, tmp_path):
    # Production argon2 cost (64 MiB a hash): 40 unbounded concurrent hashes would take 2.5 GiB.
    from tests.support.processes import cli_env, cli_json, http_server, run_cli

    env = cli_env(databases.new("login-load"))
    run_cli(env, "db", "upgrade")
    cli_json(
        env,
        "producers",
        "create",
        "--name",
        "Load",
        "--email",
        "owner@load.example",
        "--password",
        "owner-pass-1",
    )
    with http_server(env, tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=120) as http:
            statuses: list[int] = []

            async def attempt(email: str) -> None:
                statuses.append((await _sign_in(http, email, "wrong-password")).status_code)

            async with anyio.create_task_group() as group:
                for n in range(40):
                    group.start_soon(attempt, f"stranger-{n}@load.example")
            owner = [
                (await _sign_in(http, "owner@load.example", "wrong-password")).status_code for _ in range(6)
            ]
        peak_mb = server.peak_rss_mb()
    print(f"\npeak RSS after 40 concurrent failed sign-ins: {peak_mb:.0f} MB")
    assert statuses == [401] * 40
    assert owner == [401] * 5 + [429]
    assert peak_mb < 400
