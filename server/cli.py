"""The `blohko` command line. Output for scripts (`--json`) goes to stdout; everything else to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio

from server.logs import configure_logging
from server.settings import Settings
from storage.startup import StartupReader, sqlite_file

__all__ = ["main"]


class CliError(Exception):
    """A failure to report as one line on stderr, exiting non-zero."""


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _prepare_database(settings: Settings, *, allow_upgrade: bool) -> None:
    """Bring an empty SQLite store (or, with `allow_upgrade`, any store) to the newest schema;
    otherwise refuse to serve a schema that is behind. The check imports no Alembic (cold start)."""
    from storage.engine import is_sqlite
    from storage.migrate import SchemaBehind, database_revision, require_head, upgrade

    if allow_upgrade:
        upgrade(settings.database_url)
        return
    revision = database_revision(settings.database_url)
    if revision is None and is_sqlite(settings.database_url):
        upgrade(settings.database_url)
        return
    try:
        require_head(revision)
    except SchemaBehind as exc:
        raise CliError(str(exc)) from None


def _operate(settings: Settings, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run the catalog operation `name` as the machine's operator; its result as JSON data.

    The CLI is one more transport: validation, errors, audit and transactions are the runner's."""
    from storage.engine import open_store
    from tools.core.context import OPERATOR
    from tools.core.runner import run_operation
    from tools.registry import OPERATIONS_BY_NAME

    async def run() -> dict[str, Any]:
        async with open_store(**settings.store_options()) as store:
            result = await run_operation(OPERATIONS_BY_NAME[name], arguments, store=store, principal=OPERATOR)
        return result.model_dump(mode="json", by_alias=True)

    return anyio.run(run)


def _given(**arguments: Any) -> dict[str, Any]:
    """The arguments the command line gave (an option left out is absent, not null)."""
    return {name: value for name, value in arguments.items() if value is not None}


# --- serve -----------------------------------------------------------------


async def _serve_stdio(settings: Settings) -> None:
    from server.mcp_app import Runtime, create_mcp_server
    from server.runtime import settle_heap
    from storage.engine import open_store
    from tools.core.errors import Unauthorized
    from tools.domains.accounts import authenticate_api_key

    key = settings.api_key.get_secret_value() if settings.api_key else None
    async with open_store(**settings.store_options()) as store:
        runtime = Runtime.from_settings(settings, store)
        try:
            await authenticate_api_key(store, key, clock=runtime.clock)
        except Unauthorized as error:
            raise CliError(_refusal(error.message, key)) from None
        server = create_mcp_server(runtime, api_key=key)
        settle_heap()
        await server.run_stdio_async()


def _refusal(reason: str, key: str | None) -> str:
    hint = " (set BLOHKO_API_KEY)" if not key else ""
    return f"cannot serve: {reason}{hint}"


def _prepare_sqlite_file(settings: Settings, reader: StartupReader) -> None:
    """`_prepare_database` for a stdio server on an SQLite file, read with `sqlite3` (cold start)."""
    from storage.migrate import SchemaBehind, require_head, upgrade

    revision = reader.schema_revision()
    if revision is None:
        upgrade(settings.database_url)  # a new store: its first start only
        return
    try:
        require_head(revision)
    except SchemaBehind as exc:
        raise CliError(str(exc)) from None


async def _serve_stdio_on_file(settings: Settings, reader: StartupReader) -> None:
    """Stdio on an SQLite file: the key checked and tools listed before the store is loaded
    (`server.deferred_runtime`); PostgreSQL and unusual URLs take `_serve_stdio`."""
    from server.deferred_runtime import authenticate_on_file, deferred_runtime
    from server.mcp_app import create_mcp_server
    from tools.core.errors import Unauthorized

    key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        authenticate_on_file(reader, key)
    except Unauthorized as error:
        raise CliError(_refusal(error.message, key)) from None
    async with deferred_runtime(settings, reader) as runtime:
        await create_mcp_server(runtime, api_key=key).run_stdio_async()


async def _serve_http(settings: Settings, *, banner: str | None = None) -> None:
    import uvicorn

    from server.http_app import create_http_app
    from server.mcp_app import Runtime
    from server.runtime import settle_heap
    from storage.engine import open_store

    async with open_store(**settings.store_options()) as store:
        app = create_http_app(settings, Runtime.from_settings(settings, store))
        # `X-Forwarded-Proto`/`-For` count only from the configured proxies (uvicorn's own default
        # would read FORWARDED_ALLOW_IPS, which is not ours to document).
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        server = uvicorn.Server(config)
        settle_heap()
        if banner:
            sys.stderr.write(banner)
        await server.serve()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    if args.host:
        settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    sqlite_path = None if args.http else sqlite_file(settings.database_url)
    if sqlite_path is not None:
        reader = StartupReader(sqlite_path)
        try:
            _prepare_sqlite_file(settings, reader)
            anyio.run(_serve_stdio_on_file, settings, reader)
        finally:
            reader.close()
        return
    _prepare_database(settings, allow_upgrade=False)
    if args.http:
        anyio.run(_serve_http, settings)
    else:
        anyio.run(_serve_stdio, settings)


# --- worker ----------------------------------------------------------------


