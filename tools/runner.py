"""Running an operation: permission, input validation, one session and one transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from storage.engine import Store
from storage.ids import utcnow
from tools.catalog import Operation
from tools.context import Clock, OperationContext, Principal
from tools.errors import BadRequest, BlohkoError, Conflict, Forbidden, InternalError, bad_request_from_validation
from tools.registry import is_visible

__all__ = ["run_operation"]

logger = logging.getLogger("blohko.operations")


def _parse_input(op: Operation, arguments: Mapping[str, Any]) -> BaseModel:
    if not isinstance(arguments, Mapping):
        raise BadRequest("Invalid input: the arguments must be a JSON object")
    try:
        return op.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise bad_request_from_validation(exc) from None


async def run_operation(
    op: Operation,
    arguments: Mapping[str, Any],
    *,
    store: Store,
    principal: Principal,
    clock: Clock = utcnow,
) -> BaseModel:
    """Run `op` for `principal`. Raises `BlohkoError`; any other failure becomes `InternalError`.

    A write runs in one transaction: it commits whole or leaves nothing behind.
    """
    if not is_visible(principal, op):
        raise Forbidden(f"This API key lacks the {op.permission} permission needed for {op.name}")
    data = _parse_input(op, arguments)
    try:
        async with (store.sessions if op.read_only else store.write_sessions)() as session:
            ctx = OperationContext(session=session, principal=principal, clock=clock)
            if op.read_only:
                return await op.handler(ctx, data)
            async with session.begin():
                return await op.handler(ctx, data)
    except BlohkoError:
        raise
    except IntegrityError:
        # A race the handler's own checks could not see; the constraint kept the data right.
        logger.info("operation %s hit a constraint", op.name, exc_info=True)
        raise Conflict("The change conflicts with existing data; reload and try again") from None
    except Exception:
        logger.exception("operation %s failed", op.name)
        raise InternalError() from None
