"""The authorization server's endpoints where the MCP SDK's handlers do not do what we need:

- `/authorize` (`AuthorizationEndpoint`): every error found before the owner has seen the consent
  page is a page of ours (HTML, 400, naming the problem), never a redirect. A redirect URI named by
  a self-registered client is trusted only once the owner has seen it on the consent page (RFC 9700
  §4.11.2: otherwise `/authorize` is an open redirector). The owner's "Deny" on that page still
  sends `access_denied` back to the app.
- `/register` (`RegistrationEndpoint`): the SDK's handler, behind a body limit of
  `MAX_CLIENT_METADATA_BYTES`, told the client address (for the registration throttle), and
  answering 429 with `Retry-After` when the throttle refuses.
- `/token` (`TokenEndpoint`): the SDK's handler, after a check it does not make (RFC 8707): a
  `resource` other than the one the code's or refresh token's grant was made for is `invalid_target`.
- `/revoke` (`RevocationEndpoint`): RFC 7009 for every client authentication method the metadata
  advertises (the SDK's handler requires a `client_secret` form field, which public and
  `client_secret_basic` clients do not send).
- `HashedSecretAuthenticator`: client authentication at `/token` and `/revoke`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from mcp.server.auth.errors import stringify_pydantic_error
from mcp.server.auth.handlers.authorize import AuthorizationRequest
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import AuthorizationParams, AuthorizeError, OAuthAuthorizationServerProvider
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import InvalidRedirectUriError, InvalidScopeError, OAuthClientInformationFull
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from server.dashboard.security import secure_headers
from server.oauth.provider import BlohkoOAuthProvider
from tools.core.errors import Busy, RateLimited
from tools.domains.oauth import hash_secret

__all__ = [
    "AuthorizationEndpoint",
    "HashedSecretAuthenticator",
    "RegistrationEndpoint",
    "RevocationEndpoint",
    "TokenEndpoint",
]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "dashboard" / "templates"),
    autoescape=select_autoescape(default=True),
)
_DASHBOARD = "/dashboard"


class HashedSecretAuthenticator(ClientAuthenticator):
    """Client authentication at `/token` and `/revoke` by the client's registered method (`none`,
    `client_secret_post`, `client_secret_basic`), for secrets kept only as their SHA-256: the stored
    `client_secret` is the hash, and the presented secret is hashed to match. With Basic
    authentication the client id may come in the header alone (RFC 6749 §2.3.1)."""

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        basic = _basic_credentials(request)
        form_id = form.get("client_id")
        if form_id is not None and not isinstance(form_id, str):
            raise AuthenticationError("client_id must be a form field, not a file")
        if basic is not None and form_id and form_id != basic[0]:
            raise AuthenticationError("Client ID mismatch in Basic auth")
        client_id = basic[0] if basic is not None else form_id
        if not client_id:
            raise AuthenticationError("Missing client_id")
        client = await self.provider.get_client(client_id)
        if client is None:
            raise AuthenticationError("Invalid client_id")
        method = client.token_endpoint_auth_method
        if method == "none":
            return client
        if method == "client_secret_basic":
            if basic is None:
                raise AuthenticationError(
                    "This client authenticates with HTTP Basic: send Authorization: Basic"
                )
            presented: Any = basic[1]
        else:
            presented = form.get("client_secret")
        if not isinstance(presented, str) or not presented:
            raise AuthenticationError("Client secret is required")
        if not client.client_secret or not hmac.compare_digest(client.client_secret, hash_secret(presented)):
            raise AuthenticationError("Invalid client_secret")
        return client


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """The client id and secret of an `Authorization: Basic` header, or None without one."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, colon, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("Invalid Basic authentication header") from None
    if not colon:
        raise AuthenticationError("Invalid Basic authentication header: no ':' between client id and secret")
    return unquote(user), unquote(secret)


def _invalid_client(request: Request, message: str) -> JSONResponse:
    """401 `invalid_client` (RFC 6749 §5.2), with the Basic challenge when the client tried Basic."""
    headers = dict(_NO_STORE)
    if request.headers.get("authorization", "").lower().startswith("basic "):
        headers["WWW-Authenticate"] = 'Basic realm="blohko-oauth"'
    return JSONResponse(
        {"error": "invalid_client", "error_description": message}, status_code=401, headers=headers
    )


