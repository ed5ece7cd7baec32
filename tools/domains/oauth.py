"""OAuth 2.1 for remote MCP clients: what the authorization server keeps and decides.

The HTTP side (metadata documents, `/authorize`, `/token`, `/register`, `/revoke`) is the MCP
SDK's, adapted in `server/oauth/`; the consent page is the dashboard's. This module holds what is
ours: clients, a producer's consent (a grant: "a connected app"), codes and tokens, and how an
access token becomes a `Principal`.

- Codes and tokens are random secrets; only their SHA-256 is stored. Access tokens (`blo_`)
  last an hour, refresh tokens (`blr_`) 30 days, codes 5 minutes.
- A code is redeemed once. Presenting it again revokes its grant (RFC 6749 §4.1.2): whoever
  holds the copy gets nothing more.
- A refresh token rotates: each use returns a new pair and retires the old one. Presenting a
  retired one revokes the whole grant, so a stolen token dies with the family it came from.
- A grant is bound to one resource (RFC 8707): the MCP endpoint it was granted for. A token is
  refused anywhere else.
- Dynamic Client Registration is open to anyone (RFC 7591), so it is bounded: the metadata
  (`client_metadata_problem`: at most `MAX_CLIENT_METADATA_BYTES` in all, `MAX_REDIRECT_URIS`
  redirect URIs of `MAX_REDIRECT_URI_LENGTH` characters, short strings, `MAX_CONTACTS` contacts),
  the rate (`RegistrationThrottle`: per client address and in total, per hour, counted in the
  database so it holds across server processes), and the time a registration stays unused: one
  that no owner has consented to within `unused_ttl` is deleted when a later registration arrives.
- An access token becomes the same `Principal` as an API key, with the consented permissions:
  tool visibility, tenancy, rate limits and the audit log treat it alike. The grant's id stands
  where a key's id would (`app_...`), so the audit log and the rate limit count per connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from storage import login_failures as login_failures_storage
from storage import oauth as oauth_storage
from storage.db import Db
from storage.engine import Store
from storage.ids import new_id
from storage.tables import OAuthClient, OAuthCode, OAuthGrant, OAuthToken
from tools.core.context import Clock, Principal
from tools.core.errors import RateLimited, Unauthorized
from tools.core.internal import audit_security_event, reading, writing
from tools.core.permissions import VALID_GRANTS
from tools.core.principal import Identities
from tools.domains.accounts import hash_api_key as hash_secret
from tools.domains.accounts import record_last_use

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "ACCESS_TOKEN_TTL",
    "AUDITED_EVENTS",
    "CODE_TTL",
    "GRANT_REVOKED",
    "GRANT_REVOKED_FOR_REUSED_CODE",
    "GRANT_REVOKED_FOR_REUSED_REFRESH_TOKEN",
    "MAX_CLIENT_METADATA_BYTES",
    "MAX_CONTACTS",
    "MAX_METADATA_STRING_LENGTH",
    "MAX_REDIRECT_URIS",
    "MAX_REDIRECT_URI_LENGTH",
    "REFRESH_TOKEN_PREFIX",
    "REFRESH_TOKEN_TTL",
    "SCOPES",
    "TOKENS_ISSUED",
    "TOKENS_REFRESHED",
    "GrantRefused",
    "IssuedTokens",
    "RegistrationThrottle",
    "authenticate_oauth_token",
    "client_metadata_problem",
    "create_grant",
    "exchange_code",
    "find_access_token",
    "find_client",
    "find_code",
    "find_refresh_token",
    "grant_resource",
    "hash_secret",
    "issue_code",
    "redirect_host",
    "register_client",
    "revoke_token",
    "rotate_refresh_token",
    "save_client",
]

logger = logging.getLogger("blohko.oauth")

ACCESS_TOKEN_PREFIX = "blo_"
REFRESH_TOKEN_PREFIX = "blr_"
ACCESS_TOKEN_TTL = timedelta(hours=1)
REFRESH_TOKEN_TTL = timedelta(days=30)
CODE_TTL = timedelta(minutes=5)
SCOPES: tuple[str, ...] = tuple(sorted(VALID_GRANTS))
"""OAuth scopes are our permission strings: `courses:read`, `students:*`, `*`..."""

TOKENS_ISSUED = "oauth_issue_tokens"
"""The audit log's name for a code exchanged for a connected app's first tokens."""
TOKENS_REFRESHED = "oauth_refresh_tokens"
"""... for a refresh token rotated into the next pair."""
GRANT_REVOKED = "oauth_revoke_grant"
"""... for a grant its client ended (RFC 7009)."""
GRANT_REVOKED_FOR_REUSED_CODE = "oauth_revoke_grant_reused_code"
"""... for a grant ended because a redeemed code was presented again."""
GRANT_REVOKED_FOR_REUSED_REFRESH_TOKEN = "oauth_revoke_grant_reused_refresh_token"
"""... for a grant ended because a rotated refresh token was presented again."""
AUDITED_EVENTS = (
    TOKENS_ISSUED,
    TOKENS_REFRESHED,
    GRANT_REVOKED,
    GRANT_REVOKED_FOR_REUSED_CODE,
    GRANT_REVOKED_FOR_REUSED_REFRESH_TOKEN,
)
"""The names under which a connected app's security events are audited (outcome "ok")."""

