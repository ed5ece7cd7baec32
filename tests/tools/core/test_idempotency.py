"""Safe retries: a create under an idempotency key runs once; a retry with the same key
and arguments gets the first result back, over MCP (`idempotencyKey`) and REST (`Idempotency-Key`)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from server.http_app import api_document
from server.tool_listing import published_input_schema
from storage import idempotency
from storage.engine import Store
from storage.ids import utcnow
from storage.tables import AuditEvent, Course, Event, IdempotencyRecord
from tests.support.clock import Clock
from tests.support.factories import (
    PUBLIC_HOOK_URL,
    add_key,
    course_body,
    error,
    mcp_client,
    ok,
    principal_of,
    statements,
)
from tests.support.rest import bearer, example_arguments, http_app, rest_client, seed
from tools.core.runner import IDEMPOTENCY_KEY_TTL, run_operation
from tools.core.shown_once import shown_once_fields
from tools.domains.sign_ins import login
from tools.registry import TOOLS, served_over

CALLS = 50
_BY_NAME = {op.name: op for op in TOOLS}


async def _courses(store: Store, producer_id: str) -> list[Course]:
    async with store.sessions() as session:
        return list(
            (await session.scalars(select(Course).where(col(Course.producer_id) == producer_id))).all()
        )


async def _count(store: Store, model, *conditions) -> int:
    async with store.sessions() as session:
        return (
            await session.execute(select(func.count()).select_from(model).where(*conditions))
        ).scalar_one()


async def _record(store: Store, key: str) -> IdempotencyRecord | None:
    async with store.sessions() as session:
        return await session.scalar(select(IdempotencyRecord).where(col(IdempotencyRecord.key) == key))


async def _kept(store: Store, key: str) -> IdempotencyRecord:
    """The record a claimed key keeps; fails the test when there is none."""
    record = await _record(store, key)
    assert record is not None, f"no record of idempotency key {key!r}"
    return record


# ---- the acceptance test: 50 concurrent calls, one course


async def test_fifty_concurrent_create_course_calls_with_one_key_create_one_course_over_mcp(store, tenant):
    arguments = {**course_body(title="Retried"), "idempotencyKey": "order-66"}
    results: list[dict[str, Any]] = []

    async def call(client) -> None:
        results.append(ok(await client.call_tool("create_course", arguments)))

    async def calls(count: int) -> None:
        async with mcp_client(store, tenant.key) as client, anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(call, client)

    async with anyio.create_task_group() as clients:  # five clients, ten calls each, all at once
        for _ in range(5):
            clients.start_soon(calls, CALLS // 5)

    (course,) = await _courses(store, tenant.producer_id)
    assert len(results) == CALLS and all(result == results[0] for result in results)
    assert results[0]["course"]["id"] == course.id and course.title == "Retried"
    assert (
        await _count(store, Event, Event.producer_id == tenant.producer_id, Event.type == "course.created")
        == 1
    )
    audited = await _count(
        store,
        AuditEvent,
        AuditEvent.producer_id == tenant.producer_id,
        AuditEvent.operation == "create_course",
    )
    assert audited == 1  # a replay changes nothing, so it leaves no audit record


async def test_fifty_concurrent_create_course_posts_with_one_key_create_one_course_over_rest(store, tenant):
    body = course_body(title="Retried over REST")
    responses = []

    async with rest_client(http_app(store), tenant.key) as http:

        async def post() -> None:
            responses.append(
                await http.post("/courses", json=body, headers={"Idempotency-Key": "rest-order-66"})
            )

        async with anyio.create_task_group() as group:
            for _ in range(CALLS):
                group.start_soon(post)

    (course,) = await _courses(store, tenant.producer_id)
    assert {response.status_code for response in responses} == {201}, responses[0].text
    assert all(response.json() == responses[0].json() for response in responses)
    assert responses[0].json()["course"]["id"] == course.id
    assert (
        await _count(store, Event, Event.producer_id == tenant.producer_id, Event.type == "course.created")
        == 1
    )


async def _while_in_flight(
    store: Store, tenant, claim: dict[str, Any], arguments: dict[str, Any], end
) -> list[Any]:
    """Run `create_course` with `arguments` while another transaction holds `claim` (a create in
    flight under the same key: on PostgreSQL its claimed row is locked, on SQLite it holds the one
    writer's turn); `end(db)` ends that transaction: it commits when `end` returns, and rolls back
    when `end` raises `_FirstCallFailed`. The results the call got."""
    results: list[Any] = []

    async def call() -> None:
        results.append(
            await run_operation(
                _BY_NAME["create_course"], arguments, store=store, principal=principal_of(tenant)
            )
        )

    async with anyio.create_task_group() as group:
        try:
            async with store.writing() as db:
                assert (
                    await idempotency.claim_key(
                        db, caller=tenant.key_id, producer_id=tenant.producer_id, **claim
                    )
                    is None
                )
                group.start_soon(call)
                await anyio.sleep(
                    0.3
                )  # the database holds the call behind the claimed key: no event says it waits
                assert results == [], "the call did not wait for the create in flight"
                await end(db)
        except _FirstCallFailed:
            pass  # its claim rolled back with its transaction
    return results


class _FirstCallFailed(Exception):
    """Raised by an `end` of `_while_in_flight` to roll the first call's transaction back."""


async def test_a_retry_while_the_first_call_runs_waits_for_it_and_answers_its_result(store, tenant):
    # What a real keyed create keeps: its request digest and its result (replayed below under "second").
    arguments = course_body()
    await run_operation(
        _BY_NAME["create_course"],
        {**arguments, "idempotencyKey": "first"},
        store=store,
        principal=principal_of(tenant),
    )
    first = await _kept(store, "first")
    claim = {
        "key": "second",
        "operation": "create_course",
        "request_hash": first.request_hash,
        "now": first.created_at,
        "expires_at": first.expires_at,
    }

    async def succeed(db) -> None:
        await idempotency.keep_result(db, caller=tenant.key_id, key="second", result=first.result)

    (replayed,) = await _while_in_flight(
        store, tenant, claim, {**arguments, "idempotencyKey": "second"}, succeed
    )

    assert replayed.model_dump(mode="json", by_alias=True) == first.result
    assert len(await _courses(store, tenant.producer_id)) == 1


async def test_a_retry_while_the_first_call_runs_creates_after_all_when_the_first_fails(store, tenant):
    now = utcnow()
    claim = {
        "key": "in-flight",
        "operation": "create_course",
        "request_hash": "0" * 64,
        "now": now,
        "expires_at": now + IDEMPOTENCY_KEY_TTL,
    }

    async def fail(db) -> None:
        raise _FirstCallFailed  # the first call failed: its claim goes with it

    (created,) = await _while_in_flight(
        store, tenant, claim, {**course_body(), "idempotencyKey": "in-flight"}, fail
    )

    (course,) = await _courses(store, tenant.producer_id)
    assert created.course.id == course.id
    assert (await _kept(store, "in-flight")).result == created.model_dump(mode="json", by_alias=True)


# ---- what a key means


async def test_the_same_key_with_other_arguments_is_a_conflict_naming_the_key(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        first = ok(await client.call_tool("create_course", {**course_body(), "idempotencyKey": "k-1"}))
        other = error(await client.call_tool("create_course", {**course_body(), "idempotencyKey": "k-1"}))
        community = error(
            await client.call_tool(
                "create_community", {"name": "C", "slug": "c-k-1", "idempotencyKey": "k-1"}
            )
        )
        again = ok(
            await client.call_tool(
                "create_course", {**course_body(slug=first["course"]["slug"]), "idempotencyKey": "k-1"}
            )
        )

    assert other == {
        "error": "conflict",
        "message": 'idempotencyKey "k-1" was first used with other arguments; a new request needs a new key',
    }
    assert community["error"] == "conflict" and "was first used for create_course" in community["message"]
    assert again == first and len(await _courses(store, tenant.producer_id)) == 1


async def test_the_same_arguments_spelled_differently_are_the_same_request(store, tenant):
    body = course_body()
    async with mcp_client(store, tenant.key) as client:
        first = ok(await client.call_tool("create_course", {**body, "idempotencyKey": "spelled"}))
        # The fields in another order, and a default given outright: the same course.
        reordered = dict(reversed(list({**body, "sections": []}.items())))
        again = ok(await client.call_tool("create_course", {**reordered, "idempotencyKey": "spelled"}))
    assert again == first


async def test_keys_belong_to_their_api_key(store, tenant):
    other_key = await add_key(store, tenant, ["*"])
    body = course_body()
    async with mcp_client(store, tenant.key) as client:
        mine = ok(await client.call_tool("create_course", {**body, "idempotencyKey": "shared-name"}))
    async with mcp_client(store, other_key) as client:
        # Another key's "shared-name" is its own: this call runs, and meets the slug the first took.
        theirs = error(await client.call_tool("create_course", {**body, "idempotencyKey": "shared-name"}))
        own = ok(await client.call_tool("create_course", {**course_body(), "idempotencyKey": "shared-name"}))
    assert theirs["error"] == "conflict" and "slug" in theirs["message"]
    assert own["course"]["id"] != mine["course"]["id"]


async def test_keys_belong_to_their_session(store, tenant):
    tokens = [
        (await login(store, email=tenant.owner_email, password=tenant.owner_password, clock=utcnow)).token
        for _ in range(2)
    ]
    webhook = {"url": PUBLIC_HOOK_URL, "eventTypes": ["course.created"]}
    async with rest_client(http_app(store)) as http:
        first, again, other = [
            await http.post("/webhooks", json=webhook, headers={**bearer(token), "Idempotency-Key": "hook"})
            for token in (tokens[0], tokens[0], tokens[1])
        ]
    assert first.status_code == again.status_code == other.status_code == 201
    # The replay is the first answer, but for the signing secret it showed once (test_webhooks.py).
    replayed = {**again.json()["webhook"], "secret": first.json()["webhook"]["secret"]}
    assert replayed == first.json()["webhook"] and again.json()["webhook"]["secret"] is None
    assert other.json()["webhook"]["id"] != first.json()["webhook"]["id"]


async def test_a_failed_create_leaves_the_key_free_for_its_retry(store, tenant):
    body = {**course_body(), "idempotencyKey": "after-failure"}
    async with mcp_client(store, tenant.key) as client:
        taken = ok(await client.call_tool("create_course", course_body(slug=body["slug"])))["course"]
        refused = error(await client.call_tool("create_course", body))
        ok(await client.call_tool("delete_course", {"courseId": taken["id"]}))
        retried = ok(await client.call_tool("create_course", body))["course"]
    assert refused["error"] == "conflict"
    assert retried["id"] != taken["id"] and retried["slug"] == body["slug"]


async def test_an_expired_key_never_replays_and_old_records_are_pruned(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        first = ok(await client.call_tool("create_course", {**course_body(), "idempotencyKey": "old"}))
        ok(await client.call_tool("create_course", {**course_body(), "idempotencyKey": "forgotten"}))
        clock.advance(hours=24)
        # Expired: the key is free again, for other arguments too, and a new record replaces the old.
        later = ok(await client.call_tool("create_course", {**course_body(), "idempotencyKey": "old"}))
        replayed = ok(
            await client.call_tool(
                "create_course", {**course_body(slug=later["course"]["slug"]), "idempotencyKey": "old"}
            )
        )

    assert later["course"]["id"] != first["course"]["id"] and replayed == later
    assert (await _kept(store, "old")).expires_at == clock.now + IDEMPOTENCY_KEY_TTL
    assert await _record(store, "forgotten") is None  # pruned by the next claim


async def test_a_replay_reads_only_its_record(store, tenant):
    principal, create_course = principal_of(tenant), _BY_NAME["create_course"]
    arguments = {**course_body(), "idempotencyKey": "cheap"}
    first = await run_operation(create_course, arguments, store=store, principal=principal)
    with statements(store) as seen:
        again = await run_operation(create_course, arguments, store=store, principal=principal)
    queries = [statement for statement in seen if not statement.startswith("BEGIN")]
    assert again.model_dump(mode="json") == first.model_dump(
        mode="json"
    )  # the answer as sent (to the millisecond)
    # Its record, and whether what it created is still there (one primary-key lookup per table).
    assert len(queries) == 3 and all("idempotency_records" in statement for statement in queries[:2]), queries
    assert "courses.id IN" in queries[2], queries


async def test_a_replay_after_what_it_created_was_deleted_is_a_conflict_not_an_answer_naming_it(
    store, tenant
):
    """Schemathesis repeats a scenario's requests, Idempotency-Key and body alike: a replay of a
    create whose webhook a DELETE has removed since must not answer 201 naming it. Such a replay
    is a conflict naming what is gone; a replay while it stands is the first answer, and a new
    key creates anew."""
    webhook, key = {"url": PUBLIC_HOOK_URL}, {"Idempotency-Key": "a"}
    async with rest_client(http_app(store), tenant.key) as http:
        first = await http.post("/webhooks", json=webhook, headers=key)
        made = first.json()["webhook"]["id"]
        standing = await http.post("/webhooks", json=webhook, headers=key)
        deleted = await http.delete(f"/webhooks/{made}")
        gone = await http.post("/webhooks", json=webhook, headers=key)
        anew = await http.post("/webhooks", json=webhook, headers={"Idempotency-Key": "b"})
        # What held it went too: a section whose course was deleted since.
        course = (await http.post("/courses", json=course_body())).json()["course"]["id"]
        section = await http.post(
            f"/courses/{course}/sections", json={"title": "S"}, headers={"Idempotency-Key": "c"}
        )
        await http.delete(f"/courses/{course}")
        section_gone = await http.post(
            f"/courses/{course}/sections", json={"title": "S"}, headers={"Idempotency-Key": "c"}
        )
    assert (first.status_code, standing.status_code, deleted.status_code) == (201, 201, 200)
    assert standing.json()["webhook"]["id"] == made
    assert (gone.status_code, gone.json()) == (
        409,
        {
            "error": "conflict",
            "message": f'Idempotency-Key "a" created {made}, deleted since; a new request needs a new key',
        },
    )
    assert anew.status_code == 201 and anew.json()["webhook"]["id"] != made
    assert (section.status_code, section_gone.status_code) == (201, 409)
    assert section.json()["section"]["id"] in section_gone.json()["message"]


# ---- where a key is taken, and what a key may be


async def test_only_create_tools_take_an_idempotency_key(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = ok(await client.call_tool("create_course", course_body()))["course"]
        update = error(
            await client.call_tool(
                "update_course", {"courseId": course["id"], "title": "T", "idempotencyKey": "u"}
            )
        )
        listing = error(await client.call_tool("list_courses", {"idempotencyKey": "l"}))
    assert update["error"] == listing["error"] == "bad_request"
    assert "idempotencyKey" in update["message"] and "idempotencyKey" in listing["message"]


@pytest.mark.parametrize("key", ["", "x" * 201, "line\nbreak", 42])
async def test_an_idempotency_key_is_1_to_200_printable_characters(store, tenant, key):
    async with mcp_client(store, tenant.key) as client:
        refused = error(await client.call_tool("create_course", {**course_body(), "idempotencyKey": key}))
    assert refused == {
        "error": "bad_request",
        "message": "Invalid input: idempotencyKey: must be 1-200 printable characters",
    }
    assert await _courses(store, tenant.producer_id) == []


async def test_rest_takes_the_header_on_creates_only(store, tenant):
    tokens = await login(store, email=tenant.owner_email, password=tenant.owner_password, clock=utcnow)
    async with rest_client(http_app(store), tenant.key) as http:
        listing = await http.get("/courses", headers={"Idempotency-Key": "l"})
        in_body = await http.post("/courses", json={**course_body(), "idempotencyKey": "b"})
        too_long = await http.post("/courses", json=course_body(), headers={"Idempotency-Key": "x" * 201})
        new_key = await http.post(
            "/api-keys",
            json={"name": "n", "permissions": ["*"]},
            headers={**bearer(tokens.token), "Idempotency-Key": "k"},
        )
    assert (
        listing.status_code == 400
        and listing.json()["message"] == "Invalid input: Idempotency-Key: applies to create operations only"
    )
    assert (
        in_body.status_code == 400 and "idempotencyKey" in in_body.json()["message"]
    )  # REST sends it as the header
    assert too_long.json()["message"] == "Invalid input: Idempotency-Key: must be 1-200 printable characters"
    # A new API key is shown once and stored only hashed: no record may keep it for a replay.
    assert (
        new_key.status_code == 400
        and new_key.json()["message"] == "Invalid input: Idempotency-Key: create_api_key takes none"
    )
    assert await _courses(store, tenant.producer_id) == []


def test_create_tools_and_routes_publish_the_key_and_nothing_else_does():
    for op in served_over("mcp"):
        published = "idempotencyKey" in published_input_schema(op)["properties"]
        assert published is op.creates, op.name
        assert "idempotencyKey" not in op.input_schema.get("properties", {}), (
            op.name
        )  # REST documents a header
    document = api_document()
    for op in served_over("rest"):
        assert op.http_method is not None and op.http_path is not None  # served over REST
        parameters = document["paths"]["/api/v1" + op.http_path][op.http_method.lower()].get("parameters", [])
        header = {"$ref": "#/components/parameters/IdempotencyKey"} in parameters
        assert header is op.takes_idempotency_key, op.name
    assert document["components"]["parameters"]["IdempotencyKey"]["in"] == "header"


# ---- secrets an answer showed once are not kept for its replay

SHOWING_SECRETS = [op for op in TOOLS if op.takes_idempotency_key and shown_once_fields(op.output_model)]
# Arguments left out so the answer shows its secret (a student without a password gets one made).
_SO_IT_SHOWS_ONE = {"register_student": ("password",)}


def _values_at(answer: Any, path: tuple[str, ...]) -> list[Any]:
    """The values at `path` in a JSON answer (`[]`: every item of a list)."""
    if not path:
        return [answer]
    if path[0] == "[]":
        return [value for item in answer or [] for value in _values_at(item, path[1:])]
    return _values_at(answer.get(path[0]), path[1:]) if isinstance(answer, dict) else []


def test_the_creates_that_show_a_secret_are_the_ones_expected():
    assert {op.name for op in SHOWING_SECRETS} == {"create_webhook", "register_student"}


@pytest.mark.parametrize("op", SHOWING_SECRETS, ids=lambda op: op.name)
async def test_a_replayable_create_keeps_none_of_the_secrets_its_answer_showed(store, tenant, op):
    arguments = example_arguments(op, (await seed(store, tenant)).ids)
    for left_out in _SO_IT_SHOWS_ONE.get(op.name, ()):
        arguments.pop(left_out)
    answers = [
        (
            await run_operation(
                op, arguments, store=store, principal=principal_of(tenant), idempotency_key="once"
            )
        ).model_dump(mode="json", by_alias=True)
        for _ in range(2)
    ]
    first, replay = answers
    marked = [field.path for field in shown_once_fields(op.output_model)]
    secrets = [value for path in marked for value in _values_at(first, path)]
    assert secrets and all(isinstance(value, str) and value for value in secrets), first
    async with store.sessions() as session:
        [kept] = [
            str(row) for row in (await session.execute(text("SELECT * FROM idempotency_records"))).all()
        ]
    assert not any(secret in kept for secret in secrets), kept
    assert all(value is None for path in marked for value in _values_at(replay, path)), replay
    assert "shown only in the first answer" in replay["secretNote"] and first["secretNote"] is None
