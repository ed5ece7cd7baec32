"""Shared fixtures: a migrated database per test, producers and keys, an in-process MCP client."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.engine import Store, open_store
from storage.migrate import upgrade
from tests.support.databases import ENGINE, DatabaseFactory, empty_tables, run_in_own_thread
from tests.support.factories import Tenant, make_tenant


def pytest_report_header(config: pytest.Config) -> str:
    if ENGINE == "postgresql":
        return f"blohko test engine: {ENGINE} (only the tests that use a database)"
    return f"blohko test engine: {ENGINE}"


# Every database a test run makes comes from this fixture: `migrated_template`, `database_url`,
# `store`, `tenant`, `app`, `http` use it, and so do the tests that start real processes on
# `databases.new(...)`. A test that uses none of them (directly or through other fixtures) never
# touches the engine under test.
DATABASE_FIXTURE = "databases"


def runs_in_this_pass(item: pytest.Item) -> bool:
    """`postgres_only` tests belong to the PostgreSQL pass and `sqlite_only` ones to the SQLite pass.
    The PostgreSQL pass runs only the tests that use a database: the others (catalog, schemas, video
    parsing, ...) would repeat their SQLite run exactly."""
    if ENGINE == "sqlite":
        return item.get_closest_marker("postgres_only") is None
    if item.get_closest_marker("sqlite_only") is not None:
        return False
    # `fixturenames` is the closure: the fixtures a test requests and every fixture they request.
    return item.get_closest_marker("postgres_only") is not None or DATABASE_FIXTURE in getattr(
        item, "fixturenames", ()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = [item for item in items if runs_in_this_pass(item)]
    deselected = [item for item in items if not runs_in_this_pass(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    config.stash[_LEFT_OUT] = len(deselected)
    workeroutput = getattr(config, "workeroutput", None)  # set by xdist on its workers
    if workeroutput is not None:  # an xdist worker: tell the controller, which collects nothing
        workeroutput["blohko_left_out"] = len(deselected)


_LEFT_OUT = pytest.StashKey[int]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    if "blohko_left_out" in getattr(node, "workeroutput", {}):
        node.config.stash[_LEFT_OUT] = node.workeroutput["blohko_left_out"]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(_LEFT_OUT, 0):
        which = "are sqlite_only or use no database" if ENGINE == "postgresql" else "are postgres_only"
        terminalreporter.write_line(
            f"{ENGINE} pass: {config.stash[_LEFT_OUT]} tests left out that {which} (tests/conftest.py, runs_in_this_pass)"
        )


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Fresh databases of this run's engine; PostgreSQL ones are dropped when the run ends."""
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def migrated_template(databases: DatabaseFactory) -> str:
    """One database migrated to head per test run (migrating per test is slow)."""
    url = databases.new("template")
    upgrade(url)
    return url


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: str) -> str:
    """A migrated, empty database for one test: a copy of the template file on SQLite; on
    PostgreSQL the run's one database, emptied of every row the previous test left."""
    if ENGINE == "sqlite":
        path = tmp_path / "blohko.db"
        template = make_url(migrated_template).database
        assert template is not None  # an SQLite URL names its file
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    run_in_own_thread(empty_tables, migrated_template)
    return migrated_template


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

    import tools.core.passwords

    monkeypatch.setattr(
        tools.core.passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture(scope="session")
def node_tools():
    """The Node tools of package.json (MCPB, TypeScript SDK, Inspector, conformance), `npm ci`-ed when stale."""
    from tests.support.node_tools import install_node_tools

    return install_node_tools()


@pytest.fixture
def app(store: Store):
    """The HTTP app (REST at /api/v1, MCP at /mcp) over the test's store."""
    from tests.support.rest import http_app

    return http_app(store)


@pytest.fixture
async def http(app, tenant: Tenant) -> AsyncIterator:
    """A REST client of `app` acting with `tenant`'s full-access key."""
    from tests.support.rest import rest_client

    async with rest_client(app, tenant.key) as client:
        yield client
