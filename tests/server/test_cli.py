"""The `blohko` command line as a newcomer meets it, run as real processes: a bad database URL,
a busy port, bad settings or a producer that does not exist is one line on stderr and a non-zero
exit status, never a traceback; `--version`; producers listed, and found by their owner's email;
help that says where the store is."""

from __future__ import annotations

import socket
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from server.cli import main
from storage.defaults import (
    DatabaseUrlError,
    default_database_path,
    normalize_database_url,
)
from tests.support.databases import POSTGRES_URL
from tests.support.processes import cli_env, cli_json, free_port, run_cli

_DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _unknown_role_url(_tmp_path: Path) -> str:
    return (
        make_url(POSTGRES_URL or _DEFAULT_POSTGRES)
        .set(username="blohko_no_such_role", password=None)
        .render_as_string(hide_password=False)
    )


# A URL (made from the test's tmp_path) and what its one line must say.
BAD_URLS = [
    pytest.param(lambda _: "notaurl", "the database URL 'notaurl' is not a URL", id="not-a-url"),
    pytest.param(
        lambda _: f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        "the connection was refused: no database server listens at that host and port",
        id="postgresql-closed-port",
    ),
    pytest.param(
        _unknown_role_url,
        'role "blohko_no_such_role" does not exist',
        id="unknown-role",
        marks=pytest.mark.postgres_only,
    ),
    pytest.param(
        lambda _: "postgresql+psycopg2://blohko@127.0.0.1/blohko",
        "starts with postgresql+psycopg2://, which Blohko does not run on",
        id="other-driver",
    ),
    pytest.param(
        lambda tmp: f"sqlite:///{tmp}/no/such/directory/blohko.db",
        "/no/such/directory does not exist",
        id="missing-directory",
    ),
    pytest.param(
        lambda _: "mysql://blohko@127.0.0.1/blohko",
        "starts with mysql://, which Blohko does not run on",
        id="mysql",
    ),
]

# Every command that opens the store, as a newcomer would run it.
STORE_COMMANDS = [
    pytest.param(("serve",), id="serve"),
    pytest.param(("serve", "--http", "--port", "0"), id="serve-http"),
    pytest.param(("demo", "--port", "0"), id="demo"),
    pytest.param(("db", "upgrade"), id="db-upgrade"),
    pytest.param(("keys", "list", "--producer", "demo@blohko.example"), id="keys-list"),
]


