"""`change_password`: the signed-in owner changes the password, and every other session ends.

Like sign-in it manages its own transactions (through `tools.core.internal`, under the runner's
transaction and error rules), so the two slow password hashes (checking the current one, hashing
the new one) run outside any transaction and never hold SQLite's writer. A password change is a
security event: it audits itself, also when the current password is wrong.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from storage import accounts as accounts_storage
from storage import owner_password as owner_password_storage
from storage.db import Db
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import BadRequest, NotFound
from tools.core.internal import audit_security_event, reading, writing
from tools.core.models import InputModel, OutputModel
from tools.core.passwords import hash_password, verify_password

__all__ = ["ChangePasswordInput", "ChangePasswordResult", "change_password"]

_MIN_LENGTH = 8
_MAX_LENGTH = 1024


class ChangePasswordInput(InputModel):
    current_password: str = Field(min_length=1, max_length=_MAX_LENGTH)
    new_password: str = Field(
        min_length=_MIN_LENGTH, max_length=_MAX_LENGTH, description=f"At least {_MIN_LENGTH} characters."
    )

    @model_validator(mode="after")
    def _changes(self) -> ChangePasswordInput:
        if self.new_password == self.current_password:
            raise ValueError("newPassword must differ from the current password")
        return self


class ChangePasswordResult(OutputModel):
    password_changed: Literal[True] = True
    other_sessions_ended: int


@operation(
    title="Change password",
    name="change_password",
    permission=None,
    http=None,
    kind="write",
    idempotent=False,
    auth=("session",),
    transports=("dashboard",),
    own_transactions=True,  # the password hashes outside any transaction
)
async def change_password(ctx: OperationContext, data: ChangePasswordInput) -> ChangePasswordResult:
    """Change the signed-in owner's password (the current one is required). Every other session of
    the owner ends at once; this one stays signed in."""
    principal = ctx.principal
    async with reading(ctx.store, "change_password") as db:
        owner = await accounts_storage.get_user(
            db, producer_id=ctx.producer_id, user_id=principal.user_id or "", role="owner"
        )
    if owner is None:
        raise NotFound("The signed-in owner no longer exists")
    if not await verify_password(owner.password_hash, data.current_password):
        async with writing(ctx.store, "change_password") as db:
            await _audit(db, ctx, outcome="bad_request")
        raise BadRequest("Invalid input: currentPassword: is not the current password")
    new_hash = await hash_password(data.new_password)
    async with writing(ctx.store, "change_password") as db:
        now = ctx.now()
        await owner_password_storage.set_password_hash(
            db, producer_id=ctx.producer_id, user_id=owner.id, password_hash=new_hash, at=now
        )
        ended = await owner_password_storage.end_other_sessions(
            db, user_id=owner.id, keep_session_id=principal.session_id, at=now
        )
        await _audit(db, ctx, outcome="ok")
    return ChangePasswordResult(other_sessions_ended=ended)


async def _audit(db: Db, ctx: OperationContext, *, outcome: str) -> None:
    await audit_security_event(
        db,
        name="change_password",
        producer_id=ctx.producer_id,
        principal=ctx.principal,
        ids={"userId": ctx.principal.user_id or ""},
        outcome=outcome,
        at=ctx.now(),
    )