MAX_CLIENT_METADATA_BYTES = 4 * 1024
"""A registered client's metadata, serialized as it is stored, is at most this (and so is the
registration request's body): what Claude, ChatGPT or an IDE register is well under 1 KiB."""
MAX_REDIRECT_URIS = 10
"""Redirect URIs one registration may name (an IDE names a few loopback ports and a web page)."""
MAX_REDIRECT_URI_LENGTH = 1000
"""Characters in one redirect URI."""
MAX_METADATA_STRING_LENGTH = 300
"""Characters in any other string of the metadata: `client_name`, `client_uri`, `logo_uri`, a contact..."""
MAX_CONTACTS = 5
"""Entries of `contacts`."""
_GRANT_TYPES = ("authorization_code", "refresh_token")
_RESPONSE_TYPES = ("code",)
_LAST_USED_RESOLUTION = timedelta(seconds=60)
_MAX_TOKEN_LENGTH = 200


class GrantRefused(Exception):
    """A code or refresh token that must not be exchanged (the token endpoint's `invalid_grant`)."""


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]


def client_metadata_problem(information: dict[str, Any]) -> str | None:
    """What makes a client's registration metadata (as it would be stored) too large or not what
    this server does; None when it is within the bounds."""
    redirect_uris = information.get("redirect_uris") or []
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        return f"redirect_uris: at most {MAX_REDIRECT_URIS} redirect URIs, not {len(redirect_uris)}"
    for uri in redirect_uris:
        if len(uri) > MAX_REDIRECT_URI_LENGTH:
            return f"redirect_uris: a redirect URI is at most {MAX_REDIRECT_URI_LENGTH} characters, not {len(uri)}"
    contacts = information.get("contacts") or []
    if len(contacts) > MAX_CONTACTS:
        return f"contacts: at most {MAX_CONTACTS} contacts, not {len(contacts)}"
    unsupported = [value for value in information.get("grant_types") or [] if value not in _GRANT_TYPES]
    if unsupported:
        return f"grant_types: this server supports {' and '.join(_GRANT_TYPES)} only, not {', '.join(map(str, unsupported))[:100]}"
    unsupported = [value for value in information.get("response_types") or [] if value not in _RESPONSE_TYPES]
    if unsupported:
        return f"response_types: this server supports code only, not {', '.join(map(str, unsupported))[:100]}"
    for name, value in information.items():
        if name in ("redirect_uris", "scope"):  # scope: only our permission strings (the SDK's check)
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and len(text) > MAX_METADATA_STRING_LENGTH:
                return f"{name}: at most {MAX_METADATA_STRING_LENGTH} characters, not {len(text)}"
    size = len(json.dumps(information).encode())  # as the JSON column keeps it (non-ASCII escaped)
    if size > MAX_CLIENT_METADATA_BYTES:
        return f"the client metadata is {size} bytes serialized; at most {MAX_CLIENT_METADATA_BYTES}"
    return None


