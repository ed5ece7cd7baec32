"""API key management: create, list and revoke keys, as operations of the catalog.

A producer session (the owner, signed in) manages its own producer's keys over REST; the
operator of the machine manages any producer's keys from the CLI, naming the producer. An API
key never manages keys. The key itself is returned once, by create; lists show its prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field

from storage import accounts as accounts_storage
from storage.tables import ApiKey
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import BadRequest, Forbidden, NotFound
from tools.core.fields import Secret
from tools.core.models import (
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    UtcDatetime,
)
from tools.core.paging import paged
from tools.core.permissions import VALID_GRANTS
from tools.core.principal import Identities
from tools.core.pseudonyms import IDENTITIES_NOTE
from tools.domains.accounts import MAX_EXPIRY_DAYS, create_api_key, revoke_api_key

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


def _known_grant(value: object) -> object:
    if isinstance(value, str) and value not in VALID_GRANTS:
        raise ValueError(f"unknown permission {value!r}; use one of: {', '.join(sorted(VALID_GRANTS))}")
    return value


if TYPE_CHECKING:
    Grant = str
else:
    # An enum in the schema, and a refusal that names the unknown permission. A type checker
    # cannot read a Literal made from a computed tuple: to it a grant is a string.
    Grant = Annotated[Literal[tuple(sorted(VALID_GRANTS))], BeforeValidator(_known_grant)]
_KEY_MANAGERS = ("session", "operator")
_PRODUCER_ID = Field(
    default=None,
    max_length=100,
    description="The session's producer (the default; any other is forbidden). Required from the CLI.",
)


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
    identities: Identities = Field(description=IDENTITIES_NOTE)


class CreatedApiKey(ApiKeyPublic):
    key: Secret = Field(description="The API key itself: shown only in this response, store it now.")


class ApiKeyResult(OutputModel):
    api_key: ApiKeyPublic


class CreatedApiKeyResult(OutputModel):
    api_key: CreatedApiKey


class CreateApiKeyInput(InputModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    producer_id: str | None = _PRODUCER_ID
    permissions: list[Grant] = Field(
        min_length=1, max_length=20, description="Grants such as `*`, `courses:*`, `students:read`."
    )
    expires_in_days: int | None = Field(
        default=None, ge=1, le=MAX_EXPIRY_DAYS, description="Omitted: never expires."
    )
    identities: Identities = Field(default="full", description=IDENTITIES_NOTE)


class ListApiKeysInput(PageQuery):
    producer_id: str | None = _PRODUCER_ID


class RevokeApiKeyInput(InputModel):
    id: str = Field(max_length=100, description="The key's id (from create or list).")


def api_key_public(api_key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(api_key, from_attributes=True)


async def _managed_producer(ctx: OperationContext, requested: str | None) -> str:
    """The producer whose keys the caller manages: a session its own (another is forbidden, whether
    it exists or not); the operator the one it names, which must exist."""
    if ctx.principal.kind == "session":
        if requested is not None and requested != ctx.principal.producer_id:
            raise Forbidden("A session manages only its own producer's API keys")
        return ctx.producer_id
    if requested is None:
        raise BadRequest("Invalid input: producerId: required: name the producer whose keys to manage")
    if await accounts_storage.get_producer(ctx.db, producer_id=requested) is None:
        raise NotFound(f"Producer {requested} not found")
    return requested


@operation(
    title="Create API key",
    name="create_api_key",
    permission=None,
    http=("POST", "/api-keys", 201),
    kind="write",
    auth=_KEY_MANAGERS,
    transports=("rest", "cli", "dashboard"),
)
async def create_key(ctx: OperationContext, data: CreateApiKeyInput) -> CreatedApiKeyResult:
    """Create an API key of the session's producer. The key itself is in this response only.
    A producerId other than the session's is forbidden."""
    made = await create_api_key(
        ctx.db,
        producer_id=await _managed_producer(ctx, data.producer_id),
        name=data.name,
        description=data.description,
        permissions=list(data.permissions),
        expires_in_days=data.expires_in_days,
        identities=data.identities,
        clock=ctx.clock,
    )
    return CreatedApiKeyResult(
        api_key=CreatedApiKey(**api_key_public(made.api_key).model_dump(), key=made.key)
    )


@operation(
    title="List API keys",
    name="list_api_keys",
    permission=None,
    http=("GET", "/api-keys"),
    kind="read",
    auth=_KEY_MANAGERS,
    transports=("rest", "cli", "dashboard"),
)
async def list_keys(ctx: OperationContext, data: ListApiKeysInput) -> Page[ApiKeyPublic]:
    """The producer's API keys, newest first, with prefix, permissions, expiry, last use and
    revocation; never the key itself. Paginated."""
    statement = accounts_storage.api_keys_query(producer_id=await _managed_producer(ctx, data.producer_id))
    return await paged(ctx.db, statement, query=data, convert=api_key_public)


@operation(
    title="Revoke API key",
    name="revoke_api_key",
    permission=None,
    http=("DELETE", "/api-keys"),
    kind="delete",
    auth=_KEY_MANAGERS,
    transports=("rest", "cli", "dashboard"),
)
async def revoke_key(ctx: OperationContext, data: RevokeApiKeyInput) -> ApiKeyResult:
    """Revoke the key `id`: it gets 401 at once, over REST and MCP. Revoking again changes nothing."""
    if ctx.principal.kind == "session":
        producer_id = ctx.producer_id
    else:  # the operator may revoke any producer's key
        found = await accounts_storage.get_api_key_by_id(ctx.db, key_id=data.id)
        if found is None:
            raise NotFound("API key not found")
        producer_id = found.producer_id
    revoked = await revoke_api_key(ctx.db, producer_id=producer_id, key_id=data.id, clock=ctx.clock)
    return ApiKeyResult(api_key=api_key_public(revoked))
