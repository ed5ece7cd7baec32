"""tools/core/context.py: what an operation handler sees. `ctx.db` is the one way to the data: a
read's (no session until a storage function asks for one) or a write's one transaction; an
operation that takes its own transactions has none; `ctx.producer_id` refuses a caller without a
producer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select
from sqlmodel import col

from storage.engine import Store
from storage.statements import PreparedQuery
from storage.tables import Producer
from tests.support.databases import ENGINE
from tests.support.factories import Tenant, principal_of
from tools.core.catalog import operation
from tools.core.context import OPERATOR, OperationContext, Principal, Signal
from tools.core.errors import InternalError
from tools.core.models import NoInput, OutputModel
from tools.core.permissions import Permission
from tools.core.runner import run_operation

_PRODUCER_NAME = PreparedQuery(
    select(col(Producer.name).label("name")).where(col(Producer.id) == bindparam("producer_id"))
)


class Seen(OutputModel):
    writes: bool
    session_before: bool
    session_after_compiled_read: bool
    name: str


async def _look(ctx: OperationContext) -> Seen:
    """What the handler's `ctx.db` is: a write or not, and whether a session was opened before and
    after one compiled read (`Db.first`)."""
    db = ctx.db
    before = db.opened_session is not None
    row = await db.first(_PRODUCER_NAME, producer_id=ctx.producer_id)
    assert row is not None
    return Seen(
        writes=db.writes,
        session_before=before,
        session_after_compiled_read=db.opened_session is not None,
        name=row["name"],
    )


@operation(title="Probe a read", permission=Permission.STUDENTS_READ, http=None, transports=(), kind="read")
async def probe_read(ctx: OperationContext, data: NoInput) -> Seen:
    return await _look(ctx)


@operation(
    title="Probe a write", permission=Permission.STUDENTS_WRITE, http=None, transports=(), kind="write"
)
async def probe_write(ctx: OperationContext, data: NoInput) -> Seen:
    return await _look(ctx)


@operation(
    title="Use db in its own transactions",
    permission=Permission.STUDENTS_READ,
    http=None,
    transports=(),
    kind="read",
    own_transactions=True,
)
async def db_in_own_transactions(ctx: OperationContext, data: NoInput) -> Seen:
    _ = ctx.db  # raises: this operation opens its own transactions
    raise AssertionError("unreachable: an operation with its own transactions has no db")


async def test_a_read_gets_a_read_db_that_opens_no_session_for_compiled_reads(store: Store, tenant: Tenant):
    seen = await run_operation(probe_read, {}, store=store, principal=principal_of(tenant))
    assert seen == Seen(
        writes=False, session_before=False, session_after_compiled_read=False, name="Acme Academy"
    )


async def test_a_write_gets_its_transaction_and_on_sqlite_opens_no_session_for_compiled_statements(
    store: Store, tenant: Tenant
):
    seen = await run_operation(probe_write, {}, store=store, principal=principal_of(tenant))
    # On PostgreSQL a write's transaction is its session's; on SQLite the writer's connection's.
    in_a_session = ENGINE == "postgresql"
    assert seen == Seen(
        writes=True,
        session_before=in_a_session,
        session_after_compiled_read=in_a_session,
        name="Acme Academy",
    )


async def test_an_operation_with_its_own_transactions_has_no_db_and_the_reason_is_logged(
    store: Store, tenant: Tenant, caplog
):
    caplog.set_level(logging.ERROR, logger="blohko.operations")
    with pytest.raises(InternalError):
        await run_operation(db_in_own_transactions, {}, store=store, principal=principal_of(tenant))
    assert "no db: the operation is declared own_transactions" in caplog.text


_NO_STORE = Store.__new__(Store)
"""A store these tests never reach: the context only carries it to the handler."""


def _context(principal: Principal, **fields) -> OperationContext:
    return OperationContext(principal=principal, store=_NO_STORE, **fields)


def test_producer_id_is_the_callers_and_refused_for_a_caller_without_one():
    caller = Principal(producer_id="prod_1", key_id="key_1", key_name="k", grants=("*",))
    assert _context(caller).producer_id == "prod_1"
    with pytest.raises(RuntimeError, match="the caller names none"):
        _ = _context(OPERATOR).producer_id


def test_now_reads_the_clock_it_was_given():
    moment = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)
    assert _context(OPERATOR, clock=lambda: moment).now() == moment


async def test_report_progress_goes_to_the_caller_who_asked_and_is_silent_otherwise():
    heard: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        heard.append((done, total, message))

    await _context(OPERATOR, progress=progress).report_progress(3, 10, "three of ten")
    await _context(OPERATOR).report_progress(4, 10)  # nobody asked: nothing to hear, nothing raised
    assert heard == [(3, 10, "three of ten")]


def test_emit_collects_the_events_the_handler_announces():
    ctx = _context(OPERATOR)
    ctx.emit("course.published", {"id": "course_1"})
    [emitted] = ctx.emitted
    assert (emitted.type, emitted.data) == ("course.published", {"id": "course_1"})


def test_a_signal_calls_its_listeners_until_they_unsubscribe():
    signal, calls = Signal(), []
    stop = signal.subscribe(lambda: calls.append("woken"))
    signal.notify()
    stop()
    signal.notify()
    assert calls == ["woken"]
