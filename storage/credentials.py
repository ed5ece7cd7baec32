"""Credentials verified once per process, trusted while no credential was revoked anywhere.

Every call authenticates, so a process keeps the rows it verified (API keys, OAuth access
tokens with their grants) under the number `credential_revision` held when it read them. A call
whose credential is kept pays one cheap read of that number (a compiled read on the reader, `storage.reader`) instead of a lookup
of the credential. Every revocation raises the number in its own transaction (`raise_revision`),
so the first call any process serves after the commit finds a new number, drops what it kept and
reads the credential again: a revoked key stops at once, in every process. Expiry needs no number: the kept row says when it expires and
the caller checks it against its clock on every call.

Only verified rows are kept (an unknown secret is looked up every time, so guessing fills no
memory), at most `DEFAULT_LIMIT` of them, keyed by the secret's SHA-256 like the tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel import col

from storage.db import Db
from storage.reader import Reader
from storage.statements import PreparedQuery
from storage.tables import ApiKey, CredentialRevision, OAuthGrant, OAuthToken

__all__ = ["DEFAULT_LIMIT", "CredentialCache", "raise_revision"]

DEFAULT_LIMIT = 10_000

_REVISION = select(col(CredentialRevision.revision)).where(col(CredentialRevision.id) == 1)
_CURRENT_REVISION = PreparedQuery(_REVISION)
_REVISION_COLUMN = _REVISION.scalar_subquery().label("revision")

# Each lookup reads the revision in the same statement: what it finds is valid at that number.
_API_KEY = PreparedQuery(
    select(
        col(ApiKey.id),
        col(ApiKey.producer_id),
        col(ApiKey.name),
        col(ApiKey.permissions),
        col(ApiKey.expires_at),
        col(ApiKey.revoked_at),
        col(ApiKey.last_used_at),
        col(ApiKey.identities),
        _REVISION_COLUMN,
    ).where(col(ApiKey.key_hash) == bindparam("secret_hash"))
)
_ACCESS_TOKEN = PreparedQuery(
    select(
        col(OAuthToken.kind),
        col(OAuthToken.scopes),
        col(OAuthToken.expires_at),
        col(OAuthGrant.id),
        col(OAuthGrant.producer_id),
        col(OAuthGrant.client_name),
        col(OAuthGrant.resource),
        col(OAuthGrant.revoked_at),
        col(OAuthGrant.last_used_at),
        col(OAuthGrant.identities),
        _REVISION_COLUMN,
    )
    .join(OAuthGrant, col(OAuthGrant.id) == OAuthToken.grant_id)
    .where(col(OAuthToken.token_hash) == bindparam("secret_hash"))
)


async def raise_revision(db: Db) -> None:
    """Tell every process its kept credentials may be stale: call in the revoking transaction."""
    session = db.session
    await session.execute(
        update(CredentialRevision)
        .where(col(CredentialRevision.id) == 1)
        .values(revision=col(CredentialRevision.revision) + 1)
    )


class CredentialCache:
    """The verified credentials of one process (one per `Store`). Rows are plain dicts of the
    columns the lookups select; callers decide what a revoked or expired row means."""

    def __init__(self, reader: Reader, *, limit: int = DEFAULT_LIMIT) -> None:
        self._reader = reader
        self._limit = limit
        self._kept: dict[str, tuple[int, dict[str, Any]]] = {}

    async def api_key(self, secret_hash: str) -> dict[str, Any] | None:
        """The API key whose secret hashes to `secret_hash` (revoked or expired included), or None."""
        return await self._row(_API_KEY, secret_hash)

    async def access_token(self, secret_hash: str) -> dict[str, Any] | None:
        """The OAuth token with its grant's columns (`id` is the grant's), or None."""
        return await self._row(_ACCESS_TOKEN, secret_hash)

    def note_use(self, secret_hash: str, at: datetime) -> None:
        """The credential's last use was just recorded: keep the time, so the next call does not
        record it again within the caller's resolution."""
        kept = self._kept.get(secret_hash)
        if kept is not None:
            kept[1]["last_used_at"] = at

    async def _row(self, query: PreparedQuery, secret_hash: str) -> dict[str, Any] | None:
        kept = self._kept.get(secret_hash)
        if kept is not None:
            revision = await self._reader.first(_CURRENT_REVISION)
            if revision is not None and revision["revision"] == kept[0]:
                return kept[1]
            self._kept.pop(secret_hash, None)  # another call may have dropped it meanwhile
        row = await self._reader.first(query, secret_hash=secret_hash)
        if row is None:
            return None
        if len(self._kept) >= self._limit:
            self._kept.pop(next(iter(self._kept)))  # the oldest kept: dicts keep insertion order
        self._kept[secret_hash] = (row.pop("revision"), row)
        return row
