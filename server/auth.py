"""HTTP authentication: the bearer API key of every request, checked before any handler runs."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.mcp_app import PRINCIPAL_STATE_KEY, Runtime
from tools.accounts import authenticate_api_key
from tools.context import Principal
from tools.errors import Unauthorized

__all__ = ["ApiKeyGate", "bearer_token", "principal_of", "unauthorized_response"]


def bearer_token(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def unauthorized_response(error: Unauthorized, *, had_token: bool) -> JSONResponse:
    challenge = 'Bearer realm="blohko"'
    if had_token:
        challenge += ', error="invalid_token"'
    return JSONResponse(error.to_body(), status_code=401, headers={"WWW-Authenticate": challenge})


class ApiKeyGate:
    """ASGI wrapper: 401 unless the request carries a valid, unrevoked, unexpired API key.

    The principal is left in the scope's state for what runs next (MCP middleware, REST).
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        try:
            principal = await authenticate_api_key(self.runtime.store, token, clock=self.runtime.clock)
        except Unauthorized as error:
            await unauthorized_response(error, had_token=token is not None)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal:
    return scope["state"][PRINCIPAL_STATE_KEY]
