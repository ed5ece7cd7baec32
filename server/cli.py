"""The `blohko` command line. Output for scripts (`--json`) goes to stdout; everything else to stderr.

A failure is one line on stderr (`blohko: ...`) and a non-zero exit status, never a traceback: bad
settings, a database that cannot be opened (`_opening_database`), a port that is taken
(`_listening_socket`, checked before anything is changed or served).
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from server.logs import configure_logging
from server.settings import Settings
from storage.defaults import ACCEPTED_DATABASE_URLS, default_database_path
from storage.startup import StartupReader, sqlite_file

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["main"]


class CliError(Exception):
    """A failure to report as one line on stderr, exiting non-zero."""


# --- failures as one line --------------------------------------------------


def _settings_problem(error: ValidationError) -> str:
    """The settings' validation error as one line naming each variable."""
    problems = []
    for detail in error.errors():
        name = (
            "BLOHKO_" + "_".join(str(part) for part in detail["loc"][:1]).upper()
            if detail["loc"]
            else "settings"
        )
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if detail["loc"] else message)
    return "; ".join(problems)


@contextmanager
def _opening_database(settings: Settings) -> Iterator[None]:
    """Turn a database that cannot be opened (no server, a wrong role, a file that cannot be
    made, a driver missing) into one line naming the URL and the forms it takes."""
    try:
        yield
    except CliError:
        raise
    except Exception as error:
        from storage.open_failures import open_failure, shown_url  # SQLAlchemy: only once something failed

        reason = open_failure(error)
        if reason is None:
            raise
        raise CliError(
            f"cannot open the database at {shown_url(settings.database_url)}: {reason} "
            f"(BLOHKO_DATABASE_URL takes {ACCEPTED_DATABASE_URLS})"
        ) from None


def _check_sqlite_directory(settings: Settings) -> None:
    """An SQLite file's directory must exist: a typo in a path should not make a tree of directories."""
    path = sqlite_file(settings.database_url)
    if path is None:
        return
    if not path.parent.is_dir():
        raise CliError(
            f"cannot open the database at {settings.database_url}: the directory {path.parent} does not exist "
            f"(create it, or point BLOHKO_DATABASE_URL elsewhere: {ACCEPTED_DATABASE_URLS})"
        )
    if path.is_dir():
        raise CliError(
            f"cannot open the database at {settings.database_url}: {path} is a directory, not a file"
        )


def _listening_socket(
    settings: Settings, *, port: int | None = None, reuse_port: bool = False
) -> socket.socket:
    """The HTTP server's socket, bound now: a port that is taken is found before anything is
    changed or served (and no other process can take it in between). Uvicorn serves on it.
    `reuse_port`: one of several sockets on the port (`_worker_sockets`)."""
    host, port = settings.host, settings.port if port is None else port
    # IPPROTO_TCP named, not left 0: accepted connections inherit it, and asyncio turns Nagle's
    # algorithm off (TCP_NODELAY) only on sockets whose proto says TCP. Without it each answer's
    # second write would wait for the client's delayed ACK.
    listening = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    listening.setsockopt(
        socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
    )  # as uvicorn does: restarts reuse the port at once
    if reuse_port:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        if error.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is already in use (another server, or another blohko): "
                "choose another with --port N or BLOHKO_PORT=N"
            ) from None
        raise CliError(
            f"cannot listen on {host}:{port}: {error.strerror or error} "
            "(choose the address with --host or BLOHKO_HOST, the port with --port or BLOHKO_PORT)"
        ) from None
    return listening


def _worker_sockets(settings: Settings, count: int) -> list[socket.socket]:
    """A socket of its own for each of `count` workers, all on one port (`SO_REUSEPORT`): the
    kernel spreads new connections over them, where workers sharing one socket would leave a burst
    of connections to whichever woke first (asyncio accepts all that are waiting at once).

    The port is checked first with a plain socket, as one process's would be: sockets with
    `SO_REUSEPORT` would share the port with another server that set it too, not refuse. Only
    Linux spreads connections over such sockets; elsewhere the workers share the plain one."""
    probe = _listening_socket(settings)  # a taken port is refused here; port 0 picks one
    if not sys.platform.startswith("linux"):
        return [probe] * count
    port = probe.getsockname()[1]
    probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_listening_socket(settings, port=port, reuse_port=True))
    except CliError:
        for bound in sockets:
            bound.close()
        raise
    return sockets


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _prepare_database(settings: Settings, *, allow_upgrade: bool) -> None:
    """Bring an empty SQLite store (or, with `allow_upgrade`, any store) to the newest schema;
    otherwise refuse to serve a schema that is behind. The check imports no Alembic (cold start).
    A database that cannot be opened is one line (`_opening_database`)."""
    from storage.engine import is_sqlite
    from storage.migrate import SchemaBehind, database_revision, require_head, upgrade

    with _opening_database(settings):
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

    with _opening_database(settings):
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