def _one_line(done) -> str:
    """The single line a failed command printed, checked to be just that."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("blohko: ")
    return lines[0]


@pytest.mark.parametrize("command", STORE_COMMANDS)
@pytest.mark.parametrize(("make_url_for", "problem"), BAD_URLS)
def test_a_bad_database_url_is_one_line_naming_the_problem_and_the_accepted_forms(
    tmp_path, make_url_for, problem, command
):
    env = cli_env(make_url_for(tmp_path))
    line = _one_line(run_cli(env, *command, check=False))
    assert problem in line
    assert "sqlite:///" in line and "postgresql+asyncpg://" in line
    assert not (tmp_path / "no").exists()  # nothing made on the way


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("sqlite:///blohko.db", "sqlite:///blohko.db"),
        ("sqlite:////var/data/blohko.db", "sqlite:////var/data/blohko.db"),
        ("sqlite+aiosqlite:///blohko.db", "sqlite:///blohko.db"),  # what earlier versions wrote
        ("sqlite+pysqlite:///blohko.db", "sqlite:///blohko.db"),
        ("postgresql://u:p@db:5432/blohko", "postgresql+asyncpg://u:p@db:5432/blohko"),
        ("postgres://u@db/blohko", "postgresql+asyncpg://u@db/blohko"),
        ("postgresql+asyncpg://u@db/blohko", "postgresql+asyncpg://u@db/blohko"),
    ],
)
def test_a_url_gets_the_driver_the_store_runs_it_on(given, normalized):
    assert normalize_database_url(given) == normalized


@pytest.mark.parametrize(
    "given",
    ["", "notaurl", "://x", "mysql://u@h/d", "postgresql+psycopg2://u@h/d", "sqlite+pysqlcipher:///x.db"],
)
def test_a_url_of_another_database_or_driver_is_refused(given):
    with pytest.raises(DatabaseUrlError, match="sqlite:///.* or postgresql\\+asyncpg://"):
        normalize_database_url(given)


def test_driver_named_sqlite_and_plain_postgresql_urls_work_from_the_command_line(databases):
    url = databases.new("plain-url")
    plain = url.replace("sqlite://", "sqlite+aiosqlite://").replace("postgresql+asyncpg://", "postgresql://")
    assert plain != url
    env = cli_env(plain)
    run_cli(env, "db", "upgrade")
    assert cli_json(env, "producers", "list") == {"data": []}


def test_a_busy_port_is_one_line_naming_it_and_blohko_port_is_honoured(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        expected = [
            (
                f"blohko: port {port} on 127.0.0.1 is already in use (another server, or another blohko): "
                "choose another with --port N or BLOHKO_PORT=N"
            )
        ]
        env = cli_env(f"sqlite:///{tmp_path / 'blohko.db'}")
        by_option = run_cli(env, "serve", "--http", "--port", str(port), check=False)
        by_variable = run_cli({**env, "BLOHKO_PORT": str(port)}, "serve", "--http", check=False)
    for done in (by_option, by_variable):
        assert done.returncode == 1 and done.stderr.splitlines() == expected
    assert not (tmp_path / "blohko.db").exists()  # checked before the store was touched


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path):
    env = cli_env(f"sqlite:///{tmp_path / 'blohko.db'}", BLOHKO_PORT="eighty")
    line = _one_line(run_cli(env, "db", "upgrade", check=False))
    assert line.startswith("blohko: BLOHKO_PORT: Input should be a valid integer")


def test_a_producer_that_does_not_exist_is_one_line(databases):
    """A producer id or email that names no producer is one line on stderr: no traceback of the
    failed audit (its row would refer to no producer), no log line."""
    env = cli_env(databases.new("no-producer"))
    run_cli(env, "db", "upgrade")
    by_id = run_cli(
        env, "keys", "create", "--producer", "prod_nope", "--name", "k", "--permissions", "*", check=False
    )
    assert _one_line(by_id) == "blohko: Producer prod_nope not found"
    by_email = run_cli(env, "keys", "list", "--producer", "nobody@nowhere.example", check=False)
    assert _one_line(by_email) == "blohko: No producer's owner has the email nobody@nowhere.example"


def test_producers_are_listed_and_a_key_is_made_for_an_owner_email(databases):
    env = cli_env(databases.new("producers-list"))
    run_cli(env, "db", "upgrade")
    first = cli_json(
        env,
        "producers",
        "create",
        "--name",
        "First Academy",
        "--email",
        "first@academy.example",
        "--password",
        "first-pass-1",
    )
    second = cli_json(
        env,
        "producers",
        "create",
        "--name",
        "Second School",
        "--email",
        "second@school.example",
        "--password",
        "second-pass",
    )
    listed = cli_json(env, "producers", "list")["data"]
    assert [(p["id"], p["email"], p["name"]) for p in listed] == [
        (first["id"], "first@academy.example", "First Academy"),
        (second["id"], "second@school.example", "Second School"),
    ]
    assert run_cli(env, "producers", "list").stdout.splitlines() == [
        f"{first['id']}  first@academy.example  First Academy",
        f"{second['id']}  second@school.example  Second School",
    ]
    made = cli_json(
        env,
        "keys",
        "create",
        "--producer",
        "Second@School.example",
        "--name",
        "agent",
        "--permissions",
        "courses:read",
    )
    assert made["producerId"] == second["id"]
    assert [
        key["id"] for key in cli_json(env, "keys", "list", "--producer", "second@school.example")["data"]
    ] == [made["id"]]


def test_version(tmp_path):
    done = run_cli(cli_env(f"sqlite:///{tmp_path / 'blohko.db'}"), "--version")
    assert done.stdout == f"blohko {version('blohko-mcp')}\n"


@pytest.mark.parametrize(
    "command",
    [(), ("serve",), ("demo",), ("worker",), ("db", "upgrade"), ("keys", "create"), ("producers", "list")],
)
def test_help_says_where_the_store_is(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "BLOHKO_DATABASE_URL" in shown and str(default_database_path()) in shown


def test_demo_help_describes_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for described in (
        "--host HOST HTTP bind address (default BLOHKO_HOST, else 127.0.0.1)",
        "--port PORT HTTP port (default BLOHKO_PORT, else 8000)",
        "--json print the producer id, key and URLs as JSON on stdout",
        "--new-key revoke the demo keys earlier runs printed",
    ):
        assert described in shown


def test_the_http_socket_is_tcp_so_its_connections_send_without_waiting_for_acks():
    """A socket made with proto 0 passes asyncio's TCP check by, and its connections keep Nagle's
    algorithm: every HTTP answer would wait for the client's delayed ACK. Named IPPROTO_TCP, the
    accepted connections get TCP_NODELAY from asyncio."""
    import socket as sockets

    from server.cli import _listening_socket
    from server.settings import Settings

    listening = _listening_socket(Settings(host="127.0.0.1", port=0))
    try:
        assert listening.proto == sockets.IPPROTO_TCP
    finally:
        listening.close()


def test_workers_take_a_whole_number_or_auto_for_the_cores():
    from server.settings import Settings, machine_cores

    assert Settings().workers == 1
    assert Settings.model_validate({"workers": "auto"}).workers == machine_cores() >= 1
    assert Settings.model_validate({"workers": " 3 "}).workers == 3


@pytest.mark.parametrize(
    ("given", "line"),
    [
        (
            ("serve", "--http", "--workers", "0"),
            "argument --workers: 0 is not a number of processes: give a whole number from 1, or auto",
        ),
        (
            ("serve", "--http", "--workers", "many"),
            "argument --workers: 'many' is not a number of processes: give a whole number from 1, or auto",
        ),
    ],
    ids=["zero", "word"],
)
def test_a_bad_workers_option_is_refused_naming_it(tmp_path, given, line):
    done = run_cli(cli_env(f"sqlite:///{tmp_path / 'blohko.db'}"), *given, check=False)
    assert done.returncode == 2 and done.stderr.splitlines()[-1].endswith(line), done.stderr
    assert not (tmp_path / "blohko.db").exists()


def test_a_bad_blohko_workers_and_workers_over_stdio_are_one_line(tmp_path):
    env = cli_env(f"sqlite:///{tmp_path / 'blohko.db'}")
    word = _one_line(run_cli({**env, "BLOHKO_WORKERS": "two"}, "serve", "--http", check=False))
    stdio = _one_line(run_cli({**env, "BLOHKO_WORKERS": "2"}, "serve", check=False))
    assert word == (
        "blohko: BLOHKO_WORKERS: 'two' is not a number of processes: give a whole number from 1, or auto"
    )
    assert stdio == (
        "blohko: 2 workers (--workers or BLOHKO_WORKERS) serve HTTP only: add --http, or serve stdio with one process"
    )
    assert not (tmp_path / "blohko.db").exists()


def test_a_busy_port_with_workers_is_one_line_before_any_worker_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = cli_env(f"sqlite:///{tmp_path / 'blohko.db'}")
        line = _one_line(run_cli(env, "serve", "--http", "--port", str(port), "--workers", "2", check=False))
    assert line.startswith(f"blohko: port {port} on 127.0.0.1 is already in use")
    assert not (tmp_path / "blohko.db").exists()
