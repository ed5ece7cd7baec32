"""OAuth test helpers: PKCE, client registration, the consent step over the dashboard's forms, and
the token endpoint, all in process (the end-to-end test drives the same steps with real clients)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from storage.ids import utcnow
from tests.support.dashboard import BASE, csrf_of, sign_in
from tests.support.rest import http_app, rest_client
from tools.core.catalog import may_call
from tools.core.context import Principal
from tools.registry import TOOLS

__all__ = [
    "ISSUER",
    "REDIRECT",
    "RESOURCE",
    "Pkce",
    "authorize",
    "connect",
    "consent",
    "local_http_server",
    "owner_browser",
    "query_of",
    "refused_at_authorize",
    "register",
    "server",
    "token",
    "tools_of",
]

REDIRECT = "http://127.0.0.1:9999/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')
_REFUSED = re.compile(r"Its request was refused: <code>([a-z_]+)</code> — ([^<]*)</div>")


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        return cls(verifier, challenge)


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


async def register(
    client: httpx.AsyncClient, *, redirect_uris: list[str] | None = None, **metadata: Any
) -> httpx.Response:
    body = {
        "client_name": "Test Agent",
        "redirect_uris": redirect_uris or [REDIRECT],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    return await client.post("/register", json=body)


async def authorize(client: httpx.AsyncClient, client_id: str, pkce: Pkce, **params: str) -> httpx.Response:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": "st-1",
        **params,
    }
    return await client.get("/authorize", params=query)


def refused_at_authorize(response: httpx.Response) -> tuple[str, str]:
    """The error code and description of the page `/authorize` shows for a request it refuses
    before consent, checking that it is that page: 400, HTML, and no redirect anywhere."""
    assert response.status_code == 400, (
        response.status_code,
        response.headers.get("location"),
        response.text,
    )
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    found = _REFUSED.search(response.text)
    assert found, response.text
    return found.group(1), found.group(2)


async def consent(
    browser: httpx.AsyncClient,
    location: str,
    *,
    decision: str = "allow",
    permissions: list[str] | None = None,
    csrf: bool = True,
    identities: str | None = None,
) -> httpx.Response:
    """Open the consent page `/authorize` sent the browser to, and answer it (the preset grid unless
    `permissions`; the preset choice of students' identities, full, unless `identities`)."""
    page = await browser.get(
        location.removeprefix(f"{urlsplit(location).scheme}://{urlsplit(location).netloc}")
    )
    assert page.status_code == 200, page.text
    fields = dict(_HIDDEN.findall(page.text))
    form: dict[str, Any] = {
        name: value.replace("&amp;", "&") for name, value in fields.items() if name != "csrf_token"
    }
    if csrf:
        form["csrf_token"] = csrf_of(page)
    form["decision"] = decision
    form["permissions"] = (
        permissions
        if permissions is not None
        else re.findall(r'name="permissions" value="([^"]+)" checked', page.text)
    )
    if identities is not None:
        form["identities"] = identities
    return await browser.post("/dashboard/authorize", data=form)


async def token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/token", data=form)


@contextmanager
def local_http_server(documents: dict[str, Any], requested: list[str] | None = None) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a thread): answers GET with the document at the path (a
    dict as JSON, bytes as they are, `("redirect", url)` as a 302; 404 without one, or 200 when
    recording) and appends each requested path and query to `requested`. Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if requested is not None:
                requested.append(self.path)
            document = documents.get(self.path.split("?", 1)[0])
            if isinstance(document, tuple):  # ("redirect", location)
                self.send_response(302)
                self.send_header("Location", document[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = (
                document
                if isinstance(document, bytes)
                else json.dumps(document if document is not None else {"done": True}).encode()
            )
            self.send_response(200 if document is not None or requested is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


ISSUER = "http://127.0.0.1:8000"
RESOURCE = f"{ISSUER}/mcp"


@asynccontextmanager
async def server(store, *, clock=utcnow, **settings) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP app (lifespan running, for `/mcp`) and a client of it."""
    app = http_app(store, clock=clock, **settings)
    async with app.router.lifespan_context(app), rest_client(app, base_url=BASE) as client:
        yield client


@asynccontextmanager
async def owner_browser(client: httpx.AsyncClient, tenant) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same app with the owner signed in on the dashboard (its own cookies)."""
    async with httpx.AsyncClient(transport=client._transport, base_url=BASE) as browser:
        response = await sign_in(browser, tenant.owner_email, tenant.owner_password)
        assert response.status_code == 303
        yield browser


async def connect(
    client,
    browser,
    *,
    permissions: list[str] | None = None,
    scope: str = "courses:read students:read",
    identities: str | None = None,
):
    """Register a public client, authorize with PKCE, consent, and exchange the code: (client id, tokens)."""
    client_id = (await register(client)).json()["client_id"]
    pkce = Pkce.new()
    started = await authorize(client, client_id, pkce, scope=scope, resource=RESOURCE)
    assert started.status_code == 302, started.text
    answered = await consent(
        browser, started.headers["location"], permissions=permissions, identities=identities
    )
    assert answered.status_code == 303, answered.text
    code = query_of(answered.headers["location"])["code"]
    issued = await token(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        client_id=client_id,
        code_verifier=pkce.verifier,
    )
    assert issued.status_code == 200, issued.text
    return client_id, issued.json()


def tools_of(grants: list[str]) -> set[str]:
    principal = Principal(producer_id="p", key_id="k", key_name="k", grants=tuple(grants))
    return {op.name for op in TOOLS if may_call(principal, op)}
