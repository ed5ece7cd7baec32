"""OAuth clients, grants, codes and tokens in the store. Functions return None for "not found"."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.engine import CursorResult
from sqlmodel import col

from storage.credentials import raise_revision
from storage.db import Db
from storage.queries import add_row
from storage.tables import OAuthClient, OAuthCode, OAuthGrant, OAuthToken

__all__ = [
    "add_client",
    "add_code",
    "add_grant",
    "add_tokens",
    "claim_code",
    "claim_refresh_token",
    "delete_finished",
    "delete_unused_documents",
    "delete_unused_registrations",
    "get_client",
    "get_code",
    "get_grant",
    "get_token",
    "grants_query",
    "revoke_grant",
    "revoke_producer_grant",
    "save_fetched_client",
    "touch_grant",
]


async def get_client(db: Db, *, client_id: str) -> OAuthClient | None:
    session = db.session
    return await session.get(OAuthClient, client_id)


async def add_client(
    db: Db,
    *,
    client_id: str,
    source: str,
    name: str,
    information: dict[str, Any],
    secret_hash: str | None,
    at: datetime,
) -> OAuthClient:
    """Store a new client, created and fetched (for a registration: stored) at `at`."""
    client = OAuthClient(
        id=client_id,
        source=source,
        name=name,
        information=information,
        secret_hash=secret_hash,
        created_at=at,
        fetched_at=at,
    )
    await add_row(db, row=client)
    return client


async def save_fetched_client(
    db: Db,
    *,
    client_id: str,
    source: str,
    name: str,
    information: dict[str, Any],
    secret_hash: str | None,
    at: datetime,
) -> OAuthClient:
    """Store the copy of a client's metadata fetched at `at`: a new client, or the one `client_id`
    names with its name, metadata and secret replaced."""
    session = db.session
    client = await session.get(OAuthClient, client_id)
    if client is None:
        client = OAuthClient(id=client_id, source=source, name=name, information=information, created_at=at)
        session.add(client)
    client.name = name
    client.information = information
    client.secret_hash = secret_hash
    client.fetched_at = at
    await session.flush()
    return client


async def add_grant(
    db: Db,
    *,
    grant_id: str,
    producer_id: str,
    user_id: str,
    client_id: str,
    client_name: str,
    redirect_uri: str,
    resource: str,
    permissions: list[str],
    created_at: datetime,
    identities: str = "full",
) -> OAuthGrant:
    grant = OAuthGrant(
        id=grant_id,
        producer_id=producer_id,
        user_id=user_id,
        client_id=client_id,
        client_name=client_name,
        redirect_uri=redirect_uri,
        resource=resource,
        permissions=permissions,
        created_at=created_at,
        identities=identities,
    )
    await add_row(db, row=grant)
    return grant


async def add_code(
    db: Db,
    *,
    code_hash: str,
    grant_id: str,
    client_id: str,
    redirect_uri: str,
    redirect_uri_explicit: bool,
    code_challenge: str,
    scopes: list[str],
    expires_at: datetime,
) -> OAuthCode:
    code = OAuthCode(
        code_hash=code_hash,
        grant_id=grant_id,
        client_id=client_id,
        redirect_uri=redirect_uri,
        redirect_uri_explicit=redirect_uri_explicit,
        code_challenge=code_challenge,
        scopes=scopes,
        expires_at=expires_at,
    )
    await add_row(db, row=code)
    return code


async def add_tokens(
    db: Db,
    *,
    grant_id: str,
    scopes: list[str],
    created_at: datetime,
    tokens: list[tuple[str, str, datetime]],
) -> list[OAuthToken]:
    """Store `grant_id`'s new tokens, each given as (kind, token hash, expiry), in one flush."""
    session = db.session
    rows = [
        OAuthToken(
            token_hash=token_hash,
            grant_id=grant_id,
            kind=kind,
            scopes=scopes,
            created_at=created_at,
            expires_at=expires_at,
        )
        for kind, token_hash, expires_at in tokens
    ]
    session.add_all(rows)
    await session.flush()
    return rows


async def get_grant(db: Db, *, producer_id: str, grant_id: str) -> OAuthGrant | None:
    """A grant of `producer_id`; another producer's grant is None."""
    session = db.session
    statement = select(OAuthGrant).where(
        col(OAuthGrant.id) == grant_id, col(OAuthGrant.producer_id) == producer_id
    )
    return (await session.scalars(statement)).first()


def grants_query(*, producer_id: str) -> Select:
    """`producer_id`'s connected apps, newest first."""
    return (
        select(OAuthGrant)
        .where(col(OAuthGrant.producer_id) == producer_id)
        .order_by(col(OAuthGrant.created_at).desc(), col(OAuthGrant.id))
    )


