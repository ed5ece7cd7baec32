"""The HTTP app: streamable HTTP MCP at `/mcp`, the REST API at `/api/v1`, the Producer Dashboard at
`/dashboard` (`/` leads there), the OAuth authorization server (`server.oauth`), `GET /healthz`.

Stateless by design: MCP runs in stateless mode and every request is authenticated
against the database, so any number of processes can serve behind a load balancer. Each also
delivers webhooks (`server.webhooks`) while it runs; deliveries are claimed in the database, so
the processes share the work.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import anyio
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.auth import ApiKeyGate
from server.mcp_app import Runtime, create_mcp_server
from server.oauth import oauth_config, oauth_routes
from server.request_guard import RequestGuard
from server.rest import MAX_BODY_BYTES
from server.settings import Settings
from server.webhooks import DeliveryWorker

__all__ = ["allowed_hosts", "api_document", "create_http_app", "transport_security"]

logger = logging.getLogger("blohko.http")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(settings: Settings) -> list[str]:
    """The hosts every route answers (`server.hosts.HostRule` entries): loopback names, the bound host
    when it is a specific address, the public URL's host, and `BLOHKO_ALLOWED_HOSTS`."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    if settings.host not in _LOOPBACK and settings.host not in ("0.0.0.0", "::"):
        hosts.append(f"[{settings.host}]" if ":" in settings.host else settings.host)
    public = urlsplit(settings.effective_public_url())
    hosts.append(f"[{public.hostname}]" if ":" in (public.hostname or "") else public.hostname or "localhost")
    return [*dict.fromkeys(hosts), *settings.allowed_hosts]


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The MCP SDK's own DNS-rebinding check on `/mcp`, kept as a second line: it matches `name:*`
    patterns by prefix (`localhost:80@evil.example` passes it), so the exact rule is `RequestGuard`'s,
    which runs first on every route."""
    hosts = [pattern for host in allowed_hosts(settings) for pattern in (host, f"{host}:*")]
    allowed_origins = [f"{scheme}://{pattern}" for scheme in ("http", "https") for pattern in hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=allowed_origins
    )


def create_http_app(settings: Settings, runtime: Runtime, *, owns_store: bool = False) -> Starlette:
    """The ASGI app over `runtime`. The caller owns the store's lifetime, unless `owns_store`: then
    the app closes the store when it shuts down (a worker process's app, `server.workers`)."""
    mcp = create_mcp_server(runtime)
    # Builds the session manager; we mount its ASGI endpoint ourselves behind the key gate.
    mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(settings),
        host=settings.host,
        max_request_body_size=MAX_BODY_BYTES,  # the REST limit: one bound for both transports
    )
    oauth = oauth_config(settings)
    # The HTTP door decides the resource OAuth grants access to; the consent operations check it.
    runtime.services = replace(runtime.services, oauth_resource=oauth.resource if oauth else None)
    mcp_endpoint = ApiKeyGate(
        StreamableHTTPASGIApp(mcp.session_manager),
        store=runtime.store,
        clock=runtime.clock,
        resource=oauth.resource if oauth else None,
        resource_metadata=oauth.resource_metadata_url if oauth else None,
    )

    async def healthz(request: Request) -> JSONResponse:
        try:
            await runtime.store.ping()
        except Exception:
            logger.exception("health check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = DeliveryWorker(
            runtime.store, clock=runtime.clock, settings=settings, woken_by=runtime.services.deliveries_queued
        )
        try:
            async with mcp.session_manager.run(), anyio.create_task_group() as background:
                background.start_soon(worker.run)
                try:
                    yield
                finally:
                    worker.stop()  # the task group waits for the deliveries in flight to be recorded
        finally:
            if owns_store:
                await runtime.store.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        # POST only: stateless JSON mode has no session for DELETE to end and no stream for GET
        # to open (the SDK's GET held an event stream open that nothing would ever write to).
        # Starlette answers any other method 405 with `Allow: POST`, as the MCP spec asks.
        Route("/mcp", mcp_endpoint, methods=["POST"]),
        *(oauth_routes(oauth, store=runtime.store, clock=runtime.clock) if oauth else ()),
        *_api_routes(settings, runtime),
        *_dashboard_routes(settings, runtime),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestGuard, allowed_hosts=allowed_hosts(settings))],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.state.cookies_always_secure = settings.cookies_always_secure()  # read by `server.auth.cookie_options`
    return app


def _api_routes(settings: Settings, runtime: Runtime) -> list[Route]:
    """`/api/v1`: the catalog's operations, sessions and API keys, and their OpenAPI document."""
    from server.rest import API_PREFIX, rest_routes

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(api_document())

    return [
        Route(f"{API_PREFIX}/openapi.json", openapi, methods=["GET"]),
        *rest_routes(runtime),
    ]


def _dashboard_routes(settings: Settings, runtime: Runtime) -> list:
    from server.dashboard import dashboard_routes

    # The MCP bundle it offers: the configured file, else a `blohko.mcpb` packed in the working directory.
    bundle = settings.mcpb_path or Path.cwd() / "blohko.mcpb"
    return dashboard_routes(runtime, bundle_path=bundle, public_url=settings.effective_public_url())


@functools.cache
def api_document() -> dict:
    """The OpenAPI document of `/api/v1`: the catalog is fixed at import, so it is built once."""
    from server.openapi import openapi_document
    from server.rest import catalog_endpoints

    return openapi_document(catalog_endpoints(), version=version("blohko-mcp"))


_HTTP_ERRORS = {
    404: "not_found",
    405: "bad_request",
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException), "registered for HTTPException: Starlette calls it with one"
    code = _HTTP_ERRORS.get(exc.status_code, "bad_request")
    message = "No such endpoint" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=exc.headers)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": "internal_error", "message": "An internal error occurred; it has been logged."},
        status_code=500,
    )
