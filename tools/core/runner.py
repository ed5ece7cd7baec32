"""Running an operation: permission, input validation, its reads or its one write transaction.

Safe retries: a create that takes an idempotency key (`Operation.takes_idempotency_key`; MCP: the
`idempotencyKey` argument, REST: the `Idempotency-Key` header) claims the key for its caller
(the API key, OAuth grant or session) in its own transaction, before it writes anything
(`storage.idempotency`), and keeps its result there for a day. A retry with the same key and the
same arguments gets that result back without running again: no second resource, event or audit
record (the audit log records changes, and a replay changes nothing). A secret the first answer
showed (a field marked `Secret`) is not kept: the replay has null in its place and a `secretNote`
saying when it was shown (`tools.core.shown_once`). The same key with other
arguments is a `Conflict`. A retry that comes while the first call still runs waits for it; a
first call that failed left no record, so its retry runs afresh.

A retry after what the first call created was deleted (with what held it, too) is a `Conflict`
as well: the first answer would name something gone as if it were there. The caller learns it,
and a new key creates anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from storage import idempotency as idempotency_storage
from storage.db import Db
from storage.engine import Store
from storage.errors import ConstraintViolation
from storage.ids import utcnow
from tools.core.audit import record_audit_event, target_ids
from tools.core.catalog import Operation, may_call
from tools.core.context import (
    DEFAULT_IDEMPOTENCY_TTL,
    Clock,
    OperationContext,
    Principal,
    ProgressReporter,
    Services,
)
from tools.core.errors import (
    BadRequest,
    BlohkoError,
    Busy,
    Conflict,
    InternalError,
    NotPermitted,
    bad_request_from_validation,
)
from tools.core.events import Retention, declared_events, write_events
from tools.core.internal import store_errors_translated
from tools.core.permissions import missing
from tools.core.pseudonyms import pseudonymized_model, refuse_identity_search
from tools.core.ratelimit import RateLimiter
from tools.core.shown_once import without_secrets

__all__ = [
    "IDEMPOTENCY_ARGUMENT",
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENCY_KEY_TTL",
    "check_allowed",
    "parse_arguments",
    "run_operation",
]

logger = logging.getLogger("blohko.operations")

IDEMPOTENCY_ARGUMENT = "idempotencyKey"
"""The argument that carries an idempotency key over MCP."""
IDEMPOTENCY_KEY_TTL = DEFAULT_IDEMPOTENCY_TTL
"""How long a create's result stays replayable under its idempotency key, by default
(`Services.idempotency_ttl`: BLOHKO_IDEMPOTENCY_TTL_HOURS)."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""The REST header that carries it."""
_MAX_IDEMPOTENCY_KEY = 200

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
    raise NotPermitted(f"This API key lacks {missing(principal.grants, op.permission)} needed for {op.name}")


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
    idempotency_key: str | None = None,
) -> BaseModel:
    """Run `op` for `principal`. Raises `BlohkoError`; any other failure becomes `InternalError`.

    In order: the caller's rate limit, the permission (the same decision that hides tools), input
    validation, then the handler with its `Db`. A write runs in one transaction with its audit
    event: it commits whole or leaves nothing behind; a failed write is audited on its own. An
    operation with `own_transactions` (sign-in) opens its own and audits itself.

    `idempotency_key` is the REST header's; over MCP the key is the `idempotencyKey` argument of a
    create, taken out of `arguments` before they are validated (see the module's docstring).
    """
    if rate_limiter is not None:
        await rate_limiter.check(principal, clock)
    try:
        check_allowed(op, principal)
        if idempotency_key is not None and not op.takes_idempotency_key:
            refusal = f"{op.name} takes none" if op.creates else "applies to create operations only"
            raise BadRequest(f"Invalid input: {IDEMPOTENCY_HEADER}: {refusal}")
        # Arguments handed over whole (MCP) may carry `idempotencyKey`; a REST body, read below, may
        # not: there the key travels in the header.
        in_arguments = not callable(arguments)
        if callable(arguments):  # a caller that may not call `op` learns nothing about its input
            arguments = await arguments()
        arguments, retry = _idempotency(
            op, arguments, principal, header=idempotency_key, in_arguments=in_arguments
        )
        data = parse_arguments(op.input_model, arguments)
        ctx = OperationContext(
            principal=principal,
            clock=clock,
            store=store,
            services=services or Services(),
            client_address=client_address,
            progress=progress,
        )
        if retry is not None:
            retry = replace(retry, request_hash=_request_hash(data))
        if not principal.pseudonymous:
            return await _run_handler(op, data, arguments, ctx, retry)
        # The one place a pseudonymous caller's answers lose who the students are (`tools.core.pseudonyms`).
        refuse_identity_search(op.name, data)
        result = await _run_handler(op, data, arguments, ctx, retry)
        assert principal.key_id is not None, "a pseudonymous principal is an API key or a grant"
        return pseudonymized_model(op.output_model, result, salt=principal.key_id)
    except BlohkoError as error:
        # A busy store gets no extra write; an operation that audits itself has done so.
        if op.audited and not op.own_transactions and not isinstance(error, Busy):
            read = arguments if isinstance(arguments, Mapping) else {}
            await _audit_failure(op, read, error, store=store, principal=principal, clock=clock)
        raise


