"""API key management for a producer session: create, list, revoke.

Only a producer session (the owner, logged in) manages keys, never an API key, and only
its own producer's keys. The key itself is returned once, by create; lists show its prefix.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from storage import accounts as store
from storage.engine import Store
from storage.queries import fetch_page
from storage.tables import ApiKey
from tools.accounts import MAX_EXPIRY_DAYS, create_api_key, revoke_api_key
from tools.context import Clock
from tools.errors import Forbidden
from tools.models import InputModel, OutputModel, Page, PageQuery, UtcDatetime, page_of
from tools.permissions import VALID_GRANTS
from tools.sessions import SessionPrincipal

__all__ = [
    "ApiKeyPublic",
    "ApiKeyResult",
    "CreateApiKeyInput",
    "CreatedApiKeyResult",
    "RevokeApiKeyInput",
    "api_key_public",
    "create_key",
    "list_keys",
    "revoke_key",
]

Grant = Literal[tuple(sorted(VALID_GRANTS))]  # type: ignore[valid-type]


class ApiKeyPublic(OutputModel):
    id: str
    producer_id: str
    name: str
    description: str | None
    prefix: str = Field(description="The key's first characters, to recognise it; never the whole key.")
    permissions: list[str]
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class CreatedApiKey(ApiKeyPublic):
    key: str = Field(description="The API key itself: shown only in this response, store it now.")


class ApiKeyResult(OutputModel):
    api_key: ApiKeyPublic


class CreatedApiKeyResult(OutputModel):
    api_key: CreatedApiKey


class CreateApiKeyInput(InputModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    producer_id: str | None = Field(
        default=None, max_length=100, description="The session's producer (the default); any other is forbidden."
    )
    permissions: list[Grant] = Field(min_length=1, max_length=20, description="Grants such as `*`, `courses:*`, `students:read`.")
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRY_DAYS, description="Omitted: never expires.")


class RevokeApiKeyInput(InputModel):
    id: str = Field(max_length=100, description="The key's id (from create or list).")


def api_key_public(api_key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(api_key, from_attributes=True)


async def create_key(db: Store, principal: SessionPrincipal, data: CreateApiKeyInput, *, clock: Clock) -> CreatedApiKeyResult:
    """A new key of the session's producer; `Forbidden` for another producer, whether it exists or not."""
    if data.producer_id is not None and data.producer_id != principal.producer_id:
        raise Forbidden("A session manages only its own producer's API keys")
    async with db.write_session() as session, session.begin():
        made = await create_api_key(
            session,
            producer_id=principal.producer_id,
            name=data.name,
            description=data.description,
            permissions=list(data.permissions),
            expires_in_days=data.expires_in_days,
            clock=clock,
        )
    return CreatedApiKeyResult(api_key=CreatedApiKey(**api_key_public(made.api_key).model_dump(), key=made.key))


async def list_keys(db: Store, principal: SessionPrincipal, data: PageQuery) -> Page[ApiKeyPublic]:
    """The session's producer's keys, newest first, revoked and expired ones included. Paginated."""
    async with db.sessions() as session:
        statement = store.api_keys_query(producer_id=principal.producer_id)
        rows, total = await fetch_page(session, statement, offset=data.offset, limit=data.limit)
    return Page[ApiKeyPublic](**page_of([api_key_public(row) for row in rows], query=data, total=total))


async def revoke_key(db: Store, principal: SessionPrincipal, data: RevokeApiKeyInput, *, clock: Clock) -> ApiKeyResult:
    """Revoke a key of the session's producer at once (`NotFound` for any other id). Idempotent."""
    async with db.write_session() as session, session.begin():
        revoked = await revoke_api_key(session, producer_id=principal.producer_id, key_id=data.id, clock=clock)
    return ApiKeyResult(api_key=api_key_public(revoked))
