"""Checks every HTTP request passes before any route: the Host rule and cross-origin cookie use.

- **Host**: every route answers only the allowed hosts (`server.http_app.allowed_hosts`: loopback
  names, the bound host, the public URL's host, `BLOHKO_ALLOWED_HOSTS`), so a DNS-rebinding page
  cannot reach the REST API, the dashboard or the session endpoints any more than `/mcp`; anything
  else gets 421. The header is parsed strictly and matched exactly (`server.hosts`): a value that
  merely begins like an allowed one (`localhost:80@evil.example`, `127.0.0.1:8000.evil.example`)
  is refused. This runs before `/mcp` too, whose SDK check matches `name:*` patterns by prefix.
  `/healthz` is the one exception: load balancers probe it by the instance's address, and it
  tells nothing.
- **Cookie-authenticated writes come from our own pages**: a state-changing request (not GET,
  HEAD or OPTIONS) that carries the session cookie and no bearer token must name this
  server in `Origin` (or, without one, `Referer`); a browser sends one on every cross-site post,
  so a form on another site, even another port of the same host, gets 403. Scripts that send
  the session as a bearer token are not affected.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import SESSION_COOKIE, bearer_token
from server.hosts import HostRule

__all__ = ["RequestGuard"]

_HOST_EXEMPT_PATHS = frozenset({"/healthz"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}

logger = logging.getLogger("blohko.http")


def _netloc(scheme: str, netloc: str) -> str:
    """`example.com:443` for https is `example.com`: a default port compares equal to none."""
    netloc = netloc.lower()
    return netloc.removesuffix(f":{_DEFAULT_PORTS[scheme]}")


def _same_origin(source: str, host: str) -> bool:
    """`source` (an Origin or Referer URL) names the server this request was sent to."""
    parts = urlsplit(source)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False
    return _netloc(parts.scheme, parts.netloc) == _netloc(parts.scheme, host)


def _has_session_cookie(headers: Headers) -> bool:
    return any(
        part.strip().startswith(f"{SESSION_COOKIE}=")
        for value in headers.getlist("cookie")
        for part in value.split(";")
    )


class RequestGuard:
    """ASGI middleware applying the Host rule and the cookie origin rule to every route."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.hosts = HostRule(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        hosts = headers.getlist("host")
        allowed = self.hosts.match(hosts[0]) if len(hosts) == 1 else None  # two Host headers name no one host
        if allowed is not None:
            # What runs next (the MCP SDK's own check, Starlette's URLs) sees the one canonical form.
            scope = {
                **scope,
                "headers": [(b"host", str(allowed).encode())]
                + [(k, v) for k, v in scope["headers"] if k != b"host"],
            }
        elif scope["path"] not in _HOST_EXEMPT_PATHS:
            logger.warning("refused a request for host %r", ", ".join(hosts))
            message = (
                "This server does not answer for that Host; add it to BLOHKO_ALLOWED_HOSTS if it is yours"
            )
            refusal = JSONResponse({"error": "bad_request", "message": message}, status_code=421)
            await refusal(scope, receive, send)
            return
        refusal = self._cross_origin_refusal(scope, headers, str(allowed) if allowed else "")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _cross_origin_refusal(self, scope: Scope, headers: Headers, host: str) -> JSONResponse | None:
        cookie_write = (
            scope["method"] not in _SAFE_METHODS
            and bearer_token(headers) is None
            and _has_session_cookie(headers)
        )
        if cookie_write:
            source = headers.get("origin") or headers.get("referer")
            if source is not None and not _same_origin(source, host):
                logger.warning(
                    "refused a cross-origin %s with the session cookie from %r", scope["method"], source
                )
                message = "A request signed in by the session cookie must come from this server's own pages"
                return JSONResponse({"error": "forbidden", "message": message}, status_code=403)
        return None