@dataclass(frozen=True)
class _Retry:
    """A create run under an idempotency key: whose key, which, and a digest of its arguments."""

    caller: str
    key: str
    named: str
    """How the caller sent the key (`idempotencyKey` or `Idempotency-Key`), for error messages."""
    request_hash: str = ""
    """`_request_hash` of the validated arguments."""


def _request_hash(data: BaseModel) -> str:
    """SHA-256 of the validated arguments as canonical JSON: a retry that spells the same input
    differently (a default left out, fields in another order) is the same request."""
    canonical = json.dumps(data.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotency(
    op: Operation,
    arguments: Mapping[str, Any],
    principal: Principal,
    *,
    header: str | None,
    in_arguments: bool,
) -> tuple[Mapping[str, Any], _Retry | None]:
    """`arguments` without an idempotency key, and the retry the key makes, if one was given.

    Only a create takes `idempotencyKey`; on any other operation it stays among the arguments,
    where the input model refuses it as an unknown field."""
    key, named = header, IDEMPOTENCY_HEADER
    if (
        in_arguments
        and op.takes_idempotency_key
        and isinstance(arguments, Mapping)
        and IDEMPOTENCY_ARGUMENT in arguments
    ):
        arguments = dict(arguments)
        key, named = arguments.pop(IDEMPOTENCY_ARGUMENT), IDEMPOTENCY_ARGUMENT
    if key is None:
        return arguments, None
    if not isinstance(key, str) or not 1 <= len(key) <= _MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise BadRequest(f"Invalid input: {named}: must be 1-{_MAX_IDEMPOTENCY_KEY} printable characters")
    # Keys are the caller's own: another API key, grant or session may use the same one freely.
    caller = principal.key_id or principal.session_id
    if caller is None:
        raise BadRequest(
            f"Invalid input: {named}: only API keys, OAuth grants and sessions can retry with one"
        )
    return arguments, _Retry(caller=caller, key=key, named=named)


async def _replay(ctx: OperationContext, op: Operation, retry: _Retry) -> BaseModel | None:
    """Claim `retry`'s key in this transaction (None: run the create), or the first result under it."""
    now = ctx.now()
    record = await idempotency_storage.claim_key(
        ctx.db,
        caller=retry.caller,
        key=retry.key,
        producer_id=ctx.producer_id,
        operation=op.name,
        request_hash=retry.request_hash,
        now=now,
        expires_at=now + ctx.services.idempotency_ttl,
    )
    if record is None:
        await idempotency_storage.prune_expired(ctx.db, now=now)
        return None
    if gone := await idempotency_storage.vanished(ctx.db, _created_ids(record.result)):
        # The first answer would name something gone, as if it were there.
        raise Conflict(
            f'{retry.named} "{retry.key}" created {", ".join(sorted(gone))}, deleted since; a new request needs a new key'
        )
    if record.operation != op.name or record.request_hash != retry.request_hash:
        first_use = "with other arguments" if record.operation == op.name else f"for {record.operation}"
        raise Conflict(
            f'{retry.named} "{retry.key}" was first used {first_use}; a new request needs a new key'
        )
    logger.info("operation %s replayed the result of idempotency key %r", op.name, retry.key)
    # A result is kept without the secrets of its marked fields; one a record still holds (kept
    # before its field was marked) is left out here.
    return op.output_model.model_validate(
        without_secrets(op.output_model, record.result, shown_at=record.created_at)
    )


def _created_ids(result: Mapping[str, Any]) -> list[str]:
    """The ids of the resources a create's stored result names: `{"webhook": {"id": ...}}`."""
    return [
        value["id"]
        for value in result.values()
        if isinstance(value, Mapping) and isinstance(value.get("id"), str)
    ]


async def _run_handler(
    op: Operation,
    data: BaseModel,
    arguments: Mapping[str, Any],
    ctx: OperationContext,
    retry: _Retry | None = None,
) -> BaseModel:
    try:
        with store_errors_translated("operation", op.name):
            return await _in_transaction(op, data, arguments, ctx, retry)
    except BlohkoError:
        raise
    except Exception:
        logger.exception("operation %s failed", op.name)
        raise InternalError() from None


async def _in_transaction(
    op: Operation, data: BaseModel, arguments: Mapping[str, Any], ctx: OperationContext, retry: _Retry | None
) -> BaseModel:
    """The handler with its reads (`Store.reading`), or a write (or an audited read) in one
    transaction with its audit record and events."""
    store = ctx.store
    if op.own_transactions:
        return await op.handler(ctx, data)
    if not op.audited:
        async with store.reading() as db:
            ctx.run_in(db)
            return await op.handler(ctx, data)
    async with store.writing() as db:
        ctx.run_in(db)
        result, queued = await _write(op, data, arguments, ctx, retry)
    if queued:  # committed: this process's delivery worker can send them now
        ctx.services.deliveries_queued.notify()
    return result


async def _write(
    op: Operation, data: BaseModel, arguments: Mapping[str, Any], ctx: OperationContext, retry: _Retry | None
) -> tuple[BaseModel, int]:
    """A write in the transaction `ctx.db` holds: the handler, its audit record and events;
    returns its result and how many webhook deliveries it queued."""
    replayed = await _replay(ctx, op, retry) if retry is not None else None
    if replayed is not None:
        return replayed, 0
    result = await op.handler(ctx, data)
    if retry is not None:
        answer = result.model_dump(mode="json", by_alias=True)
        kept = without_secrets(op.output_model, answer, shown_at=ctx.now())
        await idempotency_storage.keep_result(ctx.db, caller=retry.caller, key=retry.key, result=kept)
    ids = target_ids(op, arguments, result)
    await _record(ctx.db, op, ctx.principal, ids, outcome="ok", at=ctx.now(), result=result)
    return result, ctx.queued_deliveries + await _record_events(ctx, op, arguments, result)


async def _record_events(
    ctx: OperationContext, op: Operation, arguments: Mapping[str, Any], result: BaseModel
) -> int:
    """The events the operation declares and those its handler emitted, in this transaction;
    returns how many webhook deliveries they queued."""
    events = [*declared_events(op.events, result, arguments), *ctx.emitted]
    principal = ctx.principal
    if not events or principal.producer_id is None:
        return 0
    return await write_events(
        ctx.db,
        events,
        producer_id=principal.producer_id,
        key_id=principal.key_id,
        key_name=principal.audit_name,
        at=ctx.now(),
        retention=Retention(
            events=ctx.services.event_retention,
            deliveries=ctx.services.delivery_retention,
            audit=ctx.services.audit_retention,
        ),
    )


async def _record(
    db: Db,
    op: Operation,
    principal: Principal,
    ids: dict[str, str],
    *,
    outcome: str,
    at: datetime,
    result: BaseModel | None = None,
) -> None:
    """Audit `op` under the producer it acted for: the caller's, or for the operator the one it
    named or made. Without one (the operator's failed call naming no producer) it is only logged."""
    producer_id = principal.producer_id or ids.get("producerId") or _producer_of(result)
    if producer_id is None:
        logger.info(
            "operation %s by the %s: %s (no producer to audit under)", op.name, principal.kind, outcome
        )
        return
    await record_audit_event(
        db,
        principal=principal,
        producer_id=producer_id,
        operation_name=op.name,
        ids=ids,
        outcome=outcome,
        at=at,
    )


def _producer_of(result: BaseModel | None) -> str | None:
    """The producer a result belongs to: `{"apiKey": {"producerId": ...}}` or `{"producer": {"id": ...}}`."""
    if result is None:
        return None
    for name, value in result:  # a model iterates as (field name, value)
        if isinstance(value, BaseModel):
            if name == "producer":
                return getattr(value, "id", None)
            if isinstance(producer_id := getattr(value, "producer_id", None), str):
                return producer_id
    return None


async def _audit_failure(
    op: Operation,
    arguments: Mapping[str, Any],
    error: BlohkoError,
    *,
    store: Store,
    principal: Principal,
    clock: Clock,
) -> None:
    try:
        async with store.writing() as db:
            await _record(db, op, principal, target_ids(op, arguments), outcome=error.code, at=clock())
    except ConstraintViolation:
        # The operator's call named a producer that does not exist (`blohko keys create --producer
        # <typo>`): no audit log to write to, and the caller's error already says so.
        logger.info(
            "operation %s by the %s: %s (its producer does not exist: not audited)",
            op.name,
            principal.kind,
            error.code,
        )
    except Exception:
        # The caller's error matters more than its audit record; the log keeps the trace.
        logger.exception("could not audit a failed %s", op.name)
