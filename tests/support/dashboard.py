"""The Producer Dashboard in process: a client of the app, its CSRF token, the owner's sign-in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.support.rest import http_app, rest_client

__all__ = ["BASE", "csrf_of", "dashboard", "sign_in", "signed_in"]

BASE = "http://127.0.0.1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def dashboard(store) -> httpx.AsyncClient:
    return rest_client(http_app(store), base_url=BASE)


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    form = await client.get("/dashboard/sign-in")
    return await client.post(
        "/dashboard/sign-in", data={"csrf_token": csrf_of(form), "email": email, "password": password}
    )


@asynccontextmanager
async def signed_in(store, tenant) -> AsyncIterator[httpx.AsyncClient]:
    async with dashboard(store) as client:
        response = await sign_in(client, tenant.owner_email, tenant.owner_password)
        assert response.status_code == 303 and response.headers["location"] == "/dashboard"
        yield client
