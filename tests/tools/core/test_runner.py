"""tools/core/runner.py: the pipeline every call goes through, MCP, REST and CLI alike.

In order: the caller's rate limit, the permission, the arguments (a REST body is read only once
the caller may call the operation), then the handler in one transaction with its audit record.
Errors the handler raises are the caller's answer; anything else becomes an internal error that
says nothing of its cause. A create retried under its idempotency key answers the first result.
The audit log's own contents are tests/tools/core/test_audit.py's, idempotency at length
tests/tools/core/test_idempotency.py's."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from storage.engine import Store
from storage.rate_limits import counter_for
from storage.tables import AuditEvent, Course, Producer
from tests.support.factories import Tenant, course_body, principal_of
from tools.core.catalog import operation
from tools.core.context import OperationContext, Principal
from tools.core.errors import BadRequest, Conflict, InternalError, NotFound, NotPermitted, RateLimited
from tools.core.models import InputModel, NoInput, OutputModel
from tools.core.permissions import Permission
from tools.core.ratelimit import RateLimiter
from tools.core.runner import run_operation
from tools.registry import OPERATIONS_BY_NAME

handled: list[str] = []
"""The probes' handlers note each run here."""


@pytest.fixture(autouse=True)
def _forget_runs():
    handled.clear()


class Named(InputModel):
    name: str


class Done(OutputModel):
    done: bool = True


@operation(title="Probe write", permission=Permission.STUDENTS_WRITE, http=None, transports=(), kind="write")
async def probe_write(ctx: OperationContext, data: Named) -> Done:
    handled.append(data.name)
    if data.name == "missing":
        raise NotFound("Student not found")
    if data.name == "leave a producer, then fail":
        ctx.db.session.add(Producer(id="prod_left_behind", name="Left behind"))
        await ctx.db.session.flush()
        raise NotFound("Student not found")
    if data.name == "duplicate":
        ctx.db.session.add(Producer(id=ctx.producer_id, name="A second producer with the same id"))
        await ctx.db.session.flush()
    if data.name == "crash":
        raise RuntimeError("connection string postgres://admin:hunter2@db")
    return Done()


@operation(title="Probe read", permission=Permission.STUDENTS_READ, http=None, transports=(), kind="read")
async def probe_read(ctx: OperationContext, data: NoInput) -> Done:
    handled.append("read")
    return Done()


def _without_grants(tenant: Tenant) -> Principal:
    return Principal(producer_id=tenant.producer_id, key_id=tenant.key_id, key_name="narrow", grants=())


async def _audited(store: Store) -> list[tuple[str, str]]:
    async with store.sessions() as session:
        rows = await session.scalars(select(AuditEvent).order_by(col(AuditEvent.occurred_at)))
        return [(row.operation, row.outcome) for row in rows]


async def test_the_rate_limit_comes_first_even_before_the_permission(store: Store, tenant: Tenant):
    exhausted = RateLimiter(per_minute=0, counter=counter_for(store))
    with pytest.raises(RateLimited):
        await run_operation(
            probe_write, {"name": "x"}, store=store, principal=_without_grants(tenant), rate_limiter=exhausted
        )
    assert handled == [] and await _audited(store) == []


async def test_the_permission_is_checked_before_the_arguments_are_validated(store: Store, tenant: Tenant):
    with pytest.raises(NotPermitted, match="lacks the students:write permission needed for probe_write"):
        await run_operation(probe_write, {"unknown": 1}, store=store, principal=_without_grants(tenant))
    assert handled == []


async def test_a_body_is_read_only_once_the_caller_may_call_the_operation(store: Store, tenant: Tenant):
    reads: list[str] = []

    async def body() -> Mapping[str, Any]:
        reads.append("read")
        return {"name": "from the body"}

    with pytest.raises(NotPermitted):
        await run_operation(probe_write, body, store=store, principal=_without_grants(tenant))
    assert reads == []
    await run_operation(probe_write, body, store=store, principal=principal_of(tenant))
    assert (reads, handled) == (["read"], ["from the body"])


