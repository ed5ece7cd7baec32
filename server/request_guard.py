"""Checks every HTTP request passes before any route: the Host rule and cross-origin cookie use.

- **Host**: every route answers only the allowed `Host` names (`transport_security`: loopback
  names, the bound host, `BLOHKO_ALLOWED_HOSTS`), so a DNS-rebinding page cannot reach the REST
  API or the session endpoints any more than `/mcp`; anything else gets 421. `/healthz` is the
  one exception: load balancers probe it by the instance's address, and it tells nothing.
- **Cookie-authenticated writes come from our own pages**: a state-changing request (not GET,
  HEAD or OPTIONS) that carries the session cookie and no bearer token must name this
  server in `Origin` (or, without one, `Referer`); a browser sends one on every cross-site post,
  so a form on another site, even another port of the same host, gets 403. Scripts that send
  the session as a bearer token are not affected.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import SESSION_COOKIE, bearer_token

__all__ = ["RequestGuard", "host_is_allowed"]

_HOST_EXEMPT_PATHS = frozenset({"/healthz"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}

logger = logging.getLogger("blohko.http")


def host_is_allowed(host: str | None, allowed: list[str]) -> bool:
    """`host` (a `Host` header) matches one of `allowed`: an exact name or `name:*` for any port."""
    if not host:
        return False
    return any(host == pattern or (pattern.endswith(":*") and host.startswith(pattern[:-1])) for pattern in allowed)


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
        part.strip().startswith(f"{SESSION_COOKIE}=") for value in headers.getlist("cookie") for part in value.split(";")
    )


class RequestGuard:
    """ASGI middleware applying the Host rule and the cookie origin rule to every route."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.allowed_hosts = list(security.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        host = headers.get("host")
        if scope["path"] not in _HOST_EXEMPT_PATHS and not host_is_allowed(host, self.allowed_hosts):
            logger.warning("refused a request for host %r", host)
            message = "This server does not answer for that Host; add it to BLOHKO_ALLOWED_HOSTS if it is yours"
            return JSONResponse({"error": "bad_request", "message": message}, status_code=421)
        cookie_write = (
            scope["method"] not in _SAFE_METHODS and bearer_token(headers) is None and _has_session_cookie(headers)
        )
        if cookie_write:
            source = headers.get("origin") or headers.get("referer")
            if source is not None and not _same_origin(source, host or ""):
                logger.warning("refused a cross-origin %s with the session cookie from %r", scope["method"], source)
                message = "A request signed in by the session cookie must come from this server's own pages"
                return JSONResponse({"error": "forbidden", "message": message}, status_code=403)
        return None