def redirect_host(uri: str) -> str:
    """Where the redirect URI `uri` sends the browser, as a person should read it on the consent
    page: the host, and the port unless it is the scheme's default; never userinfo."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = parts.port
    return host if port is None or port == {"https": 443, "http": 80}.get(parts.scheme) else f"{host}:{port}"


@dataclass(frozen=True)
class RegistrationThrottle:
    """At most `per_address` client registrations from one client address and `total` from all
    addresses in any `window`; past either, a registration is refused (`RateLimited`, 429 with
    `Retry-After`) before anything is stored. Registrations are counted with the login throttle's
    machinery (`storage.login_failures`, under buckets of their own), in the database, so the
    limits hold across server processes and restarts."""

    per_address: int = 20
    total: int = 100
    window: timedelta = timedelta(hours=1)

    async def admit(self, session, *, address: str | None, now: datetime) -> None:
        """Count one registration in the caller's write transaction, or `RateLimited` saying when
        one may be made again. Counted and checked under the buckets' lock, so concurrent
        registrations cannot all pass the check."""
        limits = {_registration_bucket("all"): self.total}
        if address:
            limits[_registration_bucket(f"address:{address}")] = self.per_address
        await login_failures_storage.lock_buckets(session, buckets=limits)
        wait = 0.0
        for bucket, limit in limits.items():
            times = await login_failures_storage.failure_times(
                session, bucket=bucket, since=now - self.window
            )
            if len(times) >= limit:
                wait = max(wait, (times[len(times) - limit] + self.window - now).total_seconds(), 1)
        if wait > 0:
            seconds = math.ceil(wait)
            raise RateLimited(
                seconds,
                message=f"Too many client registrations from this address or in all; retry in {seconds} seconds",
            )
        await login_failures_storage.record_failure(
            session, buckets=limits, at=now, forget_before=now - self.window
        )


def _registration_bucket(value: str) -> str:
    # Hashed like the login throttle's buckets (the table names no address), in a namespace of its own.
    return hashlib.sha256(f"oauth_registration:{value}".encode()).hexdigest()


async def register_client(
    store: Store,
    *,
    client_id: str,
    name: str,
    information: dict,
    secret: str | None,
    address: str | None,
    throttle: RegistrationThrottle,
    unused_ttl: timedelta,
    clock: Clock,
) -> OAuthClient:
    """Store a client registered by Dynamic Client Registration, if `throttle` admits one more from
    `address` (else `RateLimited`, and nothing is stored); and, in the same transaction, delete the
    registrations older than `unused_ttl` that no owner ever consented to."""
    now = clock()
    async with writing(store, "oauth client registration") as db:
        await throttle.admit(db, address=address, now=now)
        await oauth_storage.delete_unused_registrations(db, created_before=now - unused_ttl)
        client = await oauth_storage.add_client(
            db,
            client_id=client_id,
            source="registration",
            name=name,
            information=information,
            secret_hash=hash_secret(secret) if secret else None,
            at=now,
        )
    logger.info("OAuth client %s registered", client_id)
    return client


async def save_client(
    store: Store,
    *,
    client_id: str,
    source: str,
    name: str,
    information: dict,
    secret: str | None,
    clock: Clock,
    unused_ttl: timedelta | None = None,
) -> OAuthClient:
    """(Re)store the fetched copy of a client ID metadata document (`source` "metadata_document");
    with `unused_ttl`, in the same transaction, forget the copies fetched longer ago than that which
    no owner consented to (anyone can make us fetch a new URL: the table must not keep them all)."""
    now = clock()
    async with writing(store, "oauth client document") as db:
        if unused_ttl is not None:
            await oauth_storage.delete_unused_documents(db, fetched_before=now - unused_ttl)
        return await oauth_storage.save_fetched_client(
            db,
            client_id=client_id,
            source=source,
            name=name,
            information=information,
            secret_hash=hash_secret(secret) if secret else None,
            at=now,
        )


async def find_client(store: Store, *, client_id: str) -> OAuthClient | None:
    """The client `client_id` as stored (registered, or the fetched copy of its metadata document)."""
    async with reading(store, "oauth client lookup") as db:
        return await oauth_storage.get_client(db, client_id=client_id)


async def create_grant(
    db: Db,
    *,
    producer_id: str,
    user_id: str,
    client: OAuthClient,
    redirect_uri: str,
    resource: str,
    permissions: list[str],
    clock: Clock,
    identities: Identities = "full",
) -> OAuthGrant:
    return await oauth_storage.add_grant(
        db,
        grant_id=new_id("app"),
        producer_id=producer_id,
        user_id=user_id,
        client_id=client.id,
        client_name=client.name,
        redirect_uri=redirect_uri,
        resource=resource,
        permissions=permissions,
        created_at=clock(),
        identities=identities,
    )


async def issue_code(
    db: Db,
    *,
    grant: OAuthGrant,
    redirect_uri: str,
    explicit: bool,
    code_challenge: str,
    scopes: list[str],
    clock: Clock,
) -> str:
    code = secrets.token_urlsafe(32)
    await oauth_storage.add_code(
        db,
        code_hash=hash_secret(code),
        grant_id=grant.id,
        client_id=grant.client_id,
        redirect_uri=redirect_uri,
        redirect_uri_explicit=explicit,
        code_challenge=code_challenge,
        scopes=scopes,
        expires_at=clock() + CODE_TTL,
    )
    return code


async def find_code(
    store: Store, *, client_id: str, code: str, clock: Clock
) -> tuple[OAuthCode, OAuthGrant] | None:
    """The unredeemed code `code` of `client_id`'s live grant. A code redeemed before revokes its grant."""
    if len(code) > _MAX_TOKEN_LENGTH:
        return None
    async with reading(store, "oauth code lookup") as db:
        found = await oauth_storage.get_code(db, code_hash=hash_secret(code))
    if found is None or found[1].revoked_at is not None or found[0].client_id != client_id:
        return None
    if found[0].used_at is not None:
        logger.warning("an authorization code was presented again: revoking connected app %s", found[1].id)
        await _revoke_grant(store, found[1], clock, name=GRANT_REVOKED_FOR_REUSED_CODE)
        return None
    return found


