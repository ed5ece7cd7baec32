"""OAuth 2.1 for remote MCP clients (Claude's connectors, ChatGPT, VS Code): Blohko is its own
authorization server and the protected resource, as the MCP authorization spec describes.

- `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728) names this server as the
  authorization server of `/mcp`; a 401 from `/mcp` points there (`server.auth`).
- `/.well-known/oauth-authorization-server` (RFC 8414), `/authorize`, `/token`, `/register`
  (RFC 7591) and `/revoke` (RFC 7009) over `BlohkoOAuthProvider`: the MCP SDK's handlers, and ours
  where theirs fall short (`server.oauth.endpoints`: errors before consent are a page, not a
  redirect; the token request's `resource` is checked; revocation works for every advertised
  client authentication; registration is bounded in size and rate).
  Clients register by Dynamic Client Registration or are known by a client ID metadata document.
- The consent page is the dashboard's (`/dashboard/authorize`); the grants it makes are
  "connected apps" there.

OAuth needs the URL clients reach the server at (`BLOHKO_PUBLIC_URL`), https unless it is a
loopback address; without one it is off and API keys remain the only way in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from mcp.shared.auth import ProtectedResourceMetadata
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from pydantic import AnyHttpUrl
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, request_response

from server.oauth.endpoints import (
    AuthorizationEndpoint,
    HashedSecretAuthenticator,
    RegistrationEndpoint,
    RevocationEndpoint,
    TokenEndpoint,
)
from server.oauth.provider import BlohkoOAuthProvider
from server.settings import Settings
from tools.domains.oauth import MAX_CLIENT_METADATA_BYTES, SCOPES, RegistrationThrottle

__all__ = ["OAuthConfig", "oauth_config", "oauth_routes"]

logger = logging.getLogger("blohko.oauth")

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class OAuthConfig:
    issuer: str
    """The public URL, without a trailing slash: the authorization server's issuer."""
    allow_loopback_documents: bool = False
    registration_throttle: RegistrationThrottle = field(default_factory=RegistrationThrottle)
    unused_registration_ttl: timedelta = timedelta(hours=24)
    """A registered client no owner consented to within this long is deleted."""

    @property
    def resource(self) -> str:
        """The protected resource: the MCP endpoint, the audience of every token."""
        return f"{self.issuer}/mcp"

    @property
    def resource_metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/oauth-protected-resource/mcp"


def oauth_config(settings: Settings) -> OAuthConfig | None:
    """OAuth's configuration, or None when the public URL cannot be an issuer (not https, not loopback)."""
    url = settings.effective_public_url()
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK_HOSTS:
        logger.warning(
            "OAuth is off: %s is not https; set BLOHKO_PUBLIC_URL to the https URL clients reach", url
        )
        return None
    return OAuthConfig(
        issuer=url,
        allow_loopback_documents=settings.oauth_allow_loopback_metadata,
        registration_throttle=RegistrationThrottle(
            per_address=settings.oauth_registrations_per_address_per_hour,
            total=settings.oauth_registrations_per_hour,
            window=timedelta(hours=1),
        ),
        unused_registration_ttl=timedelta(hours=settings.oauth_unused_registration_hours),
    )


def oauth_routes(config: OAuthConfig, *, store, clock) -> list[Route]:
    """The metadata documents and the authorization server's endpoints."""
    provider = BlohkoOAuthProvider(
        store=store,
        clock=clock,
        issuer=config.issuer,
        resource=config.resource,
        allow_loopback_documents=config.allow_loopback_documents,
        registration_throttle=config.registration_throttle,
        unused_registration_ttl=config.unused_registration_ttl,
    )
    registration = ClientRegistrationOptions(
        enabled=True, valid_scopes=list(SCOPES), default_scopes=list(SCOPES)
    )
    revocation = RevocationOptions(enabled=True)
    metadata = build_metadata(AnyHttpUrl(config.issuer), None, registration, revocation)
    metadata.client_id_metadata_document_supported = True
    metadata.token_endpoint_auth_methods_supported = ["none", "client_secret_post", "client_secret_basic"]
    metadata.revocation_endpoint_auth_methods_supported = [
        "none",
        "client_secret_post",
        "client_secret_basic",
    ]
    resource_metadata = ProtectedResourceMetadata(
        resource=AnyHttpUrl(config.resource),
        authorization_servers=[AnyHttpUrl(config.issuer)],
        scopes_supported=list(SCOPES),
        bearer_methods_supported=["header"],
        resource_name="Blohko",
    )
    authenticator = HashedSecretAuthenticator(provider)
    # CORS outermost (a 413 still carries its headers) around the SDK's body limit, as
    # `mcp.server.auth.routes` wraps its handlers.
    public = ["GET", "OPTIONS"]
    posted = ["POST", "OPTIONS"]

    def cors(handler, methods: list[str], body_limit: int = DEFAULT_MAX_REQUEST_BODY_SIZE):
        limited = RequestBodyLimitMiddleware(request_response(handler), body_limit)
        return CORSMiddleware(
            limited, allow_origins="*", allow_methods=methods, allow_headers=[MCP_PROTOCOL_VERSION_HEADER]
        )

    return [
        Route(
            "/.well-known/oauth-authorization-server",
            cors(MetadataHandler(metadata).handle, public),
            methods=public,
        ),
        *(
            Route(
                path, cors(ProtectedResourceMetadataHandler(resource_metadata).handle, public), methods=public
            )
            for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp")
        ),
        # No CORS: a browser is sent here, no page calls it.
        Route(
            "/authorize",
            RequestBodyLimitMiddleware(
                request_response(AuthorizationEndpoint(provider).handle), DEFAULT_MAX_REQUEST_BODY_SIZE
            ),
            methods=["GET", "POST"],
        ),
        Route("/token", cors(TokenEndpoint(provider, authenticator).handle, posted), methods=posted),
        Route(
            "/register",
            cors(RegistrationEndpoint(provider, registration).handle, posted, MAX_CLIENT_METADATA_BYTES),
            methods=posted,
        ),
        Route("/revoke", cors(RevocationEndpoint(provider, authenticator).handle, posted), methods=posted),
    ]
