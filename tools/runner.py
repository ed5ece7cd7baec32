"""Running an operation: permission, input validation, one session and one transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.engine import Store, StoreBusy
from storage.ids import utcnow
from tools.audit import record_audit_event, target_ids
from tools.catalog import Operation
from tools.context import Clock, OperationContext, Principal
from tools.errors import (
    BadRequest,
    BlohkoError,
    Busy,
    Conflict,
    Forbidden,
    InternalError,
    bad_request_from_validation,
)
from tools.ratelimit import RateLimiter
from tools.registry import is_visible

__all__ = ["check_visible", "parse_arguments", "run_operation"]

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


def check_visible(op: Operation, principal: Principal) -> None:
    """`Forbidden` unless `principal` may call `op` (the one decision: `tools.registry.is_visible`)."""
    if not is_visible(principal, op):
        raise Forbidden(f"This API key lacks the {op.permission} permission needed for {op.name}")


async def run_operation(
    op: Operation,
    arguments: Mapping[str, Any],
    *,
    store: Store,
    principal: Principal,
    clock: Clock = utcnow,
    rate_limiter: RateLimiter | None = None,
) -> BaseModel:
    """Run `op` for `principal`. Raises `BlohkoError`; any other failure becomes `InternalError`.

    In order: the permission (the same decision that hides tools), the key's rate limit, input
    validation, then the handler in one session. A write runs in one transaction with its audit
    event: it commits whole or leaves nothing behind; a failed write is audited on its own.
    """
    if rate_limiter is not None:
        await rate_limiter.check(principal, clock)
    try:
        check_visible(op, principal)
        data = parse_arguments(op.input_model, arguments)
        return await _run_handler(op, data, arguments, store=store, principal=principal, clock=clock)
    except BlohkoError as error:
        if not op.read_only and not isinstance(error, Busy):  # a busy store gets no extra write
            await _audit_failure(op, arguments, error, store=store, principal=principal, clock=clock)
        raise


async def _run_handler(
    op: Operation, data: BaseModel, arguments: Mapping[str, Any], *, store: Store, principal: Principal, clock: Clock
) -> BaseModel:
    try:
        async with store.sessions() if op.read_only else store.write_session() as session:
            ctx = OperationContext(session=session, principal=principal, clock=clock)
            if op.read_only:
                return await op.handler(ctx, data)
            async with session.begin():
                result = await op.handler(ctx, data)
                record_audit_event(
                    session,
                    principal=principal,
                    operation_name=op.name,
                    ids=target_ids(op, arguments, result),
                    outcome="ok",
                    at=clock(),
                )
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


def _is_lock_timeout(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig)


async def _audit_failure(
    op: Operation, arguments: Mapping[str, Any], error: BlohkoError, *, store: Store, principal: Principal, clock: Clock
) -> None:
    try:
        async with store.write_session() as session, session.begin():
            record_audit_event(
                session,
                principal=principal,
                operation_name=op.name,
                ids=target_ids(op, arguments),
                outcome=error.code,
                at=clock(),
            )
    except Exception:
        # The caller's error matters more than its audit record; the log keeps the trace.
        logger.exception("could not audit a failed %s", op.name)
