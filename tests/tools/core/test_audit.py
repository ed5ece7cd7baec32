"""The audit log: every write records who, what, when and the outcome; secrets never reach it or the logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from server.logs import configure_logging
from storage.tables import AuditEvent
from tests.support.factories import add_key, course_body, error, mcp_client, ok


class SteppingClock:
    """A clock an test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def _events(store) -> list[AuditEvent]:
    async with store.sessions() as session:
        return list((await session.scalars(select(AuditEvent).order_by(col(AuditEvent.occurred_at)))).all())


async def test_a_successful_write_is_recorded_with_key_operation_targets_and_outcome(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = ok(await client.call_tool("create_course", course_body(title="Audited")))["course"]
    [event] = await _events(store)
    assert (event.key_id, event.key_name, event.operation, event.outcome) == (
        tenant.key_id,
        "test key",
        "create_course",
        "ok",
    )
    assert event.target_ids == {"categoryId": "cat_web_development", "courseId": course["id"]}
    assert event.producer_id == tenant.producer_id


async def test_a_failed_write_is_recorded_with_its_error_code_and_changes_nothing(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("register_student", {"name": "Jane", "email": "jane@example.com"}))
        body = error(
            await client.call_tool("register_student", {"name": "Jane 2", "email": "jane@example.com"})
        )
        missing = error(await client.call_tool("update_student", {"studentId": "user_missing", "name": "X"}))
    assert (body["error"], missing["error"]) == ("conflict", "not_found")
    events = await _events(store)
    assert [(e.operation, e.outcome) for e in events] == [
        ("register_student", "ok"),
        ("register_student", "conflict"),
        ("update_student", "not_found"),
    ]
    assert events[2].target_ids == {"studentId": "user_missing"}


async def test_reads_are_not_audited(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("list_students", {}))
        ok(await client.call_tool("whoami", {}))
    assert await _events(store) == []


async def test_list_audit_events_filters_by_operation_key_and_time(store, tenant):
    clock = SteppingClock(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    other_key = await add_key(store, tenant, ["students:write"])
    async with (
        mcp_client(store, tenant.key, clock=clock) as client,
        mcp_client(store, other_key, clock=clock) as other,
    ):
        ok(await client.call_tool("create_course", course_body()))
        clock.now += timedelta(hours=1)
        ok(await other.call_tool("register_student", {"name": "A", "email": "a@example.com"}))
        clock.now += timedelta(hours=1)
        ok(await client.call_tool("register_student", {"name": "B", "email": "b@example.com"}))
        everything = ok(await client.call_tool("list_audit_events", {}))
        by_operation = ok(await client.call_tool("list_audit_events", {"operation": "register_student"}))
        by_key = ok(await client.call_tool("list_audit_events", {"keyId": tenant.key_id}))
        window = ok(
            await client.call_tool(
                "list_audit_events", {"since": "2026-05-01T09:30:00Z", "until": "2026-05-01T10:30:00+00:00"}
            )
        )
        backwards = error(
            await client.call_tool(
                "list_audit_events", {"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}
            )
        )
        instant = "2026-05-01T10:00:00Z"
        empty_window = ok(await client.call_tool("list_audit_events", {"since": instant, "until": instant}))
    assert [e["operation"] for e in everything["data"]] == [
        "register_student",
        "register_student",
        "create_course",
    ]
    assert everything["data"][0]["occurredAt"] == "2026-05-01T11:00:00.000Z"
    assert everything["pagination"]["total"] == 3
    assert [e["keyId"] for e in by_operation["data"]] == [tenant.key_id, everything["data"][1]["keyId"]]
    assert [e["operation"] for e in by_key["data"]] == ["register_student", "create_course"]
    assert [e["targetIds"].get("studentId") is not None for e in window["data"]] == [True]
    assert backwards == {
        "error": "unprocessable",
        "message": "Invalid input: since, until: since must not be after until",
    }
    assert empty_window["data"] == []  # since is inclusive, until exclusive: the same instant bounds nothing


async def test_audit_events_are_private_to_their_producer(store, tenant_factory):
    a, b = await tenant_factory("A"), await tenant_factory("B")
    async with mcp_client(store, a.key) as client:
        ok(await client.call_tool("register_student", {"name": "A1", "email": "a1@example.com"}))
    async with mcp_client(store, b.key) as client:
        listed = ok(await client.call_tool("list_audit_events", {}))
        by_a_key = ok(await client.call_tool("list_audit_events", {"keyId": a.key_id}))
    assert listed["data"] == [] and by_a_key["data"] == []


@pytest.fixture
def debug_logging():
    """The logging a user gets with BLOHKO_LOG_LEVEL=DEBUG; restored afterwards."""
    root = logging.getLogger()
    saved = (
        root.level,
        list(root.handlers),
        {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict},
    )
    configure_logging("DEBUG")
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


async def test_passwords_and_keys_in_requests_never_reach_the_audit_log_or_logs(
    store, tenant, caplog, debug_logging
):
    caplog.set_level(logging.DEBUG)
    password = "Pa55word-that-is-secret"
    async with mcp_client(store, tenant.key) as client:
        ok(
            await client.call_tool(
                "register_student", {"name": "S", "email": "s@example.com", "password": password}
            )
        )
        # A careless agent pastes secrets into other fields: still nothing but ids is recorded.
        error(
            await client.call_tool(
                "register_student", {"name": tenant.key, "email": "bad", "password": password}
            )
        )
        error(await client.call_tool("update_student", {"studentId": tenant.key, "bio": password}))
    async with store.sessions() as session:
        rows = (await session.execute(select(AuditEvent.__table__))).all()
    recorded = repr(rows)
    assert len(rows) == 3
    for secret in (password, tenant.key):
        assert secret not in recorded
        assert secret not in caplog.text


def test_a_debug_level_server_logs_no_password_or_key(databases, tmp_path):
    import httpx

    from tests.support.processes import cli_env, cli_json, http_server, run_cli

    env = cli_env(databases.new("logs"), BLOHKO_LOG_LEVEL="DEBUG")
    run_cli(env, "db", "upgrade")
    producer = cli_json(env, "producers", "create", "--name", "Log Academy", "--email", "log@log.example")
    key = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "log", "--permissions", "*"
    )["key"]
    password = "Another-secret-pa55"
    with http_server(env, tmp_path / "server.log") as server:
        headers = {"Authorization": f"Bearer {key}"}
        student = {"name": "S", "email": "s@log.example", "password": password}
        assert httpx.post(f"{server.url}/api/v1/students", json=student, headers=headers).status_code == 201
        assert httpx.post(f"{server.url}/api/v1/students", json=student, headers=headers).status_code == 409
        assert httpx.get(f"{server.url}/api/v1/students/{key}", headers=headers).status_code == 404
        mcp_headers = {**headers, "Accept": "application/json, text/event-stream"}
        call = {
            "name": "register_student",
            "arguments": {"name": key, "email": "x@log.example", "password": password},
        }
        httpx.post(
            f"{server.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call},
            headers=mcp_headers,
        )
        log = server.log()
    assert "DEBUG" in log  # the server really logged at DEBUG
    assert password not in log and key not in log


async def test_a_request_full_of_extra_id_fields_leaves_a_small_record_of_declared_ids_only(store, http):
    # 10,000 extra fields named like ids, refused as unknown fields, must not land in the failure
    # record whole (1 MB each).
    body = {**course_body(), **{f"f{n:05d}Id": "x" * 80 for n in range(10_000)}}
    for _ in range(5):
        refused = await http.post("/courses", json=body)
        assert refused.status_code == 400
    [event, *_] = await _events(store)
    assert event.outcome == "bad_request"
    assert event.target_ids == {"categoryId": "cat_web_development"}
    listing = await http.get("/audit-events", params={"limit": 100})
    assert listing.status_code == 200 and len(listing.json()["data"]) == 5
    assert len(listing.content) < 5_000


async def test_an_audit_record_keeps_only_the_ids_its_operation_declares_each_bounded(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        error(
            await client.call_tool("update_student", {"studentId": "user_" + "a" * 500, "extraId": "user_x"})
        )
    [event] = await _events(store)
    assert event.target_ids == {"studentId": "[redacted]"}


async def test_a_webhook_signing_secret_pasted_into_an_id_is_not_kept(store, tenant):
    pasted = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # one without the + / = of base64 that an id refuses anyway
    )
    async with mcp_client(store, tenant.key) as client:
        error(await client.call_tool("delete_webhook", {"webhookId": pasted}))
    [event] = await _events(store)
    assert event.target_ids == {"webhookId": "[redacted]"}