async def get_code(db: Db, *, code_hash: str) -> tuple[OAuthCode, OAuthGrant] | None:
    session = db.session
    statement = (
        select(OAuthCode, OAuthGrant)
        .join(OAuthGrant, col(OAuthGrant.id) == OAuthCode.grant_id)
        .where(col(OAuthCode.code_hash) == code_hash)
    )
    row = (await session.execute(statement)).first()
    return (row[0], row[1]) if row else None


async def claim_code(db: Db, *, code_hash: str, at: datetime) -> bool:
    """Mark a code used, if no one did before: the one exchange that may redeem it."""
    session = db.session
    statement = (
        update(OAuthCode)
        .where(col(OAuthCode.code_hash) == code_hash, col(OAuthCode.used_at).is_(None))
        .values(used_at=at)
    )
    updated = cast("CursorResult[Any]", await session.execute(statement))  # an UPDATE: a CursorResult
    return updated.rowcount == 1


async def get_token(db: Db, *, token_hash: str) -> tuple[OAuthToken, OAuthGrant] | None:
    session = db.session
    statement = (
        select(OAuthToken, OAuthGrant)
        .join(OAuthGrant, col(OAuthGrant.id) == OAuthToken.grant_id)
        .where(col(OAuthToken.token_hash) == token_hash)
    )
    row = (await session.execute(statement)).first()
    return (row[0], row[1]) if row else None


async def claim_refresh_token(db: Db, *, token_hash: str, at: datetime) -> bool:
    """Mark a refresh token used, if no one did before: the one rotation it may make."""
    session = db.session
    statement = (
        update(OAuthToken)
        .where(
            col(OAuthToken.token_hash) == token_hash,
            col(OAuthToken.kind) == "refresh",
            col(OAuthToken.used_at).is_(None),
        )
        .values(used_at=at)
    )
    updated = cast("CursorResult[Any]", await session.execute(statement))  # an UPDATE: a CursorResult
    return updated.rowcount == 1


async def revoke_grant(db: Db, *, grant_id: str, at: datetime) -> None:
    """End a grant and every code and token of it (the rows go: a revoked grant never comes back)."""
    session = db.session
    await session.execute(
        update(OAuthGrant)
        .where(col(OAuthGrant.id) == grant_id, col(OAuthGrant.revoked_at).is_(None))
        .values(revoked_at=at)
    )
    await raise_revision(db)  # every process's kept tokens of the grant are stale now
    await session.execute(delete(OAuthToken).where(col(OAuthToken.grant_id) == grant_id))
    await session.execute(delete(OAuthCode).where(col(OAuthCode.grant_id) == grant_id))


async def revoke_producer_grant(
    db: Db, *, producer_id: str, grant_id: str, at: datetime
) -> OAuthGrant | None:
    """Revoke `producer_id`'s grant `grant_id` (as `revoke_grant`) and return it as it is now;
    None when the producer has no such grant."""
    session = db.session
    grant = await get_grant(db, producer_id=producer_id, grant_id=grant_id)
    if grant is None:
        return None
    await revoke_grant(db, grant_id=grant.id, at=at)
    await session.refresh(grant)
    return grant


async def touch_grant(db: Db, *, grant_id: str, at: datetime) -> None:
    session = db.session
    await session.execute(update(OAuthGrant).where(col(OAuthGrant.id) == grant_id).values(last_used_at=at))


async def delete_finished(db: Db, *, grant_id: str, now: datetime) -> None:
    """Forget `grant_id`'s expired tokens and codes: they can never be used again. (Used refresh
    tokens stay until they expire: presenting one again is how a stolen copy is detected.)"""
    session = db.session
    await session.execute(
        delete(OAuthToken).where(col(OAuthToken.grant_id) == grant_id, col(OAuthToken.expires_at) <= now)
    )
    await session.execute(
        delete(OAuthCode).where(col(OAuthCode.grant_id) == grant_id, col(OAuthCode.expires_at) <= now)
    )


async def delete_unused_registrations(db: Db, *, created_before: datetime) -> None:
    """Forget the clients registered (by Dynamic Client Registration) before `created_before` that
    no owner ever consented to: no grant names them, so nothing else refers to them."""
    await _delete_unconsented(
        db, col(OAuthClient.source) == "registration", col(OAuthClient.created_at) < created_before
    )


async def delete_unused_documents(db: Db, *, fetched_before: datetime) -> None:
    """Forget the fetched client ID metadata documents last fetched before `fetched_before` that no
    owner ever consented to: a stale copy would be fetched again before use anyway."""
    await _delete_unconsented(
        db, col(OAuthClient.source) == "metadata_document", col(OAuthClient.fetched_at) < fetched_before
    )


async def _delete_unconsented(db: Db, *conditions) -> None:
    session = db.session
    consented = exists().where(col(OAuthGrant.client_id) == OAuthClient.id)
    await session.execute(
        delete(OAuthClient).where(*conditions, ~consented).execution_options(synchronize_session=False)
    )