async def exchange_code(store: Store, *, code: OAuthCode, grant: OAuthGrant, clock: Clock) -> IssuedTokens:
    """Redeem `code` (checked by the caller: client, redirect URI, PKCE) for a token pair."""
    async with writing(store, "oauth code exchange") as db:
        if await oauth_storage.claim_code(db, code_hash=code.code_hash, at=clock()):
            await oauth_storage.delete_finished(db, grant_id=grant.id, now=clock())
            issued = await _issue_tokens(db, grant=grant, scopes=list(code.scopes), clock=clock)
            await _audit(db, grant, name=TOKENS_ISSUED, scopes=issued.scopes, at=clock())
            return issued
        # Redeemed twice at once: one is a copy.
        await oauth_storage.revoke_grant(db, grant_id=grant.id, at=clock())
        await _audit(db, grant, name=GRANT_REVOKED_FOR_REUSED_CODE, at=clock())
    raise GrantRefused("authorization code was already used")


async def find_refresh_token(
    store: Store, *, client_id: str, token: str, clock: Clock
) -> tuple[OAuthToken, OAuthGrant] | None:
    """The live refresh token `token` of `client_id`. A retired one presented again revokes its grant."""
    if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    async with reading(store, "oauth refresh token lookup") as db:
        found = await oauth_storage.get_token(db, token_hash=hash_secret(token))
    if (
        found is None
        or found[0].kind != "refresh"
        or found[1].revoked_at is not None
        or found[1].client_id != client_id
    ):
        return None
    if found[0].used_at is not None:
        logger.warning("a rotated refresh token was presented again: revoking connected app %s", found[1].id)
        await _revoke_grant(store, found[1], clock, name=GRANT_REVOKED_FOR_REUSED_REFRESH_TOKEN)
        return None
    return found


async def find_access_token(store: Store, *, token: str) -> tuple[OAuthToken, OAuthGrant] | None:
    """The access token `token` of a live grant, as stored (for the revocation endpoint: a request
    to the MCP endpoint is authenticated by `authenticate_oauth_token`)."""
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    async with reading(store, "oauth access token lookup") as db:
        found = await oauth_storage.get_token(db, token_hash=hash_secret(token))
    if found is None or found[0].kind != "access" or found[1].revoked_at is not None:
        return None
    return found


async def grant_resource(
    store: Store, *, client_id: str, code: str | None = None, refresh_token: str | None = None
) -> str | None:
    """The resource (RFC 8707) of the grant that `client_id`'s `code` or `refresh_token` belongs
    to, or None when there is no such code or token. Only reads: a token request asking for another
    resource is refused before the code or token is looked at as a use."""
    async with reading(store, "oauth grant resource lookup") as db:
        if code is not None and len(code) <= _MAX_TOKEN_LENGTH:
            found_code = await oauth_storage.get_code(db, code_hash=hash_secret(code))
            if found_code is not None and found_code[0].client_id == client_id:
                return found_code[1].resource
        if refresh_token is not None and len(refresh_token) <= _MAX_TOKEN_LENGTH:
            found_token = await oauth_storage.get_token(db, token_hash=hash_secret(refresh_token))
            if (
                found_token is not None
                and found_token[0].kind == "refresh"
                and found_token[1].client_id == client_id
            ):
                return found_token[1].resource
    return None


