"""The dashboard's browser defences: CSRF tokens, security headers, small form parsing.

CSRF tokens are synchronizer tokens bound to the session without any server state: the token
is HMAC-SHA-256 keyed by the session token (a secret only the browser's HttpOnly cookie holds)
over a fixed label, so any server process verifies it and it dies with the session. The sign-in
form has no session yet: it binds its token to a random pre-sign-in cookie the same way (a
double-submit token that a cross-site page can neither read nor set).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from tools.core.errors import BadRequest

__all__ = [
    "CSRF_FIELD",
    "SIGN_IN_COOKIE",
    "csrf_token",
    "csrf_valid",
    "new_sign_in_secret",
    "read_form",
    "secure_headers",
]

_AnyResponse = TypeVar("_AnyResponse", bound=Response)

CSRF_FIELD = "csrf_token"
SIGN_IN_COOKIE = "blohko_sign_in"
_LABEL = b"blohko dashboard csrf v1"
_MAX_FORM_BYTES = 64 * 1024
_MAX_FIELDS = 200

_CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(_CSP_DIRECTIVES)


def csrf_token(secret: str) -> str:
    """The form token for `secret` (the session token, or the pre-sign-in cookie)."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).hexdigest()


def csrf_valid(secret: str | None, submitted: str | None) -> bool:
    if not secret or not submitted:
        return False
    return hmac.compare_digest(csrf_token(secret), submitted)


def new_sign_in_secret() -> str:
    return secrets.token_urlsafe(32)


async def read_form(request: Request) -> dict[str, list[str]]:
    """A URL-encoded form post as name -> values, bounded in size; anything else is refused."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise BadRequest("Invalid input: send the form as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise BadRequest("Invalid input: the form is too large")
    try:
        pairs = parse_qsl(
            body.decode(), keep_blank_values=True, max_num_fields=_MAX_FIELDS, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Invalid input: the form could not be read") from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


def secure_headers(response: _AnyResponse) -> _AnyResponse:
    """Headers every dashboard response carries: no framing, no inline script or style, no
    referrer leaving the site, and nothing cached (a new key's secret is on a page once)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
