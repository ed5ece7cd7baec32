"""OAuth 2.1 for remote MCP clients (Claude's connectors, ChatGPT, VS Code): Blohko is its own
authorization server and the protected resource, as the MCP authorization spec describes.

- `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728) names this server as the
  authorization server of `/mcp`; a 401 from `/mcp` points there (`server.auth`).
- `/.well-known/oauth-authorization-server` (RFC 8414), `/authorize`, `/token`, `/register`
  (RFC 7591) and `/revoke` (RFC 7009) are the MCP SDK's handlers over `BlohkoOAuthProvider`.
  Clients register by Dynamic Client Registration or are known by a client ID metadata document.
- The consent page is the dashboard's (`/dashboard/authorize`); the grants it makes are
  "connected apps" there.

OAuth needs the URL clients reach the server at (`BLOHKO_PUBLIC_URL`), https unless it is a
loopback address; without one it is off and API keys remain the only way in.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthClientInformationFull, ProtectedResourceMetadata
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from pydantic import AnyHttpUrl
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import Route, request_response

from server.oauth.provider import BlohkoOAuthProvider
from server.settings import Settings
from tools.domains.oauth import SCOPES, hash_secret

__all__ = ["OAuthConfig", "oauth_config", "oauth_routes"]

logger = logging.getLogger("blohko.oauth")

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class OAuthConfig:
    issuer: str
    """The public URL, without a trailing slash: the authorization server's issuer."""
    allow_loopback_documents: bool = False

    @property
    def resource(self) -> str:
        """The protected resource: the MCP endpoint, the audience of every token."""
        return f"{self.issuer}/mcp"

    @property
    def resource_metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/oauth-protected-resource/mcp"


def oauth_config(settings: Settings) -> OAuthConfig | None:
    """OAuth's configuration, or None when the public URL cannot be an issuer (not https, not loopback)."""
    url = (settings.public_url or _default_public_url(settings)).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK_HOSTS:
        logger.warning("OAuth is off: %s is not https; set BLOHKO_PUBLIC_URL to the https URL clients reach", url)
        return None
    return OAuthConfig(issuer=url, allow_loopback_documents=settings.oauth_allow_loopback_metadata)


def _default_public_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", "localhost", "::1"):
        host = "127.0.0.1"
    return f"http://{host}:{settings.port}"


class _HashedSecretAuthenticator(ClientAuthenticator):
    """The SDK's client authentication at `/token` and `/revoke`, for secrets kept only as their
    SHA-256: the stored `client_secret` is the hash, and the presented secret is hashed to match."""

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise AuthenticationError("Missing client_id")
        client = await self.provider.get_client(client_id)
        if client is None:
            raise AuthenticationError("Invalid client_id")
        method = client.token_endpoint_auth_method
        if method == "none":
            return client
        presented = _basic_secret(request, client_id) if method == "client_secret_basic" else form.get("client_secret")
        if not isinstance(presented, str) or not presented:
            raise AuthenticationError("Client secret is required")
        if not client.client_secret or not hmac.compare_digest(client.client_secret, hash_secret(presented)):
            raise AuthenticationError("Invalid client_secret")
        return client


def _basic_secret(request: Request, client_id: str) -> str:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        raise AuthenticationError("Missing or invalid Basic authentication in Authorization header")
    try:
        user, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("Invalid Basic authentication header") from None
    if unquote(user) != client_id:
        raise AuthenticationError("Client ID mismatch in Basic auth")
    return unquote(secret)


def oauth_routes(config: OAuthConfig, *, store, clock) -> list[Route]:
    """The metadata documents and the authorization server's endpoints, from the SDK's handlers."""
    provider = BlohkoOAuthProvider(
        store=store, clock=clock, issuer=config.issuer, resource=config.resource, allow_loopback_documents=config.allow_loopback_documents
    )
    registration = ClientRegistrationOptions(enabled=True, valid_scopes=list(SCOPES), default_scopes=list(SCOPES))
    revocation = RevocationOptions(enabled=True)
    metadata = build_metadata(AnyHttpUrl(config.issuer), None, registration, revocation)
    metadata.client_id_metadata_document_supported = True
    metadata.token_endpoint_auth_methods_supported = ["none", "client_secret_post", "client_secret_basic"]
    resource_metadata = ProtectedResourceMetadata(
        resource=AnyHttpUrl(config.resource),
        authorization_servers=[AnyHttpUrl(config.issuer)],
        scopes_supported=list(SCOPES),
        bearer_methods_supported=["header"],
        resource_name="Blohko",
    )
    authenticator = _HashedSecretAuthenticator(provider)
    # CORS outermost (a 413 still carries its headers) around the SDK's body limit, as
    # `mcp.server.auth.routes` wraps its handlers.
    public = ["GET", "OPTIONS"]
    posted = ["POST", "OPTIONS"]

    def cors(handler, methods: list[str]):
        limited = RequestBodyLimitMiddleware(request_response(handler), DEFAULT_MAX_REQUEST_BODY_SIZE)
        return CORSMiddleware(limited, allow_origins="*", allow_methods=methods, allow_headers=[MCP_PROTOCOL_VERSION_HEADER])

    return [
        Route("/.well-known/oauth-authorization-server", cors(MetadataHandler(metadata).handle, public), methods=public),
        *(
            Route(path, cors(ProtectedResourceMetadataHandler(resource_metadata).handle, public), methods=public)
            for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp")
        ),
        # No CORS: a browser is sent here, no page calls it.
        Route("/authorize", RequestBodyLimitMiddleware(request_response(AuthorizationHandler(provider).handle), DEFAULT_MAX_REQUEST_BODY_SIZE),
              methods=["GET", "POST"]),
        Route("/token", cors(TokenHandler(provider, authenticator).handle, posted), methods=posted),
        Route("/register", cors(RegistrationHandler(provider, registration).handle, posted), methods=posted),
        Route("/revoke", cors(RevocationHandler(provider, authenticator).handle, posted), methods=posted),
    ]
