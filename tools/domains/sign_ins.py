"""Producer sessions: an owner signs in with email and password to manage the producer's API keys.

`login` and `logout` are operations of the catalog, served over REST (the dashboard's sign-in
uses the same operation). A session authenticates as a `Principal` of kind "session".

A session token is `bls_` + 32 random bytes (url-safe). Like API keys, only its SHA-256 is
stored, so a database leak yields no usable token. Sessions live in the database, so any
server process accepts a session that another one created; a session ends when it expires
or at logout, at once for every process.

A sign-in takes its transactions through `tools.core.internal` (the password hashes between
them) and is audited as a security event, failed ones on a real account too; a session token's
lookup (`authenticate_session`) is a read there.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import Field

from storage import accounts as accounts_storage
from storage import sign_ins as sign_ins_storage
from storage.engine import Store
from storage.ids import new_id
from storage.tables import SignIn
from tools.core.audit import record_sign_in
from tools.core.catalog import operation
from tools.core.context import DEFAULT_SESSION_TTL, Clock, OperationContext, Principal
from tools.core.errors import Unauthorized
from tools.core.fields import Secret
from tools.core.internal import reading, writing
from tools.core.login_throttle import LoginThrottle
from tools.core.models import InputModel, NoInput, OutputModel, UtcDatetime
from tools.core.passwords import verify_password
from tools.domains.accounts import KEY_PREFIX, normalize_email

__all__ = [
    "DEFAULT_SESSION_TTL",
    "OWNER_ONLY",
    "SESSION_PREFIX",
    "LoginInput",
    "LoginResult",
    "LogoutResult",
    "NewSession",
    "authenticate_session",
    "log_in",
    "log_out",
    "login",
    "login_result",
]

logger = logging.getLogger("blohko.sessions")

SESSION_PREFIX = "bls_"
OWNER_ONLY = (
    "An API key cannot call this endpoint: it is the producer's owner's (API keys, connected apps, "
    "webhook secrets and deliveries); log in as the owner and send the session token"
)
_MAX_TOKEN_LENGTH = 200
_MAX_EMAIL_LENGTH = 320
DEFAULT_THROTTLE = LoginThrottle()
_MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte-long "password" is work an attacker should not get for free
_LOGIN_FAILED = "Invalid email or password"


@dataclass(frozen=True)
class NewSession:
    row: SignIn
    token: str
    """The secret. Returned once, at login; only its hash is stored."""


class LoginInput(InputModel):
    email: str = Field(min_length=1, max_length=_MAX_EMAIL_LENGTH, description="The producer owner's email.")
    password: str = Field(min_length=1, max_length=_MAX_PASSWORD_LENGTH)


class SessionPublic(OutputModel):
    id: str
    token: Secret = Field(
        description="Send as `Authorization: Bearer bls_...` (or use the cookie); shown only at login."
    )
    producer_id: str
    user_id: str
    created_at: UtcDatetime
    expires_at: UtcDatetime


class LoginResult(OutputModel):
    session: SessionPublic


class LogoutResult(OutputModel):
    logged_out: Literal[True] = True


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def login(
    store: Store,
    *,
    email: str,
    password: str,
    clock: Clock,
    ttl: timedelta = DEFAULT_SESSION_TTL,
    client_address: str | None = None,
    throttle: LoginThrottle = DEFAULT_THROTTLE,
) -> NewSession:
    """Start a session for the producer owner with this email and password.

    A wrong email and a wrong password fail alike, with the same message and about the same time.
    The throttle refuses an account or address that failed too often before any hashing; every
    attempt on a real owner account is audited (never the password).
    """
    now = clock()
    email_normalized = normalize_email(email[:_MAX_EMAIL_LENGTH])
    async with writing(store, "sign-in") as db:
        attempt = await throttle.admit(db, email_normalized=email_normalized, address=client_address, now=now)
        owner = await accounts_storage.get_owner_by_email(db, email_normalized=email_normalized)
    checked_hash = (
        owner.password_hash if owner is not None and len(password) <= _MAX_PASSWORD_LENGTH else None
    )
    # Outside any transaction: hashing is slow on purpose. Without a stored hash it still
    # spends a full hash's time, so an unknown email answers as slowly as a wrong password.
    if not await verify_password(checked_hash, password[:_MAX_PASSWORD_LENGTH]) or owner is None:
        if owner is None:
            logger.info(
                "sign-in failed for an unknown account from %s", client_address or "an unknown address"
            )
        else:
            async with writing(store, "sign-in") as db:
                await record_sign_in(
                    db,
                    producer_id=owner.producer_id,
                    user_id=owner.id,
                    session_id=None,
                    outcome="unauthorized",
                    at=now,
                )
        raise Unauthorized(_LOGIN_FAILED)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    async with writing(store, "sign-in") as db:
        await sign_ins_storage.delete_finished_sign_ins(db, user_id=owner.id, now=now)
        await throttle.succeeded(db, email_normalized=email_normalized, attempt=attempt)
        row = await sign_ins_storage.add_sign_in(
            db,
            sign_in_id=new_id("sess"),
            producer_id=owner.producer_id,
            user_id=owner.id,
            token_hash=_hash_token(token),
            created_at=now,
            expires_at=now + ttl,
        )
        await record_sign_in(
            db, producer_id=owner.producer_id, user_id=owner.id, session_id=row.id, outcome="ok", at=now
        )
    return NewSession(row=row, token=token)


def login_result(new: NewSession) -> LoginResult:
    return LoginResult(session=SessionPublic.model_validate({**new.row.model_dump(), "token": new.token}))


@operation(
    title="Log in",
    name="login",
    permission=None,
    http=("POST", "/auth/login"),
    kind="write",
    auth=("anonymous",),
    transports=("rest", "dashboard"),
    own_transactions=True,  # the password hashes outside any transaction
    session_cookie="set",
)
async def log_in(ctx: OperationContext, data: LoginInput) -> LoginResult:
    """Start a producer session with the owner's email and password. Answers the session token,
    also set as the HttpOnly cookie `blohko_session`; it expires after the session lifetime.
    Failed sign-ins are throttled per account and per client address (429 with Retry-After)."""
    new = await login(
        ctx.store,
        email=data.email,
        password=data.password,
        clock=ctx.clock,
        ttl=ctx.services.session_ttl,
        client_address=ctx.client_address,
        throttle=ctx.services.login_throttle,
    )
    return login_result(new)


@operation(
    title="Log out",
    name="logout",
    permission=None,
    http=("POST", "/auth/logout"),
    kind="write",
    auth=("session",),
    transports=("rest", "dashboard"),
    session_cookie="clear",
)
async def log_out(ctx: OperationContext, data: NoInput) -> LogoutResult:
    """End the current session: its token stops working at once."""
    session_id = ctx.principal.session_id
    assert session_id is not None, (
        "logout admits signed-in owners only, and their principal names the sign-in"
    )
    await sign_ins_storage.end_sign_in(ctx.db, sign_in_id=session_id, at=ctx.now())
    return LogoutResult()


async def authenticate_session(store: Store, token: str | None, *, clock: Clock) -> Principal:
    """The principal of a live session token, or `Unauthorized` saying why (never echoing the token)."""
    if not token:
        raise Unauthorized("Missing session: log in as the producer's owner and send the session token")
    if token.startswith(KEY_PREFIX):
        raise Unauthorized(OWNER_ONLY)
    if not token.startswith(SESSION_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        raise Unauthorized("Invalid session")
    async with reading(store, "session lookup") as db:
        row = await sign_ins_storage.get_sign_in_by_token_hash(db, token_hash=_hash_token(token))
    if row is None:
        raise Unauthorized("Invalid session")
    if row.ended_at is not None:
        raise Unauthorized("This session has ended; log in again")
    if row.expires_at <= clock():
        raise Unauthorized("This session has expired; log in again")
    # The owner may do anything in the school; which operations a session may call, its `auth` says.
    return Principal(
        producer_id=row.producer_id,
        key_id=None,
        key_name=None,
        grants=("*",),
        kind="session",
        session_id=row.id,
        user_id=row.user_id,
    )