async def rotate_refresh_token(
    store: Store, *, token: OAuthToken, grant: OAuthGrant, scopes: list[str], clock: Clock
) -> IssuedTokens:
    """Retire `token` and issue the next pair (with `scopes`, at most the token's own)."""
    async with writing(store, "oauth refresh token rotation") as db:
        if await oauth_storage.claim_refresh_token(db, token_hash=token.token_hash, at=clock()):
            await oauth_storage.delete_finished(db, grant_id=grant.id, now=clock())
            issued = await _issue_tokens(db, grant=grant, scopes=scopes, clock=clock)
            await _audit(db, grant, name=TOKENS_REFRESHED, scopes=issued.scopes, at=clock())
            return issued
        # Rotated twice at once: one is a copy.
        await oauth_storage.revoke_grant(db, grant_id=grant.id, at=clock())
        await _audit(db, grant, name=GRANT_REVOKED_FOR_REUSED_REFRESH_TOKEN, at=clock())
    raise GrantRefused("refresh token was already used")


async def _issue_tokens(db: Db, *, grant: OAuthGrant, scopes: list[str], clock: Clock) -> IssuedTokens:
    now = clock()
    access = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    refresh = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    await oauth_storage.add_tokens(
        db,
        grant_id=grant.id,
        scopes=scopes,
        created_at=now,
        tokens=[
            ("access", hash_secret(access), now + ACCESS_TOKEN_TTL),
            ("refresh", hash_secret(refresh), now + REFRESH_TOKEN_TTL),
        ],
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(ACCESS_TOKEN_TTL.total_seconds()),
        scopes=scopes,
    )


async def revoke_token(store: Store, *, token: str, client_id: str, clock: Clock) -> None:
    """RFC 7009: the client revokes one of its tokens; we end the whole grant (access and refresh
    alike), as a client that signs out expects. Unknown tokens are ignored."""
    if len(token) > _MAX_TOKEN_LENGTH:
        return
    async with reading(store, "oauth token lookup") as db:
        found = await oauth_storage.get_token(db, token_hash=hash_secret(token))
    if found is not None and found[1].client_id == client_id:
        await _revoke_grant(store, found[1], clock)


async def _revoke_grant(store: Store, grant: OAuthGrant, clock: Clock, *, name: str = GRANT_REVOKED) -> None:
    """End `grant`, audited under `name`: revoked by its client, or because a used code or rotated
    refresh token came back."""
    async with writing(store, "oauth grant revocation") as db:
        await oauth_storage.revoke_grant(db, grant_id=grant.id, at=clock())
        await _audit(db, grant, name=name, at=clock())


async def _audit(
    db: Db,
    grant: OAuthGrant,
    *,
    name: str,
    at: datetime,
    scopes: list[str] | None = None,
) -> None:
    """Audit a security event of `grant` as the connected app's own, under its producer: the
    grant's id stands where a key's would, as in the audit records of the app's calls."""
    await audit_security_event(
        db,
        name=name,
        producer_id=grant.producer_id,
        principal=Principal(
            producer_id=grant.producer_id,
            key_id=grant.id,
            key_name=grant.client_name,
            grants=tuple(scopes if scopes is not None else grant.permissions),
        ),
        ids={"grantId": grant.id},
        at=at,
    )


async def authenticate_oauth_token(
    store: Store, token: str, *, resource: str | None, clock: Clock
) -> Principal:
    """The principal of a live access token issued for `resource`; or `Unauthorized` saying why
    (never echoing the token). `resource` None: this endpoint takes no OAuth token."""
    if resource is None:
        raise Unauthorized(
            "An OAuth access token is only for the MCP endpoint: send an API key as `Authorization: Bearer blk_...`"
        )
    if len(token) > _MAX_TOKEN_LENGTH:
        raise Unauthorized("Invalid access token")
    now = clock()
    token_hash = hash_secret(token)
    found = await store.credentials.access_token(token_hash)
    if found is None or found["kind"] != "access":
        raise Unauthorized("Invalid access token")
    if found["revoked_at"] is not None:
        raise Unauthorized("This app was disconnected: connect it again")
    if found["expires_at"] <= now:
        raise Unauthorized("The access token has expired: refresh it")
    if found["resource"] != resource:
        raise Unauthorized(f"The access token was issued for another resource, not {resource}")
    last_used = found["last_used_at"]
    if last_used is None or now - last_used >= _LAST_USED_RESOLUTION:
        await record_last_use(
            store,
            partial(oauth_storage.touch_grant, grant_id=found["id"], at=now),
            f"connected app {found['id']}",
        )
        store.credentials.note_use(token_hash, now)
    return Principal(
        producer_id=found["producer_id"],
        key_id=found["id"],
        key_name=found["client_name"],
        grants=tuple(found["scopes"]),
        identities=found["identities"],
    )