@dataclass
class AuthorizationEndpoint:
    """`/authorize` (GET or POST): check the request as the SDK's handler does, then on to the
    consent page; any problem is shown to the person in the browser, not sent to the app."""

    provider: BlohkoOAuthProvider

    async def handle(self, request: Request) -> Response:
        params = request.query_params if request.method == "GET" else await request.form()
        try:
            asked = AuthorizationRequest.model_validate(dict(params))
        except ValidationError as invalid:
            unsupported = any(error["loc"] == ("response_type",) for error in invalid.errors())
            return _refused(
                "unsupported_response_type" if unsupported else "invalid_request",
                stringify_pydantic_error(invalid),
            )
        client = await self.provider.get_client(asked.client_id)
        if client is None:
            shown = asked.client_id if len(asked.client_id) <= 200 else f"{asked.client_id[:200]}..."
            return _refused(
                "invalid_request", f"Client ID '{shown}' not found (or its metadata document was refused)"
            )
        try:
            redirect_uri = client.validate_redirect_uri(asked.redirect_uri)
            scopes = client.validate_scope(asked.scope)
        except InvalidRedirectUriError as invalid:
            return _refused("invalid_request", invalid.message)
        except InvalidScopeError as invalid:
            return _refused("invalid_scope", invalid.message)
        params_checked = AuthorizationParams(
            state=asked.state,
            scopes=scopes,
            code_challenge=asked.code_challenge,
            redirect_uri=redirect_uri,
            redirect_uri_provided_explicitly=asked.redirect_uri is not None,
            resource=asked.resource,
        )
        try:
            consent_page = await self.provider.authorize(client, params_checked)
        except AuthorizeError as refused:
            return _refused(refused.error, refused.error_description or refused.error)
        return RedirectResponse(consent_page, status_code=302, headers={"Cache-Control": "no-store"})


def _refused(error: str, description: str) -> Response:
    """The page an authorization request refused before consent gets: 400, naming the problem."""
    html = _TEMPLATES.get_template("authorize_error.html").render(
        base=_DASHBOARD, signed_in=False, error=error, description=description[:1000]
    )
    return secure_headers(HTMLResponse(html, status_code=400))


class _RegisteringFrom:
    """The provider, as the SDK's registration handler sees it, for a request from `address`."""

    def __init__(self, provider: BlohkoOAuthProvider, address: str | None) -> None:
        self._provider = provider
        self._address = address

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self._provider.register_client(client_info, address=self._address)


@dataclass
class RegistrationEndpoint:
    """`/register` (RFC 7591): the SDK's handler; the registration throttle counts per client
    address (the ASGI client: uvicorn sets it from X-Forwarded-For only for trusted proxies)."""

    provider: BlohkoOAuthProvider
    options: ClientRegistrationOptions

    async def handle(self, request: Request) -> Response:
        address = request.client.host if request.client else None
        try:
            # The SDK's handler calls only `register_client` on its provider.
            provider = cast(
                "OAuthAuthorizationServerProvider[Any, Any, Any]", _RegisteringFrom(self.provider, address)
            )
            return await RegistrationHandler(provider, self.options).handle(request)
        except (RateLimited, Busy) as later:
            return JSONResponse(
                {"error": later.code, "error_description": later.message},
                status_code=later.status,
                headers={"Retry-After": str(later.retry_after), **_NO_STORE},
            )


@dataclass
class TokenEndpoint:
    """`/token`: the SDK's handler, after the RFC 8707 check of `resource` it does not make."""

    provider: BlohkoOAuthProvider
    authenticator: HashedSecretAuthenticator

    async def handle(self, request: Request) -> Response:
        handler = TokenHandler(self.provider, self.authenticator)
        form = await request.form()
        resource = form.get("resource")
        if not resource:  # absent: the grant's own resource
            return await handler.handle(request)
        try:
            client = await self.authenticator.authenticate_request(request)
        except AuthenticationError:
            return await handler.handle(request)  # the SDK's 401 invalid_client
        code, refresh_token = form.get("code"), form.get("refresh_token")
        granted = await self.provider.grant_resource(
            client,
            code=code if form.get("grant_type") == "authorization_code" and isinstance(code, str) else None,
            refresh_token=refresh_token
            if form.get("grant_type") == "refresh_token" and isinstance(refresh_token, str)
            else None,
        )
        if granted is not None and (not isinstance(resource, str) or resource.rstrip("/") != granted):
            return JSONResponse(
                {
                    "error": "invalid_target",
                    "error_description": f"This grant is for {granted} only, not {str(resource)[:200]}",
                },
                status_code=400,
                headers=_NO_STORE,
            )
        return await handler.handle(request)  # an unknown code or token: the SDK's invalid_grant


@dataclass
class RevocationEndpoint:
    """`/revoke` (RFC 7009): the client authenticates by its registered method; its token (access
    or refresh, whatever `token_type_hint` says) ends with its whole grant. An unknown token, or
    another client's, is answered 200 like a revoked one."""

    provider: BlohkoOAuthProvider
    authenticator: HashedSecretAuthenticator

    async def handle(self, request: Request) -> Response:
        try:
            client = await self.authenticator.authenticate_request(request)
        except AuthenticationError as failed:
            return _invalid_client(request, failed.message)
        token = (await request.form()).get("token")
        if not isinstance(token, str) or not token:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "token: Field required"},
                status_code=400,
                headers=_NO_STORE,
            )
        await self.provider.revoke(client, token)
        return Response(status_code=200, headers=_NO_STORE)
