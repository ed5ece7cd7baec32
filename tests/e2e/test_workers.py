"""`blohko serve --http --workers 2`: one real supervisor and two worker processes on one port, on
the run's engine (an SQLite file, or a PostgreSQL database), behave as one server.

Which worker answered a request is read from `/proc` (`tests.support.processes.answering_worker`:
the worker holding the server's end of the connection), so the server carries nothing for tests.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import col

from storage.engine import open_store
from storage.tables import Course
from tests.support.databases import ENGINE, sqlite_path
from tests.support.factories import DEFAULT_CATEGORY_ID
from tests.support.mcp_http import call_tool
from tests.support.processes import (
    Server,
    answering_worker,
    cli_env,
    cli_json,
    cli_producer_and_key,
    connections_per_worker,
    http_server,
    run_cli,
    wait_workers,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, which Linux has")

OWNER_PASSWORD = "workers-owner-1"
DRAIN_SECONDS = 10
_JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@dataclass
class Platform:
    env: dict[str, str]
    producer: dict
    key: str

    def new_key(self, name: str) -> dict:
        """A new full-access key of the producer, made through the CLI: its id and secret."""
        return cli_json(
            self.env,
            "keys",
            "create",
            "--producer",
            self.producer["id"],
            "--name",
            name,
            "--permissions",
            "*",
        )

    def workers_server(self, log_path: Path, **settings: str) -> Iterator[Server]:
        with http_server({**self.env, **settings}, log_path, workers=2) as server:
            yield server


@pytest.fixture(scope="module")
def platform(databases) -> Platform:
    """A fresh database of the run's engine with a producer and a full-access key."""
    env = cli_env(databases.new("workers"), BLOHKO_RATE_LIMIT_PER_MINUTE="0")
    run_cli(env, "db", "upgrade")
    producer, key = cli_producer_and_key(
        env, "*", name="Workers Academy", email="owner@workers.example", password=OWNER_PASSWORD
    )
    return Platform(env=env, producer=producer, key=key)


@pytest.fixture(scope="module")
def server(platform, tmp_path_factory) -> Iterator[Server]:
    """`blohko serve --http --workers 2` on the platform, shared by the tests that leave it running."""
    yield from platform.workers_server(tmp_path_factory.mktemp("workers") / "server.log")


@pytest.fixture
def own_server(platform, tmp_path) -> Iterator[Server]:
    """A server of the test's own, for a test that kills or stops it."""
    yield from platform.workers_server(tmp_path / "server.log", BLOHKO_DRAIN_SECONDS=str(DRAIN_SECONDS))


# ---- requests on a connection that stays with one worker


def _send(
    connection: http.client.HTTPConnection, method: str, path: str, *, body=None, token: str | None = None
) -> tuple[int, dict]:
    headers = {**_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"null")


def _close(pinned: dict[int, http.client.HTTPConnection]) -> None:
    for connection in pinned.values():
        connection.close()


# ---- MCP tool calls over HTTP


async def _all_pages(http: httpx.AsyncClient, url: str, key: str, name: str, arguments: dict) -> list[dict]:
    rows: list[dict] = []
    page = 1
    while True:
        listed = await call_tool(http, url, key, name, {**arguments, "page": page, "limit": 100})
        rows += listed["data"]
        if not listed["pagination"]["hasMore"]:
            return rows
        page += 1


