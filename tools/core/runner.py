"""Running an operation: permission, input validation, one session and one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.engine import Store, StoreBusy
from storage.ids import utcnow
from tools.core.audit import record_audit_event, target_ids
from tools.core.catalog import Operation, may_call
from tools.core.context import Clock, OperationContext, Principal, ProgressReporter, Services
from tools.core.errors import (
    BadRequest,
    BlohkoError,
    Busy,
    Conflict,
    InternalError,
    NotPermitted,
    bad_request_from_validation,
)
from tools.core.events import declared_events, write_events
from tools.core.ratelimit import RateLimiter

__all__ = ["check_allowed", "parse_arguments", "run_operation"]

logger = logging.getLogger("blohko.operations")

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_arguments(model: type[ModelT], arguments: Mapping[str, Any]) -> ModelT:
    """`arguments` as a `model`, or one `BadRequest` naming every offending field."""
    if not isinstance(arguments, Mapping):
        raise BadRequest("Invalid input: the arguments must be a JSON object")
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        raise bad_request_from_validation(exc) from None


def check_allowed(op: Operation, principal: Principal) -> None:
    """`Forbidden` unless `principal` may call `op`: the one place a permission is decided
    (`tools.core.catalog.may_call`). Transports only translate the refusal: MCP answers
    "unknown tool", REST 403."""
    if may_call(principal, op):
        return
    if principal.kind not in op.auth:
        raise NotPermitted(f"{op.name} cannot be called this way")
    raise NotPermitted(f"This API key lacks the {op.permission} permission needed for {op.name}")


Arguments = Mapping[str, Any] | Callable[[], Awaitable[Mapping[str, Any]]]
"""An operation's arguments, or how to read them (a REST body): read only once the caller may call it."""


async def run_operation(
    op: Operation,
    arguments: Arguments,
    *,
    store: Store,
    principal: Principal,
    clock: Clock = utcnow,
    rate_limiter: RateLimiter | None = None,
    services: Services | None = None,
    client_address: str | None = None,
    progress: ProgressReporter | None = None,
) -> BaseModel:
    """Run `op` for `principal`. Raises `BlohkoError`; any other failure becomes `InternalError`.

    In order: the caller's rate limit, the permission (the same decision that hides tools), input
    validation, then the handler in one session. A write runs in one transaction with its audit
    event: it commits whole or leaves nothing behind; a failed write is audited on its own. An
    operation with `own_transactions` (sign-in) opens its own and audits itself.
    """
    if rate_limiter is not None:
        await rate_limiter.check(principal, clock)
    try:
        check_allowed(op, principal)
        if callable(arguments):  # a caller that may not call `op` learns nothing about its input
            arguments = await arguments()
        data = parse_arguments(op.input_model, arguments)
        ctx = OperationContext(
            session=None,
            principal=principal,
            clock=clock,
            store=store,
            services=services or Services(),
            client_address=client_address,
            progress=progress,
        )
        return await _run_handler(op, data, arguments, ctx)
    except BlohkoError as error:
        # A busy store gets no extra write; an operation that audits itself has done so.
        if not op.read_only and not op.own_transactions and not isinstance(error, Busy):
            read = arguments if isinstance(arguments, Mapping) else {}
            await _audit_failure(op, read, error, store=store, principal=principal, clock=clock)
        raise


async def _run_handler(op: Operation, data: BaseModel, arguments: Mapping[str, Any], ctx: OperationContext) -> BaseModel:
    store, principal = ctx.store, ctx.principal
    try:
        if op.own_transactions:
            return await op.handler(ctx, data)
        async with store.sessions() if op.read_only else store.write_session() as session:
            ctx.session = session
            if op.read_only:
                return await op.handler(ctx, data)
            async with session.begin():
                result = await op.handler(ctx, data)
                ids = target_ids(op, arguments, result)
                _record(session, op, principal, ids, outcome="ok", at=ctx.now(), result=result)
                queued = ctx.queued_deliveries + await _record_events(ctx, op, arguments, result)
            if queued:  # committed: this process's delivery worker can send them now
                ctx.services.deliveries_queued.notify()
            return result
    except BlohkoError:
        raise
    except IntegrityError:
        # A race the handler's own checks could not see; the constraint kept the data right.
        logger.info("operation %s hit a constraint", op.name, exc_info=True)
        raise Conflict("The change conflicts with existing data; reload and try again") from None
    except StoreBusy as busy:
        logger.warning("operation %s refused: %s", op.name, busy.reason)
        raise Busy(busy.retry_after) from None
    except OperationalError as exc:
        if not _is_lock_timeout(exc):
            logger.exception("operation %s failed", op.name)
            raise InternalError() from None
        # Another process (a CLI command, a second server on the same file) held SQLite's lock
        # past the busy timeout. The transaction rolled back whole.
        logger.warning("operation %s: the database stayed locked past the busy timeout", op.name)
        raise Busy(retry_after=1) from None
    except Exception:
        logger.exception("operation %s failed", op.name)
        raise InternalError() from None


async def _record_events(ctx: OperationContext, op: Operation, arguments: Mapping[str, Any], result: BaseModel) -> int:
    """The events the operation declares and those its handler emitted, in this transaction;
    returns how many webhook deliveries they queued."""
    events = [*declared_events(op.events, result, arguments), *ctx.emitted]
    if not events or ctx.principal.producer_id is None:
        return 0
    principal = ctx.principal
    return await write_events(
        ctx.session, events, producer_id=principal.producer_id, key_id=principal.key_id, key_name=principal.audit_name,
        at=ctx.now(), retention=ctx.services.event_retention,
    )


def _is_lock_timeout(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig)


def _record(
    session, op: Operation, principal: Principal, ids: dict[str, str], *, outcome: str, at, result: BaseModel | None = None
) -> None:
    """Audit `op` under the producer it acted for: the caller's, or for the operator the one it
    named or made. Without one (the operator's failed call naming no producer) it is only logged."""
    producer_id = principal.producer_id or ids.get("producerId") or _producer_of(result)
    if producer_id is None:
        logger.info("operation %s by the %s: %s (no producer to audit under)", op.name, principal.kind, outcome)
        return
    record_audit_event(session, principal=principal, producer_id=producer_id, operation_name=op.name, ids=ids, outcome=outcome, at=at)


def _producer_of(result: BaseModel | None) -> str | None:
    """The producer a result belongs to: `{"apiKey": {"producerId": ...}}` or `{"producer": {"id": ...}}`."""
    if result is None:
        return None
    for name, value in result:  # a model iterates as (field name, value)
        if isinstance(value, BaseModel):
            if name == "producer":
                return getattr(value, "id", None)
            if isinstance(getattr(value, "producer_id", None), str):
                return value.producer_id
    return None


async def _audit_failure(
    op: Operation, arguments: Mapping[str, Any], error: BlohkoError, *, store: Store, principal: Principal, clock: Clock
) -> None:
    try:
        async with store.write_session() as session, session.begin():
            _record(session, op, principal, target_ids(op, arguments), outcome=error.code, at=clock())
    except Exception:
        # The caller's error matters more than its audit record; the log keeps the trace.
        logger.exception("could not audit a failed %s", op.name)
