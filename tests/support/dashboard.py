"""The Producer Dashboard in process: a client of the app, its CSRF token, the owner's sign-in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx

from tests.support.rest import http_app, rest_client

__all__ = ["BASE", "csrf_of", "dashboard", "demo_http_server", "sign_in", "signed_in"]

BASE = "http://127.0.0.1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def dashboard(store, **settings) -> httpx.AsyncClient:
    """The dashboard in process, on a server configured by `settings` (`tests.support.rest.http_app`)."""
    return rest_client(http_app(store, **settings), base_url=BASE)


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
async def signed_in(store, tenant, **settings) -> AsyncIterator[httpx.AsyncClient]:
    async with dashboard(store, **settings) as client:
        response = await sign_in(client, tenant.owner_email, tenant.owner_password)
        assert response.status_code == 303 and response.headers["location"] == "/dashboard"
        yield client


@contextmanager
def demo_http_server(database_url: str, logs: Path) -> Iterator[object]:
    """`blohko serve --http` on a fresh demo school in `database_url` (a real process), for the
    dashboard's tests in a real browser; its log in `logs`."""
    from tests.support.processes import cli_env, http_server, run_cli

    env = cli_env(database_url)
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "--no-serve")
    with http_server(env, logs / "http.log") as running:
        yield running