async def _all_events(http: httpx.AsyncClient, url: str, key: str) -> list[dict]:
    events: list[dict] = []
    cursor = None
    while True:
        page = await call_tool(
            http, url, key, "list_events", {"limit": 100, **({"cursor": cursor} if cursor else {})}
        )
        events += page["data"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


# ---- the tests


def test_two_worker_processes_answer_on_one_port(server):
    pinned = wait_workers(server, 2)
    try:
        assert len(pinned) == 2 and set(pinned) == server.worker_pids()
        assert server.process.pid not in pinned  # the supervisor serves nothing itself
        for pid, connection in pinned.items():
            assert _send(connection, "GET", "/healthz") == (200, {"status": "ok", "database": "ok"})
            assert answering_worker(server, connection) == pid  # the connection stayed with its worker
    finally:
        _close(pinned)
    assert "Started parent process" in server.log()


def test_a_key_revoked_through_one_worker_is_refused_by_the_other_at_once(server, platform):
    doomed = platform.new_key("doomed")
    pinned = wait_workers(server, 2)
    try:
        (first, through_first), (second, through_second) = pinned.items()
        # The second worker verifies the key, and keeps it (`storage.credentials`).
        assert _send(through_second, "GET", "/api/v1/students", token=doomed["key"])[0] == 200
        status, login = _send(
            through_first,
            "POST",
            "/api/v1/auth/login",
            body={"email": "owner@workers.example", "password": OWNER_PASSWORD},
        )
        assert status == 200, login
        revoked = _send(
            through_first, "DELETE", f"/api/v1/api-keys?id={doomed['id']}", token=login["session"]["token"]
        )
        refused = _send(through_second, "GET", "/api/v1/students", token=doomed["key"])
        refused_mcp = _send(
            through_second,
            "POST",
            "/mcp",
            body={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            token=doomed["key"],
        )
        answered_by = {answering_worker(server, through_first), answering_worker(server, through_second)}
    finally:
        _close(pinned)
    assert revoked[0] == 200, revoked
    assert refused == (401, {"error": "unauthorized", "message": "This API key has been revoked"})
    assert refused_mcp[0] == 401
    assert answered_by == {first, second}  # each request went where the test meant it to


def test_a_keys_rate_limit_counts_its_calls_through_every_worker_once(platform, tmp_path):
    """`BLOHKO_RATE_LIMIT_PER_MINUTE` holds for the server, not per worker: the calls a key makes
    through both workers share one count (on SQLite in the file beside the database, on
    PostgreSQL in the database)."""
    limit = 6
    key = platform.new_key("limited")["key"]
    servers = platform.workers_server(tmp_path / "server.log", BLOHKO_RATE_LIMIT_PER_MINUTE=str(limit))
    server = next(servers)
    try:
        if time.time() % 60 > 40:  # the calls below must fall in one minute's window
            time.sleep(61 - time.time() % 60)  # (before the connections: a keep-alive one idles out in 5 s)
        pinned = wait_workers(server, 2)
        try:
            answers = [
                (pid, _send(connection, "GET", "/api/v1/students", token=key)[0])
                for _ in range(limit)
                for pid, connection in pinned.items()
            ]
        finally:
            _close(pinned)
    finally:
        servers.close()
    assert [status for _, status in answers] == [200] * limit + [429] * limit, answers
    assert {pid for pid, status in answers if status == 200} == set(pinned)  # both workers counted


async def test_200_concurrent_writes_across_workers_all_kept_one_certificate_gapless_events(server, platform):
    key, url = platform.key, server.url
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        lessons = [{"title": f"L{n}"} for n in range(25)]
        course = (
            await call_tool(
                http,
                url,
                key,
                "create_course",
                {
                    "title": "Burst",
                    "slug": "burst-course",
                    "categoryId": DEFAULT_CATEGORY_ID,
                    "sections": [{"title": "S", "lessons": lessons}],
                },
            )
        )["course"]
        lesson_ids = [lesson["id"] for lesson in course["sections"][0]["lessons"]]
        student = (
            await call_tool(
                http, url, key, "register_student", {"name": "Burst", "email": "burst@workers.example"}
            )
        )["student"]
        enrollment = (
            await call_tool(
                http, url, key, "enroll_student", {"studentId": student["id"], "courseId": course["id"]}
            )
        )["enrollment"]
        community = (await call_tool(http, url, key, "create_community", {"name": "Burst", "slug": "burst"}))[
            "community"
        ]
        before = await _all_events(http, url, key)
        threads: list[str] = []
        progress: list[dict] = []

        async def write(n: int) -> None:
            if n % 2:
                arguments = {
                    "communityId": community["id"],
                    "title": f"Thread {n}",
                    "content": "Written in a burst.",
                    "userId": platform.producer["ownerUserId"],
                }
                threads.append((await call_tool(http, url, key, "create_thread", arguments))["thread"]["id"])
            else:
                arguments = {
                    "enrollmentId": enrollment["id"],
                    "lessonId": lesson_ids[n // 2 % 25],
                    "completed": True,
                }
                progress.append(await call_tool(http, url, key, "update_progress", arguments))

        async with anyio.create_task_group() as burst:
            for n in range(200):
                burst.start_soon(write, n)
        held = connections_per_worker(server)  # the burst's connections, still open

        listed = await _all_pages(http, url, key, "list_threads", {"communityId": community["id"]})
        final = (await call_tool(http, url, key, "get_enrollment", {"enrollmentId": enrollment["id"]}))[
            "enrollment"
        ]
        certificates = await _all_pages(http, url, key, "list_certificates", {"studentId": student["id"]})
        events = (await _all_events(http, url, key))[len(before) :]
    assert len(held) == 2 and all(count > 0 for count in held.values()), held  # both workers served the burst
    assert len(threads) == 100 and len(progress) == 100  # every write was acknowledged
    assert {thread["id"] for thread in listed} == set(threads)
    assert final["progress"] == {"completedLessons": 25, "totalLessons": 25, "percent": 100}
    assert len(certificates) == 1
    sequences = [event["sequence"] for event in before + events]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))  # no gap, no repeat
    assert sorted(event["data"]["id"] for event in events if event["type"] == "thread.created") == sorted(
        threads
    )
    assert [event["type"] for event in events].count("certificate.issued") == 1
    assert "internal_error" not in server.log()


async def test_a_killed_worker_is_replaced_and_no_acknowledged_write_is_lost(own_server, platform):
    server, key = own_server, platform.key
    victim = min(server.worker_pids())
    acknowledged: list[str] = []
    failed: list[str] = []
    killed_at = None
    async with httpx.AsyncClient(timeout=60) as http:
        community = (
            await call_tool(http, server.url, key, "create_community", {"name": "Kill", "slug": "kill"})
        )["community"]

        async def writer(n: int) -> None:
            count = 0
            while killed_at is None or len(acknowledged) < killed_at + 40:
                arguments = {
                    "communityId": community["id"],
                    "title": f"Writer {n}, thread {count}",
                    "content": "Before, while and after a worker is killed.",
                    "userId": platform.producer["ownerUserId"],
                }
                count += 1
                try:
                    thread = (await call_tool(http, server.url, key, "create_thread", arguments))["thread"]
                except httpx.TransportError as error:  # on the killed worker's connections: not acknowledged
                    failed.append(type(error).__name__)
                    continue
                acknowledged.append(thread["id"])

        with anyio.fail_after(120):
            async with anyio.create_task_group() as writers:
                for n in range(8):
                    writers.start_soon(writer, n)
                while len(acknowledged) < 40:
                    await anyio.sleep(0.02)
                os.kill(victim, signal.SIGKILL)
                killed_at = len(acknowledged)
                while len(server.worker_pids() - {victim}) < 2:
                    await anyio.sleep(0.1)  # the supervisor looks twice a second
        replacement = server.worker_pids() - {victim}
        pinned = await anyio.to_thread.run_sync(wait_workers, server, 2)
        _close(pinned)
        listed = await _all_pages(http, server.url, key, "list_threads", {"communityId": community["id"]})
    assert victim not in set(pinned) and set(pinned) == replacement  # the replacement answers
    kept = {thread["id"] for thread in listed}
    # Every acknowledged write is kept; a write whose answer the kill cut off may be kept or not.
    assert set(acknowledged) <= kept and len(kept - set(acknowledged)) <= len(failed)
    assert f"worker {victim} ended (exit status -9): starting another" in server.log()
    print(f"\n{len(acknowledged)} acknowledged writes, {len(failed)} cut by the kill: {sorted(set(failed))}")


@asynccontextmanager
async def _course_writes_held(url: str) -> AsyncIterator[None]:
    """Another connection holds what creating a course needs until the block ends: SQLite's write
    lock (`BEGIN IMMEDIATE`), or on PostgreSQL a lock of the courses table that admits reads only."""
    if ENGINE == "sqlite":
        other = sqlite3.connect(sqlite_path(url), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("COMMIT")
            other.close()
        return
    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE courses IN EXCLUSIVE MODE")
            yield
    finally:
        await connection.close()


async def test_sigterm_drains_a_request_in_flight_and_stops_every_process(own_server, platform):
    server, key, url = own_server, platform.key, platform.env["BLOHKO_DATABASE_URL"]
    workers = server.worker_pids()
    pinned = await anyio.to_thread.run_sync(wait_workers, server, 2)
    _, connection = next(iter(pinned.items()))
    course = {"title": "In flight", "slug": "in-flight", "categoryId": DEFAULT_CATEGORY_ID}
    answer: list[tuple[int, dict]] = []

    def create() -> None:
        answer.append(_send(connection, "POST", "/api/v1/courses", body=course, token=key))

    in_flight = threading.Thread(target=create)
    async with _course_writes_held(url):
        in_flight.start()
        await anyio.sleep(0.5)  # the request has reached its worker, and waits for the lock
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await anyio.sleep(1)  # every worker is shutting down meanwhile
        still_in_flight = in_flight.is_alive()
    await anyio.to_thread.run_sync(in_flight.join, 30)
    await anyio.to_thread.run_sync(server.process.wait, DRAIN_SECONDS + 15)
    stopped_in = time.monotonic() - started
    _close(pinned)
    log = server.log()
    assert still_in_flight and "Waiting for connections to close" in log, log
    assert answer and answer[0][0] == 201, answer  # drained: the request in flight was answered
    assert server.process.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert stopped_in < DRAIN_SECONDS + 15
    async with open_store(url) as store, store.sessions() as session:
        kept = (await session.execute(select(col(Course.id)).where(col(Course.slug) == "in-flight"))).all()
    assert [row[0] for row in kept] == [answer[0][1]["course"]["id"]]
    print(f"\nstopped in {stopped_in:.2f} s after SIGTERM, of which 1 s the request waited for the lock")


def test_a_second_server_with_workers_on_the_same_port_is_refused(server, platform):
    # The workers' sockets share the port (SO_REUSEPORT); another server setting it too would join
    # them silently, were the port not checked first with a plain socket.
    done = run_cli(platform.env, "serve", "--http", "--port", str(server.port), "--workers", "2", check=False)
    refusal = (
        f"blohko: port {server.port} on 127.0.0.1 is already in use (another server, or another blohko): "
        "choose another with --port N or BLOHKO_PORT=N"
    )
    assert done.returncode == 1 and done.stderr.splitlines() == [refusal]
