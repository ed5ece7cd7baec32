"""Client ID Metadata Documents (the MCP authorization spec, 2025-11-25 and 2026-07-28): a client
whose id is an https URL publishes its metadata there, and we fetch it.

Fetching a URL a stranger names is a server-side request forgery risk, so the fetch is narrow and
goes through the outbound client (`tools.core.outbound`): https only, a host that resolves to public
addresses only, connected to at the address that was checked (no second lookup), no redirects,
one 5 s deadline for the whole fetch (resolution, connection, headers and body), at most 5 KiB,
JSON whose `client_id` is the URL itself. An unauthenticated `/authorize` can start a fetch, so
the deadline, not a per-read timeout, is what bounds how long it holds the server. `allow_loopback`
(a setting that is off by default) admits http and https URLs on a loopback address, for tests
and local development.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from server.oauth.redirects import redirect_uri_problem
from tools.core.outbound import OutboundClient, RequestFailed, UnsafeUrl

__all__ = [
    "FETCH_DEADLINE_SECONDS",
    "MAX_DOCUMENT_BYTES",
    "DocumentRefused",
    "fetch_client_document",
    "is_document_client_id",
]

MAX_DOCUMENT_BYTES = 5 * 1024
FETCH_DEADLINE_SECONDS = 5.0
"""The whole fetch, from resolving the host to the document's last byte."""


class DocumentRefused(Exception):
    """Why a client ID metadata document cannot be used (safe to log: names only the URL)."""


def is_document_client_id(client_id: str) -> bool:
    return client_id.startswith(("https://", "http://"))


async def fetch_client_document(
    url: str, *, allow_loopback: bool, scopes: str, deadline_seconds: float = FETCH_DEADLINE_SECONDS
) -> OAuthClientInformationFull:
    """The client described at `url`, as the SDK models a client (public: no secret), allowed to
    ask for `scopes`; or `DocumentRefused` saying why. The fetch ends at `deadline_seconds`."""
    _check_shape(url)
    try:
        async with OutboundClient(allow_loopback=allow_loopback) as outbound:
            response = await outbound.request(
                "GET",
                url,
                deadline=deadline_seconds,
                max_body_bytes=MAX_DOCUMENT_BYTES,
                headers={"accept": "application/json"},
            )
    except UnsafeUrl as unsafe:
        raise DocumentRefused(str(unsafe)) from None
    except RequestFailed as failure:
        raise DocumentRefused(f"{url} could not be fetched: {failure}") from None
    if response.is_redirect:
        raise DocumentRefused(
            f"{url} answered with a redirect; metadata documents are not fetched through redirects"
        )
    if response.status_code != 200:
        raise DocumentRefused(f"{url} answered {response.status_code}")
    if response.truncated:
        raise DocumentRefused(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DocumentRefused(f"{url} is not JSON") from None
    if not isinstance(document, dict):
        raise DocumentRefused(f"{url} is not a JSON object")
    if document.get("client_id") != url:
        raise DocumentRefused(f"the document at {url} names another client_id")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise DocumentRefused(
            f"{url}: a metadata document client is public: token_endpoint_auth_method must be none, not {method!r}"
        )
    try:
        client = OAuthClientInformationFull.model_validate(
            {**document, "token_endpoint_auth_method": "none", "scope": scopes}
        )
    except ValidationError as error:
        raise DocumentRefused(f"{url} is not valid client metadata: {error.errors()[0]['msg']}") from None
    if not client.redirect_uris:
        raise DocumentRefused(f"{url} names no redirect_uris")
    for redirect_uri in client.redirect_uris:
        problem = redirect_uri_problem(str(redirect_uri))
        if problem:
            raise DocumentRefused(f"{url}: {problem}")
    return client


def _check_shape(url: str) -> None:
    """What the spec asks of a client id URL beyond the outbound policy."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise DocumentRefused(f"{url}: its host is not a host name") from None
    if parts.fragment:
        raise DocumentRefused(f"{url}: a client id URL has no fragment")
    if parts.path in ("", "/"):
        raise DocumentRefused(f"{url}: a client id URL has a path")
