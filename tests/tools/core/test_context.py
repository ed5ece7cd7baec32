"""tools/core/context.py: what an operation handler sees. `ctx.session` exists only for an
operation the runner opened a session for; a `fast_write` has `ctx.transaction` instead (a
`storage.direct.Transaction` on SQLite); `ctx.producer_id` refuses a caller without a producer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from storage.direct import Transaction
from storage.engine import Session, Store
from tests.support.factories import Tenant, principal_of
from tools.core.catalog import operation
from tools.core.context import OPERATOR, OperationContext, Principal, Signal
from tools.core.errors import InternalError
from tools.core.models import NoInput, OutputModel
from tools.core.permissions import Permission
from tools.core.runner import run_operation


class Seen(OutputModel):
    session: str
    transaction: str


def _what_is_open(ctx: OperationContext) -> Seen:
    """What the handler finds in `ctx.session` and `ctx.transaction`: a type's name, or the error."""
    found = {}
    for name in ("session", "transaction"):
        try:
            found[name] = type(getattr(ctx, name)).__name__
        except RuntimeError as refused:
            found[name] = f"refused: {refused}"
    return Seen(**found)


@operation(title="Probe a read", permission=Permission.STUDENTS_READ, http=None, transports=(), kind="read")
async def probe_read(ctx: OperationContext, data: NoInput) -> Seen:
    return _what_is_open(ctx)


@operation(
    title="Probe a fast read",
    permission=Permission.STUDENTS_READ,
    http=None,
    transports=(),
    kind="read",
    fast_read=True,
)
async def probe_fast_read(ctx: OperationContext, data: NoInput) -> Seen:
    return _what_is_open(ctx)


@operation(
    title="Probe a fast write",
    permission=Permission.STUDENTS_WRITE,
    http=None,
    transports=(),
    kind="write",
    fast_write=True,
)
async def probe_fast_write(ctx: OperationContext, data: NoInput) -> Seen:
    return _what_is_open(ctx)


@operation(
    title="Use a session on a fast read",
    permission=Permission.STUDENTS_READ,
    http=None,
    transports=(),
    kind="read",
    fast_read=True,
)
async def session_on_fast_read(ctx: OperationContext, data: NoInput) -> Seen:
    _ = ctx.session  # raises: a fast read has no session
    raise AssertionError("unreachable: a fast read has no session")


async def test_a_read_gets_a_session_which_is_also_its_transaction(store: Store, tenant: Tenant):
    seen = await run_operation(probe_read, {}, store=store, principal=principal_of(tenant))
    assert seen == Seen(session="Session", transaction="Session")


async def test_a_fast_read_has_neither_session_nor_transaction_and_says_why(store: Store, tenant: Tenant):
    seen = await run_operation(probe_fast_read, {}, store=store, principal=principal_of(tenant))
    assert isinstance(seen, Seen)
    assert seen.session.startswith("refused: no ORM session") and "fast_read" in seen.session
    assert seen.transaction == "refused: this operation runs in no transaction the runner opened"


async def test_a_fast_write_has_a_transaction_and_on_sqlite_no_session(store: Store, tenant: Tenant):
    seen = await run_operation(probe_fast_write, {}, store=store, principal=principal_of(tenant))
    assert isinstance(seen, Seen)
    if store.direct is not None:  # SQLite: the write runs on storage.direct's own connection
        assert seen.transaction == "Transaction"
        assert seen.session.startswith("refused: no ORM session") and "ctx.transaction" in seen.session
    else:  # PostgreSQL: a fast write's transaction is an ORM session
        assert seen == Seen(session="Session", transaction="Session")


async def test_a_handler_that_asks_a_fast_read_for_a_session_fails_with_the_reason_logged(
    store: Store, tenant: Tenant, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.ERROR, logger="blohko.operations"), pytest.raises(InternalError):
        await run_operation(session_on_fast_read, {}, store=store, principal=principal_of(tenant))
    assert "no ORM session: the operation is declared own_transactions, fast_read" in caplog.text


_NO_STORE = Store.__new__(Store)
"""A store these tests never reach: the context only carries it to the handler."""


def _context(principal: Principal, **fields) -> OperationContext:
    return OperationContext(principal=principal, store=_NO_STORE, **fields)


def test_run_in_a_session_serves_both_session_and_transaction():
    ctx = _context(OPERATOR)
    session = Session()
    ctx.run_in(session)
    assert ctx.session is session and ctx.transaction is session


def test_run_in_a_direct_transaction_serves_the_transaction_only():
    ctx = _context(OPERATOR)
    transaction = Transaction.__new__(Transaction)  # never used: only its type matters here
    ctx.run_in(transaction)
    assert ctx.transaction is transaction
    with pytest.raises(RuntimeError, match="no ORM session"):
        _ = ctx.session


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
