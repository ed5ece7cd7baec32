"""Real `blohko` processes: CLI commands, `blohko serve --http` on a free loopback port, peak memory.

The tests that start real processes use it, and so do the benchmarks (`benchmarks/processes.py`
adds what only they need: the bare SDK server they measure against). It needs nothing of pytest,
so `python -m benchmarks` imports it from a checkout like any module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "BLOHKO",
    "Server",
    "cli_env",
    "cli_json",
    "cli_key",
    "cli_producer_and_key",
    "free_port",
    "http_server",
    "migrated_env",
    "peak_rss_mb",
    "run_cli",
    "serve",
    "stop",
    "upgraded_env",
    "wait_ready",
]

BLOHKO = str(Path(sys.executable).parent / "blohko")


# ---- the CLI


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `blohko` process on `database_url`: this one's, less any BLOHKO_ setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOHKO_")}
    return {**env, "BLOHKO_DATABASE_URL": database_url, **extra}


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([BLOHKO, *args], env=env, check=False, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"blohko {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def cli_json(env: dict[str, str], *args: str) -> dict:
    done = run_cli(env, *args, "--json")
    return json.loads(done.stdout)


def upgraded_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of `blohko` commands on `database_url` (either engine), migrated by the CLI."""
    env = cli_env(database_url, **extra)
    run_cli(env, "db", "upgrade")
    return env


def migrated_env(directory: Path) -> dict[str, str]:
    """The environment of `blohko` commands on a new SQLite database in `directory`, migrated by the CLI."""
    env = cli_env(f"sqlite:///{directory / 'blohko.db'}")
    run_cli(env, "db", "upgrade")
    return env


def cli_producer_and_key(env: dict[str, str], *permissions: str) -> tuple[dict, str]:
    """A producer and a key with `permissions`, both made by the CLI as an operator would."""
    producer = cli_json(
        env, "producers", "create", "--name", "Client Academy", "--email", "owner@clients.example"
    )
    return producer, cli_key(env, producer["id"], *permissions)


def cli_key(env: dict[str, str], producer_id: str, *permissions: str) -> str:
    """A new key of the producer with `permissions`, made by the CLI as an operator would."""
    made = cli_json(
        env, "keys", "create", "--producer", producer_id, "--name", "cli", "--permissions", *permissions
    )
    return made["key"]


# ---- HTTP servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)


def http_server(
    env: dict[str, str], log_path: Path, *, port: int | None = None
) -> AbstractContextManager[Server]:
    """`blohko serve --http` on a free loopback port once `/healthz` answers 200; stopped (and
    its log closed) on exit."""
    port = port or free_port()
    command = [BLOHKO, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
    return serve(command, env, port, log_path, ready=lambda response: response.status_code == 200)


@contextmanager
def serve(
    command: list[str],
    env: dict[str, str],
    port: int,
    log_path: Path,
    *,
    ready: Callable[[httpx.Response], bool],
) -> Iterator[Server]:
    """`command`, serving on `port`, once `/healthz` answers as `ready` says; its output goes to
    `log_path`; terminated (killed after 15 s) on exit."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            wait_ready(server, ready)
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate `process` and wait for it; killed if it is still running after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(
    server: Server,
    ready: Callable[[httpx.Response], bool] = lambda answer: answer.status_code == 200,
    timeout: float = 60.0,
) -> None:
    """Wait until `server` answers `/healthz` as `ready` says; RuntimeError with its log if it exits or takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}: {server.log()}")
        try:
            if ready(httpx.get(f"{server.url}/healthz", timeout=1)):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # a real process is starting
    raise RuntimeError(f"server did not become ready: {server.log()}")