async def test_a_caller_of_a_kind_the_operation_does_not_admit_is_refused_by_kind(
    store: Store, tenant: Tenant
):
    session = Principal(
        producer_id=tenant.producer_id,
        key_id=None,
        key_name=None,
        grants=("*",),
        kind="session",
        session_id="s",
    )
    with pytest.raises(NotPermitted, match="probe_write cannot be called this way"):
        await run_operation(probe_write, {"name": "x"}, store=store, principal=session)


async def test_invalid_arguments_never_reach_the_handler_and_the_refusal_names_the_field(
    store: Store, tenant: Tenant
):
    with pytest.raises(BadRequest, match="name"):
        await run_operation(probe_write, {}, store=store, principal=principal_of(tenant))
    not_an_object: Any = ["name"]  # what a client may send: any JSON
    with pytest.raises(BadRequest, match="the arguments must be a JSON object"):
        await run_operation(probe_write, not_an_object, store=store, principal=principal_of(tenant))
    assert handled == []


async def test_a_write_is_audited_whether_it_succeeds_or_fails_and_a_read_is_not(
    store: Store, tenant: Tenant
):
    principal = principal_of(tenant)
    await run_operation(probe_write, {"name": "fine"}, store=store, principal=principal)
    with pytest.raises(NotFound):
        await run_operation(probe_write, {"name": "missing"}, store=store, principal=principal)
    with pytest.raises(BadRequest):
        await run_operation(probe_write, {"name": 7}, store=store, principal=principal)
    await run_operation(probe_read, {}, store=store, principal=principal)
    assert handled == ["fine", "missing", "read"]
    assert await _audited(store) == [
        ("probe_write", "ok"),
        ("probe_write", "not_found"),
        ("probe_write", "bad_request"),
    ]


async def test_a_write_that_fails_leaves_nothing_it_wrote(store: Store, tenant: Tenant):
    with pytest.raises(NotFound):
        await run_operation(
            probe_write, {"name": "leave a producer, then fail"}, store=store, principal=principal_of(tenant)
        )
    async with store.sessions() as session:
        assert await session.get(Producer, "prod_left_behind") is None


async def test_a_constraint_the_handler_did_not_foresee_is_a_conflict(store: Store, tenant: Tenant):
    with pytest.raises(Conflict, match="conflicts with existing data"):
        await run_operation(probe_write, {"name": "duplicate"}, store=store, principal=principal_of(tenant))
    assert await _audited(store) == [("probe_write", "conflict")]


async def test_an_unexpected_exception_is_an_internal_error_that_does_not_leak_its_text(
    store: Store, tenant: Tenant, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.ERROR, logger="blohko.operations"), pytest.raises(InternalError) as raised:
        await run_operation(probe_write, {"name": "crash"}, store=store, principal=principal_of(tenant))
    assert raised.value.to_body() == {
        "error": "internal_error",
        "message": "An internal error occurred; it has been logged.",
    }
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert "hunter2" in caplog.text  # the log keeps the cause for the operator
    assert await _audited(store) == [("probe_write", "internal_error")]


async def test_a_create_retried_under_its_idempotency_key_answers_the_first_result_without_running_again(
    store: Store, tenant: Tenant
):
    create_course = OPERATIONS_BY_NAME["create_course"]
    body = course_body()
    first = await run_operation(
        create_course, body, store=store, principal=principal_of(tenant), idempotency_key="retry-1"
    )
    again = await run_operation(
        create_course, body, store=store, principal=principal_of(tenant), idempotency_key="retry-1"
    )
    assert again.model_dump(mode="json") == first.model_dump(mode="json")
    async with store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Course)) == 1
    assert await _audited(store) == [("create_course", "ok")]


async def test_only_a_create_takes_an_idempotency_key(store: Store, tenant: Tenant):
    with pytest.raises(BadRequest, match="Idempotency-Key: applies to create operations only"):
        await run_operation(
            probe_write, {"name": "x"}, store=store, principal=principal_of(tenant), idempotency_key="k"
        )
    assert handled == []
