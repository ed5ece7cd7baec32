"""Real OAuth clients in the end-to-end tests: their token storage, and what the school's owner
does in the Chromium page the client opened."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from server.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.support.oauth import query_of

__all__ = ["GRANTED", "MemoryTokens", "browser_oauth_client", "callback_query", "sign_in_and_consent"]

GRANTED = ["courses:read", "students:read"]


class MemoryTokens:
    """The client's token storage (the SDK asks for one), in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def sign_in_and_consent(
    page, authorization_url: str, *, client_name: str, redirect_uri: str, shots: Path
) -> None:
    """What the owner does in the browser the client opened: sign in, narrow the permissions to
    GRANTED, allow; returns once the browser reached the client's redirect URI."""
    await page.goto(authorization_url)
    await page.wait_for_url(re.compile(r"/dashboard/sign-in\?next="))
    await page.get_by_label("Email").fill(DEMO_EMAIL)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/dashboard/authorize\?"))
    assert await page.get_by_role("heading", name=f"Connect {client_name} to your school?").is_visible()
    assert "127.0.0.1" in await page.locator(".redirect-host").inner_text()
    # The client asked for what the 401 named (every permission): the owner narrows it.
    assert await page.locator('input[value="courses:write"]').is_checked()
    for box in await page.locator('input[name="permissions"]').all():
        await box.set_checked(await box.get_attribute("value") in GRANTED)
    await page.screenshot(path=str(shots / "consent.png"), full_page=True)
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(re.compile(re.escape(redirect_uri)))


def callback_query(requested: list[str]) -> dict[str, str]:
    """The query the browser brought to the client's redirect URI."""
    return query_of(next(path for path in requested if path.startswith("/callback")))


def browser_oauth_client(
    mcp_url: str,
    *,
    client_name: str,
    redirect_uri: str,
    tokens: MemoryTokens,
    requested: list[str],
    open_browser: Callable[[str], Awaitable[None]],
) -> OAuthClientProvider:
    """The SDK's OAuth client for `mcp_url`, as a desktop client is: a public client (no secret)
    that registers itself, sends the owner's browser to the authorization URL (`open_browser`) and
    takes the code from what the browser brought to `redirect_uri` (recorded in `requested`); it
    keeps its registration and tokens in `tokens`."""

    async def code_from_redirect() -> AuthorizationCodeResult:
        answer = callback_query(requested)
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"))

    return OAuthClientProvider(
        mcp_url,
        OAuthClientMetadata(
            client_name=client_name,
            redirect_uris=[AnyUrl(redirect_uri)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        tokens,
        redirect_handler=open_browser,
        callback_handler=code_from_redirect,
    )
