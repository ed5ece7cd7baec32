"""HTTP authentication: one function turns any request's credentials into a `Principal`.

`authenticate_request` serves every HTTP route (REST, `/mcp` through `ApiKeyGate`): a bearer
API key (`blk_...`), an OAuth access token (`blo_...`, only where its resource is served: `/mcp`),
a producer session (`bls_...` as a bearer token, or the session cookie), or, for the one
operation that admits it (signing in), nobody. An OAuth token stands where an API key would. Which kinds a route accepts comes from
its operation's `auth`; a credential of another kind is refused here, saying what is needed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.request_state import PRINCIPAL_STATE_KEY
from storage.engine import Store
from tools.core.context import ANONYMOUS, Clock, Principal, PrincipalKind
from tools.core.errors import Unauthorized
from tools.core.permissions import Permission
from tools.domains.accounts import KEY_PREFIX, authenticate_api_key
from tools.domains.oauth import ACCESS_TOKEN_PREFIX, authenticate_oauth_token
from tools.domains.sign_ins import OWNER_ONLY, SESSION_PREFIX, authenticate_session

__all__ = [
    "PRINCIPAL_STATE_KEY",
    "SESSION_COOKIE",
    "ApiKeyGate",
    "authenticate_request",
    "bearer_token",
    "cookie_options",
    "unauthorized_response",
]

SESSION_COOKIE = "blohko_session"
"""The producer session's cookie (HttpOnly, SameSite=Strict, Secure over https), set at sign-in."""


def cookie_options(connection: HTTPConnection, *, path: str) -> dict[str, Any]:
    """The attributes of every cookie the server sets or clears: HttpOnly, SameSite=Strict, and
    `Secure` when the public URL is https (the app's `cookies_always_secure`, from
    `Settings.cookies_always_secure`) or the request came over https. Behind a TLS proxy the hop to
    this server is plain http, and whether it says otherwise (`X-Forwarded-Proto`) depends on the
    proxy and on `BLOHKO_FORWARDED_ALLOW_IPS`: the public URL decides. A clearing cookie carries the
    same attributes, or a browser keeps the `Secure` one it would replace."""
    always = (
        getattr(connection.app.state, "cookies_always_secure", False) if "app" in connection.scope else False
    )
    return {
        "path": path,
        "secure": always or connection.url.scheme == "https",
        "httponly": True,
        "samesite": "strict",
    }


_EVERY_PERMISSION = " ".join(Permission)

_NEEDS_SESSION = (
    "This endpoint needs a producer session: log in as the producer's owner and send the session token"
)


def bearer_token(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def authenticate_request(
    connection: HTTPConnection,
    *,
    store: Store,
    clock: Clock,
    accepted: Collection[PrincipalKind],
    resource: str | None = None,
) -> Principal:
    """The principal of `connection`'s credentials, of a kind in `accepted`; or `Unauthorized`
    saying why (never echoing a secret). `resource` is the OAuth resource this route serves (the
    MCP endpoint's URL), None where OAuth tokens are not accepted."""
    if "anonymous" in accepted:
        return ANONYMOUS
    token = bearer_token(connection.headers)
    if token is None and "session" in accepted:
        token = connection.cookies.get(SESSION_COOKIE)
    if token is not None and token.startswith(KEY_PREFIX) and "api_key" not in accepted:
        raise Unauthorized(OWNER_ONLY)
    if token is not None and token.startswith(SESSION_PREFIX) and "session" not in accepted:
        raise Unauthorized(
            "A producer session cannot call this endpoint: send an API key as `Authorization: Bearer blk_...`"
        )
    if "api_key" in accepted and token is not None and token.startswith(ACCESS_TOKEN_PREFIX):
        return await authenticate_oauth_token(store, token, resource=resource, clock=clock)
    if "api_key" in accepted and (token is None or not token.startswith(SESSION_PREFIX)):
        return await authenticate_api_key(store, token, clock=clock)
    if "session" in accepted:
        return await authenticate_session(store, token, clock=clock)
    raise Unauthorized(_NEEDS_SESSION)


def unauthorized_response(
    error: Unauthorized, *, had_token: bool, resource_metadata: str | None = None
) -> JSONResponse:
    """401 with the RFC 6750 challenge; with OAuth on, it names the resource's metadata (RFC 9728),
    where a client finds how to get a token, and the scopes the whole tool set needs: every
    permission, which the consent page presets and the owner narrows."""
    challenge = 'Bearer realm="blohko"'
    if resource_metadata is not None:
        challenge += f', resource_metadata="{resource_metadata}", scope="{_EVERY_PERMISSION}"'
    if had_token:
        challenge += ', error="invalid_token"'
    return JSONResponse(error.to_body(), status_code=401, headers={"WWW-Authenticate": challenge})


class ApiKeyGate:
    """ASGI wrapper of `/mcp`: 401 unless the request carries a valid, unrevoked, unexpired API key,
    or an OAuth access token for `resource` (this endpoint).

    The principal is left in the scope's state for what runs next (the MCP middleware).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store,
        clock: Clock,
        resource: str | None = None,
        resource_metadata: str | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.resource = resource
        self.resource_metadata = resource_metadata

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            principal = await authenticate_request(
                connection, store=self.store, clock=self.clock, accepted=("api_key",), resource=self.resource
            )
        except Unauthorized as error:
            had_token = bearer_token(connection.headers) is not None
            response = unauthorized_response(
                error, had_token=had_token, resource_metadata=self.resource_metadata
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        await self.app(scope, receive, send)
