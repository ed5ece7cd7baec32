"""Recording the audit log: every write operation records who, what, when and the outcome.

Recorded by `tools.core.runner` for every operation that is not read-only: in the operation's own
transaction when it succeeds (so the event and the change commit together), in a transaction
of its own when it fails. Only ids are kept, never argument values: no secret, password or
content can reach the log.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from storage import audit as audit_storage
from storage.db import Db
from tools.core.catalog import Operation
from tools.core.context import Principal

__all__ = ["declared_id_fields", "record_audit_event", "record_sign_in", "target_ids"]

_MAX_ID_LENGTH = 100
_MAX_IDS = 8
"""No operation names more ids than this; whatever a request holds, a record stays small."""
_ID = re.compile(r"[A-Za-z0-9_-]+")
# Secrets have recognisable prefixes (API keys, producer sessions, webhook signing secrets); an agent that pastes one into
# an id field must not get it written to the log.
_SECRET_PREFIXES = ("blk_", "bls_", "blo_", "blr_", "whsec_")


def _loggable_id(value: str) -> str:
    if value.startswith(_SECRET_PREFIXES) or len(value) > _MAX_ID_LENGTH or not _ID.fullmatch(value):
        return "[redacted]"
    return value


@functools.cache
def declared_id_fields(input_model: type[BaseModel]) -> tuple[str, ...]:
    """The wire names of `input_model`'s id arguments (`id`, `courseId`, ...): the only argument
    names an audit record takes, so a request's extra fields never reach the log."""
    aliases = (field.alias or name for name, field in input_model.model_fields.items())
    return tuple(alias for alias in aliases if alias == "id" or alias.endswith("Id"))


def target_ids(op: Operation, arguments: Any, result: BaseModel | None = None) -> dict[str, str]:
    """The ids an operation named or created: `courseId` from its declared id arguments, and for a
    result such as `{"course": {"id": ...}}` the new `courseId` (`{"deleted": true, "id": ...}` gives
    `id`). Values that do not look like ids are redacted; at most `_MAX_IDS` are kept."""
    ids: dict[str, str] = {}
    if isinstance(arguments, Mapping):
        for name in declared_id_fields(op.input_model):
            value = arguments.get(name)
            if isinstance(value, str):
                ids[name] = _loggable_id(value)
    if result is not None:
        for name, field in type(result).model_fields.items():
            value = getattr(result, name)
            wire_name = field.alias or name
            if isinstance(value, BaseModel) and isinstance(value_id := getattr(value, "id", None), str):
                ids.setdefault(f"{wire_name}Id", _loggable_id(value_id))
            elif wire_name == "id" and isinstance(value, str):
                ids.setdefault("id", _loggable_id(value))
    return dict(list(ids.items())[:_MAX_IDS])


async def record_audit_event(
    db: Db,
    *,
    principal: Principal,
    producer_id: str,
    operation_name: str,
    ids: dict[str, str],
    outcome: str,
    at: datetime,
) -> None:
    """Record an operation `principal` ran for `producer_id`."""
    await audit_storage.insert_audit_event(
        db,
        producer_id=producer_id,
        occurred_at=at,
        key_id=principal.key_id,
        key_name=principal.audit_name,
        operation=operation_name,
        target_ids=ids,
        outcome=outcome,
    )


async def record_sign_in(
    db: Db, *, producer_id: str, user_id: str, session_id: str | None, outcome: str, at: datetime
) -> None:
    """Record a sign-in attempt on a producer's owner account (no key: the person signed in).

    `outcome` is "ok" or the error code; never the password, which an audit record has no place for.
    """
    ids = {"userId": user_id} | ({"sessionId": session_id} if session_id else {})
    await audit_storage.insert_audit_event(
        db,
        producer_id=producer_id,
        occurred_at=at,
        key_id=None,
        key_name=None,
        operation="login",
        target_ids=ids,
        outcome=outcome,
    )