async def _serve_http(settings: Settings, listening: socket.socket) -> None:
    """Serve HTTP in this one process on `listening` (`_listening_socket`, bound before the store was prepared)."""
    import uvicorn

    from server.http_app import create_http_app
    from server.mcp_app import Runtime
    from server.runtime import settle_heap
    from server.workers import uvicorn_config
    from storage.engine import open_store

    async with open_store(**settings.store_options()) as store:
        app = create_http_app(settings, Runtime.from_settings(settings, store))
        server = uvicorn.Server(uvicorn_config(settings, app))
        settle_heap()
        _announce(settings, "Ctrl+C stops it")
        await server.serve(sockets=[listening])


def _serve_http_workers(settings: Settings, listening: list[socket.socket]) -> None:
    """Serve HTTP with a worker process on each socket of `listening` (`server.workers`)."""
    from server.workers import WorkerStartFailed, serve_with_workers

    _announce(settings, f"{settings.workers} worker processes; Ctrl+C stops them all")
    try:
        serve_with_workers(settings, listening)
    except WorkerStartFailed as error:
        raise CliError(str(error)) from None


def _announce(settings: Settings, stopping: str) -> None:
    # Uvicorn names no address when given its socket.
    bound = f"http://{_url_host(settings.host)}:{settings.port}"
    sys.stderr.write(
        f"Blohko serving {bound}/mcp (MCP), {bound}/api/v1 (REST), {bound}/dashboard; {stopping}\n"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    if args.host:
        settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    if args.workers is not None:
        settings.workers = args.workers
    if settings.workers > 1 and not args.http:
        raise CliError(
            f"{settings.workers} workers (--workers or BLOHKO_WORKERS) serve HTTP only: add --http, "
            "or serve stdio with one process"
        )
    listening: list[socket.socket] = []
    if args.http:
        many = settings.workers > 1
        listening = _worker_sockets(settings, settings.workers) if many else [_listening_socket(settings)]
        # `--port 0` asks for any free one: the app's URLs name the chosen one
        settings.port = listening[0].getsockname()[1]
    sqlite_path = None if args.http else sqlite_file(settings.database_url)
    if sqlite_path is not None:
        reader = StartupReader(sqlite_path)
        try:
            _prepare_sqlite_file(settings, reader)
            anyio.run(_serve_stdio_on_file, settings, reader)
        finally:
            reader.close()
        return
    _prepare_database(settings, allow_upgrade=False)  # once, before any worker starts
    if len(listening) > 1:
        _serve_http_workers(settings, listening)
    elif listening:
        anyio.run(_serve_http, settings, listening[0])
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
            sys.stderr.write(
                f"delivering webhooks (looking for due deliveries every {settings.webhook_poll_seconds:g} s)\n"
            )
            await worker.run()
            tasks.cancel_scope.cancel()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    anyio.run(_deliver_webhooks, settings)


# --- demo ------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """The demo producer and a new key (earlier demo keys keep working unless `--new-key`). The
    port is taken before anything is written: a second demo on a busy port changes nothing."""
    from server.demo import client_configs, ensure_demo
    from storage.engine import open_store

    if args.host:
        settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    listening = None if args.no_serve else _listening_socket(settings)
    try:
        _prepare_database(settings, allow_upgrade=True)

        async def setup():
            async with open_store(**settings.store_options()) as store:
                return await ensure_demo(store, revoke_earlier=args.new_key)

        demo = anyio.run(setup)
        if listening is not None:  # `--port 0`: the port the system chose
            settings.port = listening.getsockname()[1]
        url = settings.effective_public_url()
        if args.json:
            _print_json(
                {
                    "producerId": demo.producer_id,
                    "key": demo.key,
                    "mcpUrl": f"{url}/mcp",
                    "restUrl": f"{url}/api/v1",
                    "earlierKeys": list(demo.earlier_keys),
                    "revokedKeys": list(demo.revoked_keys),
                }
            )
        else:
            sys.stdout.write(client_configs(demo, url=url, database_url=settings.database_url))
            sys.stdout.flush()
        if listening is not None:
            anyio.run(_serve_http, settings, listening)
    finally:
        if listening is not None:
            listening.close()


# --- producers and keys ----------------------------------------------------


def cmd_producers_create(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    made = _operate(
        settings, "create_producer", _given(name=args.name, email=args.email, password=args.password)
    )
    producer, generated = made["producer"], made["generatedPassword"]
    payload = {**producer, **({"generatedPassword": generated} if generated else {})}
    if args.json:
        _print_json(payload)
        return
    sys.stdout.write(
        f"Producer {producer['id']} ({producer['name']}), owner user {producer['ownerUserId']}\n"
    )
    if generated:
        sys.stdout.write(f"Owner password (shown once): {generated}\n")


def cmd_producers_list(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    producers: list[dict[str, Any]] = []
    page = 1
    while True:  # every page: the operator wants the whole list
        listed = _operate(settings, "list_producers", {"page": page, "limit": 100})
        producers += listed["data"]
        if not listed["pagination"]["hasMore"]:
            break
        page += 1
    if args.json:
        _print_json({"data": producers})
        return
    if not producers:
        sys.stderr.write(
            "no producers yet: `blohko producers create` makes one (`blohko demo` makes a demo one)\n"
        )
    for producer in producers:
        sys.stdout.write(f"{producer['id']}  {producer['email']}  {producer['name']}\n")


def _producer_id(settings: Settings, given: str) -> str:
    """`--producer` as an id, or as its owner's email (the one thing an operator may remember)."""
    if "@" not in given:
        return given
    return _operate(settings, "find_producer", {"email": given})["producer"]["id"]


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    arguments = _given(
        producerId=_producer_id(settings, args.producer),
        name=args.name,
        description=args.description,
        permissions=args.permissions,
        expiresInDays=args.expires_in_days,
        identities="pseudonymous" if args.pseudonymous else None,
    )
    made = _operate(settings, "create_api_key", arguments)["apiKey"]
    if args.json:
        _print_json(made)
        return
    pseudonymous = (
        " (pseudonymous: students under pseudonyms)" if made["identities"] == "pseudonymous" else ""
    )
    sys.stdout.write(
        f"API key {made['id']} for {made['producerId']}: {', '.join(made['permissions'])}{pseudonymous}\n"
    )
    sys.stdout.write(f"Key (shown once, store it now): {made['key']}\n")


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    producer_id = _producer_id(settings, args.producer)
    keys: list[dict[str, Any]] = []
    page = 1
    while True:  # every page: the operator wants the whole list
        listed = _operate(settings, "list_api_keys", {"producerId": producer_id, "page": page, "limit": 100})
        keys += listed["data"]
        if not listed["pagination"]["hasMore"]:
            break
        page += 1
    if args.json:
        _print_json({"data": keys})
        return
    for key in keys:
        state = "revoked" if key["revokedAt"] else "active"
        sys.stdout.write(
            f"{key['id']}  {key['prefix']}...  {state:8}  {key['identities']:12}  {key['name']}  "
            f"{' '.join(key['permissions'])}\n"
        )


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_database(settings, allow_upgrade=False)
    revoked = _operate(settings, "revoke_api_key", {"id": args.key_id})["apiKey"]
    if args.json:
        _print_json(revoked)
    else:
        sys.stdout.write(f"Revoked {revoked['id']}\n")


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    from storage.migrate import upgrade

    with _opening_database(settings):
        upgrade(settings.database_url)
    sys.stderr.write("database is at the newest schema\n")


# --- parser ----------------------------------------------------------------


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked (cold start)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import version

        sys.stdout.write(f"blohko {version('blohko-mcp')}\n")
        parser.exit()


def _workers(value: str) -> int:
    from server.settings import worker_count

    try:
        return worker_count(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _store_help() -> str:
    """Where the store is, for every command's help."""
    return (
        f"The store: BLOHKO_DATABASE_URL, {ACCEPTED_DATABASE_URLS} "
        f"(plain sqlite:/// and postgresql:// work too). Default, an SQLite file: {default_database_path()}"
    )


def _parser() -> argparse.ArgumentParser:
    store = _store_help()
    parser = argparse.ArgumentParser(
        prog="blohko", description="Blohko MCP: MCP tool server and REST API.", epilog=store
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, epilog=store, **kwargs)

    serve = command("serve", help="serve MCP over stdio (key from BLOHKO_API_KEY), or HTTP with --http")
    serve.add_argument(
        "--http", action="store_true", help="streamable HTTP at /mcp, REST at /api/v1, GET /healthz"
    )
    serve.add_argument("--host", help="HTTP bind address (default BLOHKO_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default BLOHKO_PORT, else 8000)")
    serve.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="HTTP server processes sharing the port, or auto for one per core (default BLOHKO_WORKERS, else 1)",
    )
    serve.set_defaults(run=cmd_serve, long_running=True)

    worker = command(
        "worker",
        help="only deliver webhooks, serving nothing",
        description="Deliver webhooks until stopped. Every `blohko serve --http` process already delivers them, "
        "so most setups need no worker; run one (or several, on PostgreSQL) when webhooks should go from "
        "processes of their own, or when only stdio `blohko serve` runs, which delivers none.",
    )
    worker.set_defaults(run=cmd_worker, long_running=True)

    demo = command(
        "demo",
        help="create demo data and a full-access key, print client configs, serve HTTP",
        description="Create the demo producer and its sample data (once), print a new full-access API key with "
        "ready-to-paste client configs, and serve HTTP. Keys printed by earlier runs keep working; --new-key revokes them.",
    )
    demo.add_argument("--host", help="HTTP bind address (default BLOHKO_HOST, else 127.0.0.1)")
    demo.add_argument("--port", type=int, help="HTTP port (default BLOHKO_PORT, else 8000)")
    demo.add_argument(
        "--json", action="store_true", help="print the producer id, key and URLs as JSON on stdout"
    )
    demo.add_argument("--new-key", action="store_true", help="revoke the demo keys earlier runs printed")
    demo.add_argument("--no-serve", action="store_true", help="set up and print, but do not serve")
    demo.set_defaults(run=cmd_demo, long_running=True)

    producers = command("producers", help="manage producers").add_subparsers(dest="action", required=True)
    create = producers.add_parser("create", help="create a producer and its owner user", epilog=store)
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="the owner's password (generated and printed once if omitted)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_producers_create)
    listing = producers.add_parser("list", help="list the producers: id, owner's email, name", epilog=store)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_producers_list)

    producer_help = "the producer's id (`blohko producers list`) or its owner's email"
    keys = command("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create an API key; prints it once", epilog=store)
    create.add_argument("--producer", required=True, help=producer_help)
    create.add_argument("--name", required=True)
    create.add_argument("--description")
    create.add_argument(
        "--permissions", nargs="+", required=True, metavar="P", help="e.g. '*' courses:read students:*"
    )
    create.add_argument("--expires-in-days", type=int)
    create.add_argument(
        "--pseudonymous",
        action="store_true",
        help="students appear under a stable pseudonym for this key: no names, emails, avatars or bios",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_keys_create)
    listing = keys.add_parser("list", help="list a producer's keys (never their secrets)", epilog=store)
    listing.add_argument("--producer", required=True, help=producer_help)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key at once", epilog=store)
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(run=cmd_keys_revoke)

    db = command("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations", epilog=store).set_defaults(run=cmd_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as error:
        sys.stderr.write(f"blohko: {_settings_problem(error)}\n")
        sys.exit(2)
    # A command that serves logs its start (INFO); a one-shot command's outcome is its output or
    # its one error line, so it logs only warnings unless BLOHKO_LOG_LEVEL asks for more.
    explicit = "log_level" in settings.model_fields_set
    configure_logging(settings.log_level if explicit or getattr(args, "long_running", False) else "WARNING")
    from tools.core.errors import BlohkoError

    try:
        _check_sqlite_directory(settings)
        args.run(args, settings)
    except (CliError, BlohkoError) as exc:
        sys.stderr.write(f"blohko: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