async def _deliver_webhooks(settings: Settings) -> None:
    import signal

    from server.webhooks import DeliveryWorker
    from storage.engine import open_store
    from storage.ids import utcnow

    async def stop_on_signal(worker: DeliveryWorker) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                worker.stop()
                return

    async with open_store(**settings.store_options()) as store:
        worker = DeliveryWorker(store, clock=utcnow, settings=settings)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(stop_on_signal, worker)
            sys.stderr.write(f"delivering webhooks (looking for due deliveries every {settings.webhook_poll_seconds:g} s)\n")
            await worker.run()
            tasks.cancel_scope.cancel()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    anyio.run(_deliver_webhooks, settings)


# --- demo ------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from server.demo import client_configs, ensure_demo
    from storage.engine import open_store

    if args.host:
        settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    _prepare_database(settings, allow_upgrade=True)
    async def setup():
        async with open_store(**settings.store_options()) as store:
            return await ensure_demo(store)

    demo = anyio.run(setup)
    url = settings.effective_public_url()
    if args.json:
        _print_json({"producerId": demo.producer_id, "key": demo.key, "mcpUrl": f"{url}/mcp", "restUrl": f"{url}/api/v1"})
    else:
        sys.stdout.write(client_configs(demo, url=url, database_url=settings.database_url))
        sys.stdout.flush()
    if not args.no_serve:
        anyio.run(_serve_http, settings)


# --- producers and keys ----------------------------------------------------


def cmd_producers_create(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    made = _operate(settings, "create_producer", _given(name=args.name, email=args.email, password=args.password))
    producer, generated = made["producer"], made["generatedPassword"]
    payload = {**producer, **({"generatedPassword": generated} if generated else {})}
    if args.json:
        _print_json(payload)
        return
    sys.stdout.write(f"Producer {producer['id']} ({producer['name']}), owner user {producer['ownerUserId']}\n")
    if generated:
        sys.stdout.write(f"Owner password (shown once): {generated}\n")


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    arguments = _given(
        producerId=args.producer,
        name=args.name,
        description=args.description,
        permissions=args.permissions,
        expiresInDays=args.expires_in_days,
    )
    made = _operate(settings, "create_api_key", arguments)["apiKey"]
    if args.json:
        _print_json(made)
        return
    sys.stdout.write(f"API key {made['id']} for {made['producerId']}: {', '.join(made['permissions'])}\n")
    sys.stdout.write(f"Key (shown once, store it now): {made['key']}\n")


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    keys: list[dict[str, Any]] = []
    page = 1
    while True:  # every page: the operator wants the whole list
        listed = _operate(settings, "list_api_keys", {"producerId": args.producer, "page": page, "limit": 100})
        keys += listed["data"]
        if not listed["pagination"]["hasMore"]:
            break
        page += 1
    if args.json:
        _print_json({"data": keys})
        return
    for key in keys:
        state = "revoked" if key["revokedAt"] else "active"
        sys.stdout.write(f"{key['id']}  {key['prefix']}...  {state:8}  {key['name']}  {' '.join(key['permissions'])}\n")


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    revoked = _operate(settings, "revoke_api_key", {"id": args.key_id})["apiKey"]
    if args.json:
        _print_json(revoked)
    else:
        sys.stdout.write(f"Revoked {revoked['id']}\n")


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    sys.stderr.write("database is at the newest schema\n")


# --- parser ----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blohko", description="Blohko MCP: MCP tool server and REST API.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve MCP over stdio (key from BLOHKO_API_KEY), or HTTP with --http")
    serve.add_argument("--http", action="store_true", help="streamable HTTP at /mcp, REST at /api/v1, GET /healthz")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8000)")
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser(
        "worker",
        help="only deliver webhooks, serving nothing",
        description="Deliver webhooks until stopped. Every `blohko serve --http` process already delivers them, "
        "so most setups need no worker; run one (or several, on PostgreSQL) when webhooks should go from "
        "processes of their own, or when only stdio `blohko serve` runs, which delivers none.",
    )
    worker.set_defaults(run=cmd_worker)

    demo = commands.add_parser("demo", help="create demo data and a full-access key, print client configs, serve HTTP")
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--json", action="store_true")
    demo.add_argument("--no-serve", action="store_true", help="set up and print, but do not serve")
    demo.set_defaults(run=cmd_demo)

    producers = commands.add_parser("producers", help="manage producers").add_subparsers(dest="action", required=True)
    create = producers.add_parser("create", help="create a producer and its owner user")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="the owner's password (generated and printed once if omitted)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_producers_create)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create an API key; prints it once")
    create.add_argument("--producer", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--description")
    create.add_argument("--permissions", nargs="+", required=True, metavar="P", help="e.g. '*' courses:read students:*")
    create.add_argument("--expires-in-days", type=int)
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_keys_create)
    listing = keys.add_parser("list", help="list a producer's keys (never their secrets)")
    listing.add_argument("--producer", required=True)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(run=cmd_keys_revoke)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(run=cmd_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    from tools.core.errors import BlohkoError

    try:
        args.run(args, settings)
    except (CliError, BlohkoError) as exc:
        sys.stderr.write(f"blohko: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
