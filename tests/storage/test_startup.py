"""Cold start: `blohko serve` on an SQLite file answers its first `tools/list` from the published
tool list (`server/published_tools.json`), its key checked with `sqlite3` (`storage/startup.py`),
before it loads the store and the catalog (`server/deferred_runtime.py`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import anyio.to_thread
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from sqlmodel import col

from server.deferred_runtime import deferred_runtime
from server.mcp_app import create_mcp_server
from server.published_tools import PUBLISHED_TOOLS_FILE, published_tools
from server.settings import Settings
from storage.ids import utcnow
from storage.migrate import HEAD
from storage.startup import StartupReader, sqlite_file
from storage.tables import ApiKey
from tests.support.factories import add_key, ok
from tools.domains.accounts import hash_api_key, revoke_api_key
from tools.registry import TOOLS

ROOT = Path(__file__).resolve().parents[2]

# What serving the first tools/list may not import: the database layer, the migrations, the catalog.
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "asyncpg",
    "storage.tables",
    "storage.engine",
    "tools.registry",
)


def test_the_published_tools_are_the_catalogs_tools_in_its_order():
    """`tools/list` is served from the published file without the catalog; that the file says what
    the catalog says is `tests/server/test_generated_files.py`'s check."""
    assert [tool.name for tool in published_tools()] == [op.name for op in TOOLS]


def test_the_wheel_ships_the_published_tool_file(tmp_path):
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as shipped:
        assert json.loads(shipped.read("server/published_tools.json")) == json.loads(
            PUBLISHED_TOOLS_FILE.read_text(encoding="utf-8")
        )


def test_the_stdio_server_modules_import_neither_the_store_nor_the_catalog():
    script = "import sys, server.cli, server.mcp_app, server.deferred_runtime; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert not [name for name in loaded if name.startswith(HEAVY)]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:////var/data/blohko.db", "/var/data/blohko.db"),
        ("sqlite+aiosqlite:///relative/blohko.db", "relative/blohko.db"),
        ("sqlite:////var/data/blohko.db", "/var/data/blohko.db"),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:////var/data/blohko.db?mode=ro", None),
        ("sqlite+aiosqlite:////var/data/blo%20hko.db", None),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", None),
    ],
)
def test_only_a_plain_sqlite_file_url_takes_the_sqlite3_path(url, path):
    assert sqlite_file(url) == (Path(path) if path else None)


def _sqlite_file(url: str) -> Path:
    path = sqlite_file(url)
    assert path is not None, "a test store on SQLite is a plain file"
    return path


@pytest.mark.sqlite_only
async def test_the_startup_reader_reads_a_key_row_as_the_credential_cache_does(store, tenant):
    expiring = await add_key(store, tenant, ["courses:read"], expires_in_days=3)
    async with store.writing() as db:
        (await db.session.get(ApiKey, tenant.key_id)).last_used_at = utcnow()
    reader = StartupReader(_sqlite_file(store.url))
    try:
        for key in (tenant.key, expiring):
            assert reader.api_key(hash_api_key(key)) == await store.credentials.api_key(hash_api_key(key))
        assert reader.api_key(hash_api_key("blk_" + "x" * 43)) is None
        assert reader.schema_revision() == HEAD
    finally:
        reader.close()


def test_the_startup_reader_finds_no_schema_in_a_missing_file(tmp_path):
    reader = StartupReader(tmp_path / "new.db")
    assert reader.schema_revision() is None
    assert not (tmp_path / "new.db").exists()  # the check creates nothing: the upgrade does


