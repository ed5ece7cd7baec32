"""The MCP SDK's authorization server provider protocol, over `tools.domains.oauth`.

The SDK's handlers (and ours in `server.oauth.endpoints`) parse and check every request (client,
redirect URI, PKCE, scopes, grant types) and call this provider for what is ours: clients, the
consent page, codes and tokens.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl, ConfigDict

from server.oauth.client_documents import DocumentRefused, fetch_client_document, is_document_client_id
from server.oauth.redirects import redirect_uri_problem
from storage.tables import OAuthClient, OAuthCode, OAuthGrant
from storage.tables import OAuthToken as StoredToken
from tools.core.context import Clock
from tools.domains.oauth import (
    SCOPES,
    GrantRefused,
    IssuedTokens,
    RegistrationThrottle,
    client_metadata_problem,
    exchange_code,
    find_access_token,
    find_client,
    find_code,
    find_refresh_token,
    grant_resource,
    register_client,
    revoke_token,
    rotate_refresh_token,
    save_client,
)

__all__ = ["DOCUMENT_CACHE_TTL", "BlohkoOAuthProvider"]

logger = logging.getLogger("blohko.oauth")

DOCUMENT_CACHE_TTL = timedelta(hours=1)
"""How long a fetched client ID metadata document is used before it is fetched again."""
_UNNAMED = "Unnamed app"


class _Code(AuthorizationCode):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    stored: OAuthCode
    grant: OAuthGrant


class _Refresh(RefreshToken):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    stored: StoredToken
    grant: OAuthGrant


class BlohkoOAuthProvider:
    """One per HTTP app: `issuer` is the server's public URL, `resource` its MCP endpoint;
    `registration_throttle` and `unused_registration_ttl` bound Dynamic Client Registration."""

    def __init__(
        self,
        *,
        store,
        clock: Clock,
        issuer: str,
        resource: str,
        allow_loopback_documents: bool,
        registration_throttle: RegistrationThrottle | None = None,
        unused_registration_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self.store = store
        self.clock = clock
        self.issuer = issuer
        self.resource = resource
        self.allow_loopback_documents = allow_loopback_documents
        self.registration_throttle = registration_throttle or RegistrationThrottle()
        self.unused_registration_ttl = unused_registration_ttl

    # ---- clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if len(client_id) > 2048:
            return None
        client = await find_client(self.store, client_id=client_id)
        if is_document_client_id(client_id) and (
            client is None or self.clock() - client.fetched_at >= DOCUMENT_CACHE_TTL
        ):
            client = await self._fetch_document(client_id)
        return _information(client) if client is not None else None

    async def _fetch_document(self, url: str) -> OAuthClient | None:
        try:
            information = await fetch_client_document(
                url, allow_loopback=self.allow_loopback_documents, scopes=" ".join(SCOPES)
            )
        except DocumentRefused as refused:
            logger.warning("client ID metadata document refused: %s", refused)
            return None
        return await save_client(
            self.store,
            client_id=url,
            source="metadata_document",
            name=_name(information),
            information=_stored_information(information),
            secret=None,
            clock=self.clock,
            unused_ttl=DOCUMENT_CACHE_TTL,
        )

    async def register_client(
        self, client_info: OAuthClientInformationFull, *, address: str | None = None
    ) -> None:
        """Store a client the SDK's registration handler checked, if it is within our bounds and the
        registration throttle admits one more from `address` (else `RateLimited`: the endpoint's 429)."""
        information = _stored_information(client_info)
        problem = client_metadata_problem(information)
        if problem:
            raise RegistrationError("invalid_client_metadata", problem)
        for redirect_uri in client_info.redirect_uris or []:
            problem = redirect_uri_problem(str(redirect_uri))
            if problem:
                raise RegistrationError("invalid_redirect_uri", problem)
        assert client_info.client_id is not None  # the SDK's handler names every client it registers
        await register_client(
            self.store,
            client_id=client_info.client_id,
            name=_name(client_info),
            information=information,
            secret=client_info.client_secret,
            address=address,
            throttle=self.registration_throttle,
            unused_ttl=self.unused_registration_ttl,
            clock=self.clock,
        )

    # ---- the authorization request: on to the consent page

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        resource = params.resource or self.resource
        if resource.rstrip("/") != self.resource:
            raise AuthorizeError(
                "invalid_target", f"This server grants access to {self.resource} only, not {resource}"
            )
        problem = redirect_uri_problem(str(params.redirect_uri))
        if problem:  # registered before this rule, or edited in the store: never send a code there
            raise AuthorizeError("invalid_request", problem)
        request: dict[str, str] = {
            "client_id": client.client_id or "",
            "resource": self.resource,
            "code_challenge": params.code_challenge,
        }
        if params.redirect_uri_provided_explicitly:
            request["redirect_uri"] = str(params.redirect_uri)
        if params.scopes:
            request["scope"] = " ".join(params.scopes)
        if params.state is not None:
            request["state"] = params.state
        return f"{self.issuer}/dashboard/authorize?{urlencode(request)}"

    # ---- codes and tokens

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> _Code | None:
        found = await find_code(
            self.store, client_id=client.client_id or "", code=authorization_code, clock=self.clock
        )
        if found is None:
            return None
        code, grant = found
        return _Code(
            code=authorization_code,
            scopes=list(code.scopes),
            expires_at=code.expires_at.timestamp(),
            client_id=code.client_id,
            code_challenge=code.code_challenge,
            redirect_uri=AnyUrl(code.redirect_uri),
            redirect_uri_provided_explicitly=code.redirect_uri_explicit,
            resource=grant.resource,
            subject=grant.producer_id,
            stored=code,
            grant=grant,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: _Code
    ) -> OAuthToken:
        try:
            issued = await exchange_code(
                self.store, code=authorization_code.stored, grant=authorization_code.grant, clock=self.clock
            )
        except GrantRefused as refused:
            raise TokenError("invalid_grant", str(refused)) from None
        return _token_response(issued)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> _Refresh | None:
        found = await find_refresh_token(
            self.store, client_id=client.client_id or "", token=refresh_token, clock=self.clock
        )
        if found is None:
            return None
        token, grant = found
        return _Refresh(
            token=refresh_token,
            client_id=grant.client_id,
            scopes=list(token.scopes),
            expires_at=int(token.expires_at.timestamp()),
            resource=grant.resource,
            subject=grant.producer_id,
            stored=token,
            grant=grant,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: _Refresh, scopes: list[str]
    ) -> OAuthToken:
        try:
            issued = await rotate_refresh_token(
                self.store,
                token=refresh_token.stored,
                grant=refresh_token.grant,
                scopes=scopes,
                clock=self.clock,
            )
        except GrantRefused as refused:
            raise TokenError("invalid_grant", str(refused)) from None
        return _token_response(issued)

    async def load_access_token(self, token: str) -> AccessToken | None:
        """For the revocation endpoint (requests to `/mcp` are authenticated by `server.auth`)."""
        found = await find_access_token(self.store, token=token)
        if found is None:
            return None
        stored, grant = found
        return AccessToken(
            token=token,
            client_id=grant.client_id,
            scopes=list(stored.scopes),
            expires_at=int(stored.expires_at.timestamp()),
            resource=grant.resource,
            subject=grant.producer_id,
        )

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await revoke_token(self.store, token=token.token, client_id=token.client_id, clock=self.clock)

    async def revoke(self, client: OAuthClientInformationFull, token: str) -> None:
        """RFC 7009: end the grant of `token` (access or refresh) if it is `client`'s; else nothing."""
        await revoke_token(self.store, token=token, client_id=client.client_id or "", clock=self.clock)

    async def grant_resource(
        self, client: OAuthClientInformationFull, *, code: str | None = None, refresh_token: str | None = None
    ) -> str | None:
        """The resource `client`'s `code` or `refresh_token` was granted for; None when unknown."""
        return await grant_resource(
            self.store, client_id=client.client_id or "", code=code, refresh_token=refresh_token
        )

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: Any
    ) -> OAuthToken:
        raise TokenError(
            "unsupported_grant_type", "The JWT bearer grant is not supported by this authorization server"
        )


def _name(client: OAuthClientInformationFull) -> str:
    name = (client.client_name or "").strip()
    return name[:200] if name else _UNNAMED


def _stored_information(client: OAuthClientInformationFull) -> dict:
    """The client's metadata without its id (the row's key) and secret (kept only as a hash)."""
    return client.model_dump(mode="json", exclude={"client_id", "client_secret"}, exclude_none=True)


def _information(client: OAuthClient) -> OAuthClientInformationFull:
    return OAuthClientInformationFull.model_validate(
        {**client.information, "client_id": client.id, "client_secret": client.secret_hash}
    )


def _token_response(issued: IssuedTokens) -> OAuthToken:
    return OAuthToken(
        access_token=issued.access_token,
        token_type="Bearer",
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
        refresh_token=issued.refresh_token,
    )
