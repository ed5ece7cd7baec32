"""Producer sessions over REST: log in and out, and manage API keys with a session.

`POST /auth/login` (the owner's email and password) answers a session token, also set as
the HttpOnly cookie `blohko_session`. `/api-keys` accepts only a session, by
`Authorization: Bearer bls_...` or by that cookie, never an API key. The rules live in
tools/sessions.py and tools/api_keys.py; this module only moves them onto HTTP.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import bearer_token
from server.mcp_app import Runtime
from server.request_guard import SESSION_COOKIE
from server.rest import API_PREFIX, Endpoint, json_response, request_arguments, respond
from tools.api_keys import (
    ApiKeyPublic,
    ApiKeyResult,
    CreateApiKeyInput,
    CreatedApiKeyResult,
    RevokeApiKeyInput,
    create_key,
    list_keys,
    revoke_key,
)
from tools.models import Page, PageQuery
from tools.runner import parse_arguments
from tools.sessions import (
    LoginInput,
    LoginResult,
    LogoutResult,
    SessionPrincipal,
    authenticate_session,
    end_session,
    login,
    login_result,
)
from tools.system import NoInput

__all__ = ["SESSION_COOKIE", "SESSION_ENDPOINTS", "session_routes"]


SESSION_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        name="login",
        method="POST",
        path="/auth/login",
        title="Log in",
        description=(
            "Start a producer session with the owner's email and password. Answers the session token, "
            "also set as the HttpOnly cookie `blohko_session`; it expires after the session lifetime. "
            "Failed sign-ins are throttled per account and per client address (429 with Retry-After)."
        ),
        input_model=LoginInput,
        output_model=LoginResult,
        status=200,
        auth="none",
        errors=(400, 401, 429, 500, 503),
        tag="auth",
    ),
    Endpoint(
        name="logout",
        method="POST",
        path="/auth/logout",
        title="Log out",
        description="End the current session: its token stops working at once.",
        input_model=NoInput,
        output_model=LogoutResult,
        status=200,
        auth="session",
        errors=(400, 401, 500),
        tag="auth",
    ),
    Endpoint(
        name="create_api_key",
        method="POST",
        path="/api-keys",
        title="Create API key",
        description=(
            "Create an API key of the session's producer. The key itself is in this response only. "
            "A producerId other than the session's is forbidden."
        ),
        input_model=CreateApiKeyInput,
        output_model=CreatedApiKeyResult,
        status=201,
        auth="session",
        errors=(400, 401, 403, 500),
        tag="api-keys",
    ),
    Endpoint(
        name="list_api_keys",
        method="GET",
        path="/api-keys",
        title="List API keys",
        description="The producer's API keys, newest first, with prefix, permissions, expiry, last use and revocation; never the key itself.",
        input_model=PageQuery,
        output_model=Page[ApiKeyPublic],
        status=200,
        auth="session",
        errors=(400, 401, 500),
        tag="api-keys",
    ),
    Endpoint(
        name="revoke_api_key",
        method="DELETE",
        path="/api-keys",
        title="Revoke API key",
        description="Revoke the key `id`: it gets 401 at once, over REST and MCP. Revoking again changes nothing.",
        input_model=RevokeApiKeyInput,
        output_model=ApiKeyResult,
        status=200,
        auth="session",
        errors=(400, 401, 404, 500),
        tag="api-keys",
    ),
)

Handler = Callable[[Request, Any, SessionPrincipal | None], Awaitable[Response]]


def _session_token(request: Request) -> str | None:
    """The bearer token if the request has one, else the session cookie."""
    return bearer_token(Headers(scope=request.scope)) or request.cookies.get(SESSION_COOKIE)


def _handlers(runtime: Runtime, ttl: timedelta) -> dict[str, Handler]:
    store, clock = runtime.store, runtime.clock

    async def do_login(request: Request, data: LoginInput, _: None) -> Response:
        new = await login(
            store,
            email=data.email,
            password=data.password,
            clock=clock,
            ttl=ttl,
            client_address=request.client.host if request.client else None,
            throttle=runtime.login_throttle,
        )
        response = json_response(login_result(new))
        response.set_cookie(
            SESSION_COOKIE,
            new.token,
            max_age=int(ttl.total_seconds()),
            path=API_PREFIX,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def do_logout(request: Request, data: BaseModel, principal: SessionPrincipal) -> Response:
        await end_session(store, principal, clock=clock)
        response = json_response(LogoutResult())
        response.delete_cookie(
            SESSION_COOKIE, path=API_PREFIX, secure=request.url.scheme == "https", httponly=True, samesite="strict"
        )
        return response

    async def do_create(request: Request, data: CreateApiKeyInput, principal: SessionPrincipal) -> Response:
        return json_response(await create_key(store, principal, data, clock=clock), 201)

    async def do_list(request: Request, data: PageQuery, principal: SessionPrincipal) -> Response:
        return json_response(await list_keys(store, principal, data))

    async def do_revoke(request: Request, data: RevokeApiKeyInput, principal: SessionPrincipal) -> Response:
        return json_response(await revoke_key(store, principal, data, clock=clock))

    return {
        "login": do_login,
        "logout": do_logout,
        "create_api_key": do_create,
        "list_api_keys": do_list,
        "revoke_api_key": do_revoke,
    }


def session_routes(runtime: Runtime, *, ttl: timedelta) -> list[Route]:
    """`/auth/login`, `/auth/logout` and `/api-keys`, with sessions lasting `ttl`."""
    handlers = _handlers(runtime, ttl)
    by_path: dict[str, dict[str, Endpoint]] = defaultdict(dict)
    for endpoint in SESSION_ENDPOINTS:
        by_path[endpoint.path][endpoint.method] = endpoint

    def route(endpoints: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            endpoint = endpoints["GET" if request.method == "HEAD" else request.method]

            async def work() -> Response:
                principal = None
                if endpoint.auth == "session":
                    principal = await authenticate_session(runtime.store, _session_token(request), clock=runtime.clock)
                data = parse_arguments(endpoint.input_model, await request_arguments(endpoint, request))
                return await handlers[endpoint.name](request, data, principal)

            return await respond(request, work)

        return serve

    return [
        Route(API_PREFIX + path, route(endpoints), methods=list(endpoints))
        for path, endpoints in by_path.items()
    ]
