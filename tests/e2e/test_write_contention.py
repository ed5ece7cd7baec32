"""One tenant's big writes never make another tenant's writes fail.

A real `blohko serve --http` process: eight maximal nested course creates of producer A run in
parallel with producer B's thread writes. On SQLite writes take turns in the process
(`storage.engine.WriteGate`), so none races for the file lock and fails after the busy timeout.
"""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

import storage.engine
from storage.engine import open_store
from storage.tables import Producer
from tests.support.community_factories import new_community, new_thread
from tests.support.factories import error, make_tenant, mcp_client, ok
from tests.support.processes import cli_env, cli_json, http_server, run_cli

_LESSONS = [{"title": f"Lesson {n}", "videoUrl": f"https://youtu.be/v{n:05d}"} for n in range(200)]
_MAXIMAL_SECTIONS = [{"title": f"Section {s}", "lessons": _LESSONS} for s in range(5)]  # 1,000 lessons


def _producer_key(env: dict[str, str], name: str, email: str) -> tuple[dict, str]:
    producer = cli_json(env, "producers", "create", "--name", name, "--email", email)
    key = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "load", "--permissions", "*"
    )
    return producer, key["key"]


async def test_big_nested_creates_never_fail_another_producers_thread_writes(databases, tmp_path):
    env = cli_env(databases.new("contention"), BLOHKO_RATE_LIMIT_PER_MINUTE="0")
    run_cli(env, "db", "upgrade")
    _, key_a = _producer_key(env, "Big Writer", "big@load.example")
    producer_b, key_b = _producer_key(env, "Small Writer", "small@load.example")
    statuses_a: list[int] = []
    statuses_b: list[int] = []
    health_seconds: list[float] = []
    with http_server(env, tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=60) as http:
            b = {"Authorization": f"Bearer {key_b}"}
            community = (
                await http.post("/communities", json={"name": "Small", "slug": "small-load"}, headers=b)
            ).json()
            threads_path = f"/communities/{community['community']['id']}/threads"
            big_creates_running = True

            async def big_create(n: int) -> None:
                body = {
                    "title": f"Big {n}",
                    "slug": f"big-{n}",
                    "categoryId": "cat_web_development",
                    "sections": _MAXIMAL_SECTIONS,
                }
                response = await http.post(
                    "/courses", json=body, headers={"Authorization": f"Bearer {key_a}"}
                )
                statuses_a.append(response.status_code)

            async def small_writes() -> None:
                n = 0
                while big_creates_running or n < 10:
                    thread = {"userId": producer_b["ownerUserId"], "title": f"Thread {n}", "content": "Hello"}
                    statuses_b.append((await http.post(threads_path, json=thread, headers=b)).status_code)
                    n += 1

            async def health() -> None:
                while big_creates_running:
                    started = time.monotonic()
                    assert (await http.get(f"{server.url}/healthz")).status_code == 200
                    health_seconds.append(time.monotonic() - started)
                    await anyio.sleep(0.05)  # a health check of the real server every 50 ms

            with anyio.fail_after(20):
                async with anyio.create_task_group() as group:
                    group.start_soon(small_writes)
                    group.start_soon(health)
                    async with anyio.create_task_group() as big:
                        for n in range(8):
                            big.start_soon(big_create, n)
                    big_creates_running = False
        log = server.log()
    print(f"\nthread writes: {len(statuses_b)}, slowest /healthz: {max(health_seconds):.2f} s")
    assert statuses_a == [201] * 8, log
    assert len(statuses_b) >= 10 and set(statuses_b) == {201}, log
    assert "internal_error" not in log and "database is locked" not in log


@pytest.mark.sqlite_only
async def test_a_write_waits_its_turn_behind_a_write_that_outlasts_the_busy_timeout(
    database_url, monkeypatch
):
    # A write that found SQLite's file lock taken would give up after the busy timeout with
    # "database is locked" (500 internal_error): it queues in the process instead.
    monkeypatch.setattr(storage.engine, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    async with open_store(database_url) as store:
        tenant = await make_tenant(store, name="Patient", permissions=["*"])
        async with mcp_client(store, tenant.key) as client:
            community = await new_community(client, name="Patient", slug="patient")
            holding = anyio.Event()

            async def long_write() -> None:
                async with store.writing() as db:
                    await db.session.get(Producer, tenant.producer_id, with_for_update=True)
                    db.session.add(Producer(id="prod_long_write", name="Long write"))
                    await db.session.flush()  # SQLite's write lock is now taken
                    holding.set()
                    await anyio.sleep(1)  # hold SQLite's lock for five of the real server's busy timeouts

            async with anyio.create_task_group() as group:
                group.start_soon(long_write)
                await holding.wait()
                owner = tenant.owner_user_id
                thread = await new_thread(client, community["id"], owner, title="After the long write")
    assert thread["title"] == "After the long write"


async def test_the_reviews_20000_lesson_create_is_refused_before_it_takes_the_writer(store, tenant):
    lessons = [{"title": f"L{n}"} for n in range(200)]
    body = {
        "title": "Huge",
        "slug": "huge",
        "categoryId": "cat_web_development",
        "sections": [{"title": "S", "lessons": lessons}] * 100,
    }
    async with mcp_client(store, tenant.key) as client:
        refused = error(await client.call_tool("create_course", body))
        assert ok(await client.call_tool("list_courses", {}))["data"] == []
    assert (
        refused["error"] == "unprocessable"
        and "at most 1000 lessons in one call, got 20000" in refused["message"]
    )


@pytest.mark.sqlite_only
async def test_a_write_that_cannot_get_its_turn_in_time_is_busy_with_retry_after_and_writes_nothing(
    database_url,
):
    from tests.support.rest import http_app, rest_client

    async with open_store(database_url, write_queue_timeout=0.2) as store:
        tenant = await make_tenant(store, name="Busy", permissions=["*"])
        student = {"name": "Ada", "email": "ada@example.com"}
        async with anyio.create_task_group() as group:
            holding, release = anyio.Event(), anyio.Event()

            async def hold_the_writer() -> None:
                assert store.write_gate is not None, "a SQLite store queues its writers at its gate"
                async with store.write_gate.turn():
                    holding.set()
                    await release.wait()

            group.start_soon(hold_the_writer)
            await holding.wait()
            async with rest_client(http_app(store), tenant.key) as http:
                over_rest = await http.post("/students", json=student)
            async with mcp_client(store, tenant.key) as client:
                over_mcp = error(await client.call_tool("register_student", student))
            release.set()
        async with mcp_client(store, tenant.key) as client:
            assert ok(await client.call_tool("list_students", {}))["data"] == []
    assert over_rest.status_code == 503 and over_rest.headers["retry-after"] == "1"
    assert over_rest.json()["error"] == "busy" and over_rest.json()["retryAfter"] == 1
    assert over_mcp["error"] == "busy" and over_mcp["retryAfter"] == 1
