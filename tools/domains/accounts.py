"""Producers and API keys: created from the CLI or a producer session, never by an API key.

Key format: `blk_` + 32 random bytes, url-safe. Only its SHA-256 and a short display
prefix are stored; the key itself is returned once, by `create_api_key`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from storage import accounts as accounts_storage
from storage.db import Db
from storage.engine import Store
from storage.errors import ConstraintViolation, DatabaseFailed
from storage.ids import new_id
from storage.rules import is_email
from storage.tables import OWNER_EMAIL_INDEX, ApiKey, Producer, User
from tools.core.context import Clock, Principal
from tools.core.errors import BadRequest, Conflict, NotFound
from tools.core.internal import writing_if_free
from tools.core.passwords import generate_password, hash_password
from tools.core.permissions import normalize_grants
from tools.core.principal import Identities
from tools.domains.api_key_check import KEY_PREFIX, check_key_shape, hash_api_key, principal_of_key_row

__all__ = [
    "KEY_PREFIX",
    "NewApiKey",
    "NewProducer",
    "authenticate_api_key",
    "create_api_key",
    "create_producer",
    "hash_api_key",
    "normalize_email",
    "record_last_use",
    "revoke_api_key",
]

logger = logging.getLogger("blohko.accounts")

_DISPLAY_PREFIX_LENGTH = 12
# last_used_at is informational: refreshing it at most this often keeps reads from writing.
_LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_EXPIRY_DAYS = 3650


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class NewProducer:
    producer: Producer
    owner: User
    password: str | None
    """The owner's password, when it was generated rather than given."""


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    key: str
    """The secret. Shown once; only its hash is stored."""


def _owner_email_taken(email: str) -> Conflict:
    return Conflict(f"A producer owner with email {email.strip()} already exists")


async def create_producer(
    db: Db, *, name: str, email: str, password: str | None, clock: Clock
) -> NewProducer:
    """A producer and its owner user (who logs in with `email` and `password`)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequest("Invalid input: name: must be 1-200 characters")
    if not is_email(email.strip()):
        raise BadRequest("Invalid input: email: must be an email address like name@example.com")
    if password is not None and len(password) < 8:
        raise BadRequest("Invalid input: password: must be at least 8 characters")
    # Owner emails identify a producer session at login, so they are unique among owners
    # (students of any producer may share them): uq_users_owner_email is the guarantee.
    if await accounts_storage.get_owner_by_email(db, email_normalized=normalize_email(email)) is not None:
        raise _owner_email_taken(email)
    generated = None
    if password is None:
        password = generated = generate_password()
    now = clock()
    password_hash = await hash_password(password)
    try:
        producer, owner = await accounts_storage.add_producer(
            db,
            producer_id=new_id("prod"),
            owner_id=new_id("user"),
            name=name,
            email=email.strip(),
            email_normalized=normalize_email(email),
            password_hash=password_hash,
            at=now,
        )
    except ConstraintViolation as violation:
        if violation.constraint == OWNER_EMAIL_INDEX:  # another owner committed it since the check
            raise _owner_email_taken(email) from None
        raise
    return NewProducer(producer=producer, owner=owner, password=generated)


async def create_api_key(
    db: Db,
    *,
    producer_id: str,
    name: str,
    permissions: list[str],
    clock: Clock,
    description: str | None = None,
    expires_in_days: int | None = None,
    identities: Identities = "full",
) -> NewApiKey:
    if await accounts_storage.get_producer(db, producer_id=producer_id) is None:
        raise NotFound("Producer not found")
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequest("Invalid input: name: must be 1-200 characters")
    if description is not None and len(description) > 2000:
        raise BadRequest("Invalid input: description: must be at most 2000 characters")
    try:
        grants = normalize_grants(permissions)
    except ValueError as exc:
        raise BadRequest(f"Invalid input: permissions: {exc}") from None
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise BadRequest(f"Invalid input: expiresInDays: must be between 1 and {MAX_EXPIRY_DAYS}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = clock()
    api_key = await accounts_storage.add_api_key(
        db,
        key_id=new_id("key"),
        producer_id=producer_id,
        name=name,
        description=description,
        key_hash=hash_api_key(key),
        prefix=key[:_DISPLAY_PREFIX_LENGTH],
        permissions=grants,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        identities=identities,
    )
    return NewApiKey(api_key=api_key, key=key)


async def revoke_api_key(db: Db, *, producer_id: str, key_id: str, clock: Clock) -> ApiKey:
    """Revoke a key of `producer_id` at once. Revoking twice keeps the first revocation time."""
    api_key = await accounts_storage.revoke_api_key(db, producer_id=producer_id, key_id=key_id, at=clock())
    if api_key is None:
        raise NotFound("API key not found")
    return api_key


async def authenticate_api_key(store: Store, key: str | None, *, clock: Clock) -> Principal:
    """The principal of a valid key, or `Unauthorized` saying why (never echoing the key)."""
    key = check_key_shape(key)
    now = clock()
    key_hash = hash_api_key(key)
    api_key = await store.credentials.api_key(key_hash)
    principal = principal_of_key_row(api_key, now=now)
    assert api_key is not None, "principal_of_key_row refuses a key that is not there"
    last_used = api_key["last_used_at"]
    if last_used is None or now - last_used >= _LAST_USED_RESOLUTION:
        await record_last_use(
            store,
            partial(accounts_storage.touch_api_key, key_id=api_key["id"], at=now),
            f"API key {api_key['id']}",
        )
        store.credentials.note_use(key_hash, now)
    return principal


async def record_last_use(store: Store, touch: Callable[[Db], Awaitable[None]], what: str) -> None:
    """Record when a credential (an API key, a connected app) was last used, with `touch`.
    Bookkeeping (`tools.core.internal.writing_if_free`): a busy writer skips it (the next use
    records it), and a database that fails it fails no request."""
    try:
        async with writing_if_free(store) as db:
            if db is not None:
                await touch(db)
    except DatabaseFailed:
        logger.warning("could not record the last use of %s", what, exc_info=True)
