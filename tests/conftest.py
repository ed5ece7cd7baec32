"""Shared fixtures: a migrated database per test, producers and keys, an in-process MCP client."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storage.engine import Store, open_store
from storage.migrate import upgrade
from tests.factories import Tenant, make_tenant


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head per test run; each test gets a copy (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: Path) -> str:
    path = tmp_path / "blohko.db"
    shutil.copy(migrated_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with open_store(database_url) as opened:
        yield opened


@pytest.fixture
def tenant_factory(store: Store) -> Callable:
    async def make(name: str = "Acme Academy", permissions: list[str] | None = None) -> Tenant:
        return await make_tenant(store, name=name, permissions=permissions or ["*"])

    return make


@pytest.fixture
async def tenant(tenant_factory) -> Tenant:
    return await tenant_factory()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2, with the smallest cost parameters: production cost would dominate the suite's time."""
    from argon2 import PasswordHasher

    import tools.passwords

    monkeypatch.setattr(tools.passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def app(store: Store):
    """The HTTP app (REST at /api/v1, MCP at /mcp) over the test's store."""
    from tests.rest_support import http_app

    return http_app(store)


@pytest.fixture
async def http(app, tenant: Tenant) -> AsyncIterator:
    """A REST client of `app` acting with `tenant`'s full-access key."""
    from tests.rest_support import rest_client

    async with rest_client(app, tenant.key) as client:
        yield client