def _deferred_server_script(url: str, key: str) -> str:
    """A stdio server's composition driven by an in-process client: what was imported when the
    first tools/list was built (the innermost middleware sees it before the answer is sent)."""
    return textwrap.dedent(f"""
        import json, sys
        import anyio
        from mcp import Client
        from server.deferred_runtime import deferred_runtime
        from server.mcp_app import create_mcp_server
        from server.settings import Settings
        from storage.startup import StartupReader, sqlite_file

        HEAVY = {HEAVY!r}
        seen = {{}}

        async def main():
            settings = Settings(database_url={url!r})
            reader = StartupReader(sqlite_file(settings.database_url))
            async with deferred_runtime(settings, reader) as runtime:
                server = create_mcp_server(runtime, api_key={key!r})

                async def note_imports(ctx, call_next):
                    result = await call_next(ctx)
                    if ctx.method == "tools/list" and "list" not in seen:
                        seen["list"] = sorted(name for name in sys.modules if name.startswith(HEAVY))
                    return result

                server.middleware.append(note_imports)
                async with Client(server) as client:
                    names = [tool.name for tool in (await client.list_tools()).tools]
                    called = await client.call_tool("list_courses", {{}})
                heavy_after_call = sorted(name for name in sys.modules if name.startswith(HEAVY))
            print(json.dumps({{"heavy_at_first_list": seen["list"], "heavy_after_call": heavy_after_call,
                              "tools": names, "call_failed": called.is_error}}))

        anyio.run(main)
    """)


@pytest.mark.sqlite_only
async def test_the_first_tools_list_is_served_before_the_store_loads_and_calls_run_after(store, tenant):
    courses_key = await add_key(store, tenant, ["courses:read"])
    script = _deferred_server_script(store.url, courses_key)
    done = await anyio.to_thread.run_sync(
        partial(
            subprocess.run,
            [sys.executable, "-c", script],
            check=False,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["heavy_at_first_list"] == []
    assert {"sqlalchemy", "storage.engine", "tools.registry"} <= set(answer["heavy_after_call"])
    assert set(answer["tools"]) == {op.name for op in TOOLS if op.permission in (None, "courses:read")}
    assert answer["call_failed"] is False


@pytest.mark.sqlite_only
@pytest.mark.parametrize("problem", ["revoked", "expired", "unknown"])
async def test_tools_list_before_the_store_loads_refuses_a_bad_key_as_the_store_would(store, tenant, problem):
    key = await add_key(store, tenant, ["*"])
    async with store.writing() as db:
        row = (
            await db.session.execute(
                ApiKey.__table__.select().where(col(ApiKey.key_hash) == hash_api_key(key))
            )
        ).one()
        if problem == "revoked":
            await revoke_api_key(db, producer_id=tenant.producer_id, key_id=row.id, clock=utcnow)
        if problem == "expired":
            (await db.session.get(ApiKey, row.id)).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    if problem == "unknown":
        key = "blk_" + "x" * 43
    expected = {
        "revoked": "This API key has been revoked",
        "expired": "This API key has expired",
        "unknown": "Invalid API key",
    }
    settings = Settings(database_url=store.url)
    reader = StartupReader(_sqlite_file(store.url))
    try:
        async with deferred_runtime(settings, reader) as runtime:
            async with Client(create_mcp_server(runtime, api_key=key)) as client:
                with pytest.raises(MCPError, match=f"Unauthorized: {expected[problem]}"):
                    await client.list_tools()
            assert runtime.loaded is None  # a refused list loads nothing
    finally:
        reader.close()


@pytest.mark.sqlite_only
async def test_a_call_first_loads_the_store_and_runs_as_over_a_loaded_runtime(store, tenant):
    settings = Settings(database_url=store.url)
    reader = StartupReader(_sqlite_file(store.url))
    try:
        async with (
            deferred_runtime(settings, reader) as runtime,
            Client(create_mcp_server(runtime, api_key=tenant.key)) as client,
        ):
            whoami = ok(await client.call_tool("whoami", {}))
            assert runtime.loaded is not None
            names = {tool.name for tool in (await client.list_tools()).tools}
        assert whoami["producer"]["id"] == tenant.producer_id
        assert names == {op.name for op in TOOLS}
    finally:
        reader.close()
