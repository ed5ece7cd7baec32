"""Client ID Metadata Documents (the MCP authorization spec, 2025-11-25 and 2026-07-28): a client
whose id is an https URL publishes its metadata there, and we fetch it.

Fetching a URL a stranger names is a server-side request forgery risk, so the fetch is narrow:
https only, a host that resolves to public addresses only (`tools.core.outbound`), no redirects,
a 5 s timeout, at most 5 KiB, JSON whose `client_id` is the URL itself. `allow_loopback` (a setting that is off by default) admits http and https URLs on a
loopback address, for tests and local development.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from server.oauth.redirects import redirect_uri_problem
from tools.core.outbound import UnsafeUrl, check_outbound_url

__all__ = ["MAX_DOCUMENT_BYTES", "DocumentRefused", "fetch_client_document", "is_document_client_id"]

MAX_DOCUMENT_BYTES = 5 * 1024
FETCH_TIMEOUT_SECONDS = 5.0


class DocumentRefused(Exception):
    """Why a client ID metadata document cannot be used (safe to log: names only the URL)."""


def is_document_client_id(client_id: str) -> bool:
    return client_id.startswith(("https://", "http://"))


async def fetch_client_document(url: str, *, allow_loopback: bool, scopes: str) -> OAuthClientInformationFull:
    """The client described at `url`, as the SDK models a client (public: no secret), allowed to
    ask for `scopes`; or `DocumentRefused` saying why."""
    await _check_url(url, allow_loopback=allow_loopback)
    try:
        async with httpx2.AsyncClient(follow_redirects=False, timeout=FETCH_TIMEOUT_SECONDS, trust_env=False) as http:
            async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
                if response.is_redirect:
                    raise DocumentRefused(f"{url} answered with a redirect; metadata documents are not fetched through redirects")
                if response.status_code != 200:
                    raise DocumentRefused(f"{url} answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise DocumentRefused(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx2.HTTPError as error:
        raise DocumentRefused(f"{url} could not be fetched: {type(error).__name__}") from None
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DocumentRefused(f"{url} is not JSON") from None
    if not isinstance(document, dict):
        raise DocumentRefused(f"{url} is not a JSON object")
    if document.get("client_id") != url:
        raise DocumentRefused(f"the document at {url} names another client_id")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise DocumentRefused(f"{url}: a metadata document client is public: token_endpoint_auth_method must be none, not {method!r}")
    try:
        client = OAuthClientInformationFull.model_validate({**document, "token_endpoint_auth_method": "none", "scope": scopes})
    except ValidationError as error:
        raise DocumentRefused(f"{url} is not valid client metadata: {error.errors()[0]['msg']}") from None
    if not client.redirect_uris:
        raise DocumentRefused(f"{url} names no redirect_uris")
    for redirect_uri in client.redirect_uris:
        problem = redirect_uri_problem(str(redirect_uri))
        if problem:
            raise DocumentRefused(f"{url}: {problem}")
    return client


async def _check_url(url: str, *, allow_loopback: bool) -> None:
    parts = urlsplit(url)
    if parts.fragment:
        raise DocumentRefused(f"{url}: a client id URL has no fragment")
    if parts.path in ("", "/"):
        raise DocumentRefused(f"{url}: a client id URL has a path")
    try:
        await check_outbound_url(url, allow_loopback=allow_loopback)
    except UnsafeUrl as unsafe:
        raise DocumentRefused(str(unsafe)) from None
