"""`blohko demo`: demo data created once, a new full-access key each run, and printed client
configs that work. A second run keeps what works: the keys earlier runs printed stay valid unless
`--new-key` (which says it revoked them), and a port that is taken is found before anything changes."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from server.demo_school import DEMO_COURSES, DEMO_STUDENT_COUNT
from storage.engine import open_store
from tests.support.factories import mcp_client, ok
from tests.support.processes import (
    BLOHKO,
    Server,
    cli_env,
    cli_json,
    free_port,
    http_server,
    run_cli,
    wait_ready,
)


@contextmanager
def _serving_demo(
    env: dict[str, str], port: int, log_path: Path, *, port_option: bool = True
) -> Iterator[dict]:
    """`blohko demo --json --port PORT` as a real process, once `/healthz` answers on `port`: what
    it printed. Without `port_option` the port is the environment's (`BLOHKO_PORT`)."""
    options = ["--port", str(port)] if port_option else []
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [BLOHKO, "demo", "--json", *options], env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        assert process.stdout is not None  # stdout=PIPE
        try:
            printed = json.loads(process.stdout.readline() or "null")
            assert printed, f"blohko demo printed nothing: {log_path.read_text()}"
            wait_ready(Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path))
            yield printed
        finally:
            process.terminate()
            process.wait(timeout=15)
            process.stdout.close()


def _students(port: int, key: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}/api/v1/students", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


async def test_demo_creates_its_data_once_and_every_key_it_printed_keeps_working(databases):
    env = cli_env(databases.new("demo"))
    first = cli_json(env, "demo", "--no-serve")
    second = cli_json(env, "demo", "--no-serve")
    assert first["producerId"] == second["producerId"] and first["key"] != second["key"]
    assert second["earlierKeys"] == [first["key"][:12]] and second["revokedKeys"] == []
    async with open_store(env["BLOHKO_DATABASE_URL"]) as store:
        async with mcp_client(store, second["key"]) as client:
            me = ok(await client.call_tool("whoami", {}))
            students = ok(await client.call_tool("list_students", {}))
            courses = ok(await client.call_tool("list_courses", {"status": "published"}))
            communities = ok(await client.call_tool("list_communities", {}))
            enrollments = ok(await client.call_tool("list_enrollments", {}))
        async with mcp_client(store, first["key"]) as client:
            assert ok(await client.call_tool("whoami", {}))["key"]["permissions"] == ["*"]
    assert me["key"]["permissions"] == ["*"]
    assert students["pagination"]["total"] == DEMO_STUDENT_COUNT  # not doubled by the second run
    published = [course["title"] for course in DEMO_COURSES if course["published"]]
    assert sorted(course["title"] for course in courses["data"]) == sorted(published)
    assert (
        communities["pagination"]["total"] == 2 and enrollments["pagination"]["total"] >= DEMO_STUDENT_COUNT
    )


def test_a_second_demo_leaves_the_first_runs_key_working_and_new_key_revokes_it_saying_so(
    databases, tmp_path
):
    """Real processes: the key the first `blohko demo` printed answers over HTTP after a second
    `blohko demo` (never revoked silently); `--new-key` revokes it and says so."""
    env = cli_env(databases.new("demo-twice"))
    port = free_port()
    with _serving_demo(env, port, tmp_path / "first.log") as first:
        assert _students(port, first["key"]).status_code == 200
    with _serving_demo(env, port, tmp_path / "second.log") as second:
        assert second["producerId"] == first["producerId"] and second["key"] != first["key"]
        assert _students(port, first["key"]).status_code == 200
        assert _students(port, second["key"]).status_code == 200

    rotated = run_cli(env, "demo", "--no-serve", "--new-key")
    for key in (first["key"], second["key"]):
        assert f"{key[:12]}..." in rotated.stdout
    assert "Revoked the earlier demo key(s)" in rotated.stdout and "stop working" in rotated.stdout
    newest = next(
        word for word in rotated.stdout.split() if word.startswith("blk_") and not word.endswith("...")
    )
    with http_server(env, tmp_path / "serve.log") as server:
        refused = httpx.get(
            f"{server.url}/api/v1/students", headers={"Authorization": f"Bearer {first['key']}"}, timeout=10
        )
        assert refused.status_code == 401 and "revoked" in refused.text
        assert _students(int(server.url.rsplit(":", 1)[1]), newest).status_code == 200


def test_a_second_demo_on_a_busy_port_says_so_and_changes_nothing(databases, tmp_path):
    """The port is checked before anything changes: a second run on a busy port is one line naming
    it, and the first key stays intact."""
    env = cli_env(databases.new("demo-busy"))
    port = free_port()
    with _serving_demo(env, port, tmp_path / "first.log") as first:
        busy = run_cli(env, "demo", "--port", str(port), check=False)
        assert busy.returncode == 1 and busy.stdout == ""
        assert busy.stderr.splitlines() == [
            (
                f"blohko: port {port} on 127.0.0.1 is already in use (another server, or another blohko): "
                "choose another with --port N or BLOHKO_PORT=N"
            )
        ]
        assert _students(port, first["key"]).status_code == 200
    keys = cli_json(env, "keys", "list", "--producer", first["producerId"])["data"]
    assert [key["prefix"] for key in keys] == [first["key"][:12]]  # no key made, none revoked


def test_demo_prints_the_key_and_ready_to_paste_client_configs(databases):
    env = cli_env(databases.new("demo-text"))
    printed = run_cli(env, "demo", "--no-serve").stdout
    key = next(word for word in printed.split() if word.startswith("blk_"))
    assert (
        f'claude mcp add --transport http blohko http://127.0.0.1:8000/mcp --header "Authorization: Bearer {key}"'
        in printed
    )
    assert '"mcpServers"' in printed and f'"BLOHKO_API_KEY": "{key}"' in printed
    assert "demo@blohko.example" in printed
    assert "Dashboard:       http://127.0.0.1:8000/dashboard" in printed
    assert "Sign in with:  demo@blohko.example / demo-password" in printed
    again = run_cli(env, "demo", "--no-serve").stdout
    assert f"The demo key(s) earlier runs printed still work ({key[:12]}...)" in again
    assert "`blohko demo --new-key` revokes the earlier ones" in again


def test_demo_serves_on_the_port_blohko_port_names(databases, tmp_path):
    port = free_port()
    env = cli_env(databases.new("demo-env-port"), BLOHKO_PORT=str(port))
    with _serving_demo(env, port, tmp_path / "demo.log", port_option=False) as printed:
        assert printed["mcpUrl"] == f"http://127.0.0.1:{port}/mcp"
        assert _students(port, printed["key"]).status_code == 200
    with socket.socket() as probe:  # and lets it go when stopped
        probe.bind(("127.0.0.1", port))
