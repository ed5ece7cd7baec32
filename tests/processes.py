"""Real `blohko` processes for end-to-end tests: the CLI, stdio servers, HTTP servers on free ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BLOHKO = str(Path(sys.executable).parent / "blohko")


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOHKO_")}
    return {**env, "BLOHKO_DATABASE_URL": database_url, **extra}


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([BLOHKO, *args], env=env, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"blohko {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def cli_json(env: dict[str, str], *args: str) -> dict:
    done = run_cli(env, *args, "--json")
    return json.loads(done.stdout)


def migrated_env(directory: Path) -> dict[str, str]:
    """The environment of `blohko` commands on a new SQLite database in `directory`, migrated by the CLI."""
    env = cli_env(f"sqlite+aiosqlite:///{directory / 'blohko.db'}")
    run_cli(env, "db", "upgrade")
    return env


def cli_producer_and_key(env: dict[str, str], *permissions: str) -> tuple[dict, str]:
    """A producer and a key with `permissions`, both made by the CLI as an operator would."""
    producer = cli_json(env, "producers", "create", "--name", "Client Academy", "--email", "owner@clients.example")
    key = cli_json(env, "keys", "create", "--producer", producer["id"], "--name", "client", "--permissions", *permissions)
    return producer, key["key"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class HttpServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def http_server(env: dict[str, str], log_path: Path, *, port: int | None = None) -> Iterator[HttpServer]:
    """`blohko serve --http` on a free loopback port, stopped (and its log closed) on exit."""
    port = port or free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [BLOHKO, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        server = HttpServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            _wait_healthy(server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(server: HttpServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}: {server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server did not become healthy: {server.log()}")
