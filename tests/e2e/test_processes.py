"""End to end with real processes: the CLI creates a producer and a key, `blohko serve` serves it
over stdio (driven by the SDK's stdio client) and over HTTP (a real server on a loopback port)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from storage.engine import open_store
from storage.ids import utcnow
from storage.tables import ApiKey
from tests.support.factories import ok
from tests.support.mcp_http import mcp_post
from tests.support.processes import BLOHKO, cli_json, http_server, run_cli, upgraded_env
from tools.domains.accounts import create_api_key, revoke_api_key


# One database, producer and HTTP server for the module: every process start costs seconds.
@pytest.fixture(scope="module")
def env(databases):
    return upgraded_env(databases.new("e2e"))


@pytest.fixture(scope="module")
def producer(env):
    return cli_json(
        env,
        "producers",
        "create",
        "--name",
        "E2E Academy",
        "--email",
        "owner@e2e.example",
        "--password",
        "owner-pass-1",
    )


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    with http_server(env, tmp_path_factory.mktemp("logs") / "http.log") as running:
        yield running


def _create_key(env, producer, *permissions: str) -> dict:
    """A key made through the library on the same database (the CLI path is tested on its own)."""

    async def create() -> dict:
        async with (
            open_store(env["BLOHKO_DATABASE_URL"]) as store,
            store.writing() as db,
        ):
            made = await create_api_key(
                db, producer_id=producer["id"], name="e2e", permissions=list(permissions), clock=utcnow
            )
        return {"id": made.api_key.id, "key": made.key}

    return anyio.run(create) if not _in_event_loop() else _run_in_thread(create)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_thread(coroutine_function):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, coroutine_function).result()


def _revoke(env, key_id: str) -> None:
    async def revoke() -> None:
        async with (
            open_store(env["BLOHKO_DATABASE_URL"]) as store,
            store.writing() as db,
        ):
            key = await db.session.get(ApiKey, key_id)
            assert key is not None, f"no API key {key_id}"
            producer_id = key.producer_id
            await revoke_api_key(db, producer_id=producer_id, key_id=key_id, clock=utcnow)

    anyio.run(revoke) if not _in_event_loop() else _run_in_thread(revoke)


def _expire(env, key_id: str) -> None:
    async def expire() -> None:
        async with (
            open_store(env["BLOHKO_DATABASE_URL"]) as store,
            store.writing() as db,
        ):
            key = await db.session.get(ApiKey, key_id)
            assert key is not None, f"no API key {key_id}"
            key.expires_at = datetime.now(UTC) - timedelta(days=1)

    anyio.run(expire) if not _in_event_loop() else _run_in_thread(expire)


def test_cli_json_outputs_are_one_object_each(env):
    producer = cli_json(env, "producers", "create", "--name", "CLI Academy", "--email", "cli@e2e.example")
    assert producer["generatedPassword"]
    key = cli_json(
        env,
        "keys",
        "create",
        "--producer",
        producer["id"],
        "--name",
        "e2e",
        "--permissions",
        "students:*",
        "courses:read",
    )
    assert producer["id"].startswith("prod_") and producer["ownerUserId"].startswith("user_")
    assert key["key"].startswith("blk_") and key["id"].startswith("key_")
    assert key["permissions"] == ["students:*", "courses:read"]
    listed = cli_json(env, "keys", "list", "--producer", producer["id"])["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    revoked = cli_json(env, "keys", "revoke", key["id"])
    assert revoked["revokedAt"] is not None


def test_cli_refuses_an_unknown_permission_with_one_line(env, producer):
    done = run_cli(
        env,
        "keys",
        "create",
        "--producer",
        producer["id"],
        "--name",
        "x",
        "--permissions",
        "courses:delete",
        check=False,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert "unknown permission 'courses:delete'" in done.stderr


def _stdio(env, key: str | None) -> Client:
    extra = {"BLOHKO_API_KEY": key} if key else {}
    server_env = {**env, **extra}
    return Client(StdioServerParameters(command=BLOHKO, args=["serve"], env=server_env))


async def test_stdio_server_lists_tools_registers_and_fetches_a_student(env, producer):
    key = _create_key(env, producer, "students:*")["key"]
    async with _stdio(env, key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        created = ok(
            await client.call_tool("register_student", {"name": "Jane Smith", "email": "jane@example.com"})
        )
        fetched = ok(await client.call_tool("get_student", {"studentId": created["student"]["id"]}))
    assert names == {
        "whoami",
        "parse_video",
        "register_student",
        "list_students",
        "get_student",
        "update_student",
        "export_student",
        "erase_student",
        "get_school_report",  # its students part
    }
    assert fetched["student"] == {**created["student"], "streak": {"current": 0, "longest": 0}}


@pytest.mark.parametrize("problem", ["missing", "unknown", "expired", "revoked"])
def test_stdio_server_exits_with_one_line_for_a_bad_key(env, producer, problem):
    import subprocess

    key = _create_key(env, producer, "*")
    value = {"missing": None, "unknown": "blk_" + "x" * 43}.get(problem, key["key"])
    if problem == "expired":
        _expire(env, key["id"])
    if problem == "revoked":
        _revoke(env, key["id"])
    server_env = {**env, **({"BLOHKO_API_KEY": value} if value else {})}
    done = subprocess.run(
        [BLOHKO, "serve"], env=server_env, check=False, capture_output=True, text=True, timeout=60, input=""
    )
    assert done.returncode != 0
    assert done.stdout == ""  # nothing served
    lines = [line for line in done.stderr.splitlines() if line.startswith("blohko:")]
    assert len(lines) == 1
    expected = {
        "missing": "Missing API key",
        "unknown": "Invalid API key",
        "expired": "expired",
        "revoked": "revoked",
    }
    assert expected[problem] in lines[0]


@asynccontextmanager
async def _http_client(url: str, key: str):
    """The SDK's streamable HTTP client sending `key` as a bearer token."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_http_server_lists_tools_registers_and_fetches_a_student(env, producer, server):
    key = _create_key(env, producer, "*")["key"]
    async with _http_client(server.url, key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        created = ok(
            await client.call_tool(
                "register_student", {"name": "Jane Http", "email": "jane-http@example.com"}
            )
        )
        fetched = ok(await client.call_tool("get_student", {"studentId": created["student"]["id"]}))
    assert {"whoami", "register_student", "get_student"} <= names
    assert fetched["student"] == {**created["student"], "streak": {"current": 0, "longest": 0}}


def test_http_server_answers_401_for_missing_invalid_expired_and_revoked_keys(env, producer, server):
    expired, revoked = _create_key(env, producer, "*"), _create_key(env, producer, "*")
    _expire(env, expired["id"])
    _revoke(env, revoked["id"])
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    cases = {
        "missing": None,
        "malformed": "Basic abc",
        "unknown": "Bearer blk_" + "y" * 43,
        "expired": f"Bearer {expired['key']}",
        "revoked": f"Bearer {revoked['key']}",
    }
    for case, authorization in cases.items():
        sent = {**headers, **({"Authorization": authorization} if authorization else {})}
        response = httpx.post(f"{server.url}/mcp", json=init, headers=sent, timeout=10)
        assert response.status_code == 401, case
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
        assert response.json()["error"] == "unauthorized", case


async def test_http_key_revoked_while_in_use_is_refused_at_once(env, producer, server):
    key = _create_key(env, producer, "*")
    async with _http_client(server.url, key["key"]) as client:
        ok(await client.call_tool("whoami", {}))
        run_cli(env, "keys", "revoke", key["id"])  # through the CLI: another process, same database
        async with httpx.AsyncClient() as http:
            raw = await mcp_post(
                http, key["key"], "tools/call", {"name": "whoami", "arguments": {}}, url=f"{server.url}/mcp"
            )
    assert raw.status_code == 401 and raw.json()["message"] == "This API key has been revoked"


def test_healthz_needs_no_key(server):
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


def test_dns_rebinding_protection_refuses_a_foreign_host_header(env, producer, server):
    key = _create_key(env, producer, "*")["key"]
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {key}",
        "Host": "evil.example:80",
        "Origin": "http://evil.example",
    }
    response = httpx.post(f"{server.url}/mcp", json=init, headers=headers, timeout=10)
    assert response.status_code in (403, 421)
