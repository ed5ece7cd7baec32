"""Real `blohko` processes: CLI commands, `blohko serve --http` on a free loopback port, peak memory.

The tests that start real processes use it, and so do the benchmarks (`benchmarks/processes.py`
adds what only they need: the bare SDK server they measure against). It needs nothing of pytest,
so `python -m benchmarks` imports it from a checkout like any module.
"""

from __future__ import annotations

import http.client
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
    "answering_worker",
    "cli_env",
    "cli_json",
    "cli_key",
    "cli_producer_and_key",
    "connections_per_worker",
    "free_port",
    "http_server",
    "migrated_env",
    "peak_rss_mb",
    "run_cli",
    "serve",
    "stop",
    "upgraded_env",
    "wait_ready",
    "wait_workers",
    "worker_pids",
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


def cli_producer_and_key(
    env: dict[str, str],
    *permissions: str,
    name: str = "Client Academy",
    email: str = "owner@clients.example",
    password: str | None = None,
) -> tuple[dict, str]:
    """A producer and a key with `permissions`, both made by the CLI as an operator would."""
    owner = ("--password", password) if password else ()
    producer = cli_json(env, "producers", "create", "--name", name, "--email", email, *owner)
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

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text()

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)

    def worker_pids(self) -> set[int]:
        """With `--workers N`: the pids of the server's worker processes (`worker_pids`)."""
        return worker_pids(self.process.pid)


def http_server(
    env: dict[str, str], log_path: Path, *, port: int | None = None, workers: int = 1
) -> AbstractContextManager[Server]:
    """`blohko serve --http` on a free loopback port once `/healthz` answers 200 (with `workers`
    above 1: once each worker has answered, `wait_workers`); stopped (and its log closed) on exit."""
    port = port or free_port()
    command = [BLOHKO, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    return serve(
        command,
        env,
        port,
        log_path,
        ready=lambda response: response.status_code == 200,
        then=(lambda server: _close_all(wait_workers(server, workers))) if workers > 1 else None,
    )


def _close_all(connections: dict[int, http.client.HTTPConnection]) -> None:
    for connection in connections.values():
        connection.close()


# ---- which worker answers: read from /proc (Linux), with nothing in the server to tell it


def worker_pids(supervisor: int) -> set[int]:
    """The worker processes of the `blohko serve --workers` process `supervisor`: its children
    started by multiprocessing's spawn (not its resource tracker)."""
    workers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended while we looked
        if parent == supervisor and b"spawn_main" in command:
            workers.add(int(entry.name))
    return workers


def _server_sockets(server_port: int) -> dict[int, int]:
    """The server's ends of the established loopback TCP connections to `server_port`: the inode
    of each, by the client's port."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == server_port:  # 01: ESTABLISHED
                sockets[int(remote.rsplit(":", 1)[1], 16)] = int(fields[9])
    return sockets


def _socket_owners(server: Server) -> dict[int, int]:
    """The worker pid holding each socket inode any worker of `server` has open."""
    owners = {}
    for pid in server.worker_pids():
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    owners[int(link[8:-1])] = pid
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended while we looked
    return owners


def answering_worker(server: Server, connection: http.client.HTTPConnection) -> int:
    """The pid of the worker holding the server's end of `connection` (open, after a request on
    it): the process that answered that request, and answers the connection's next ones."""
    assert connection.sock is not None, "make a request on the connection first"
    inode = _server_sockets(server.port).get(connection.sock.getsockname()[1])
    assert inode is not None, "no server socket for this connection"
    pid = _socket_owners(server).get(inode)
    assert pid is not None, f"no worker of {server.process.pid} holds socket {inode}"
    return pid


def connections_per_worker(server: Server) -> dict[int, int]:
    """How many open connections to `server` each of its workers holds (0 for one holding none)."""
    owners = _socket_owners(server)
    counts = dict.fromkeys(server.worker_pids(), 0)
    for inode in _server_sockets(server.port).values():
        if inode in owners:
            counts[owners[inode]] = counts.get(owners[inode], 0) + 1
    return counts


def wait_workers(server: Server, count: int, timeout: float = 60.0) -> dict[int, http.client.HTTPConnection]:
    """Wait until `count` distinct workers have each answered `/healthz` on a new connection;
    those connections (still open, one per worker pid: the caller closes them). The kernel hands
    each new connection to any worker waiting on the socket, so new ones are opened until every
    worker took one."""
    connections: dict[int, http.client.HTTPConnection] = {}
    deadline = time.monotonic() + timeout
    while len(connections) < count:
        if time.monotonic() > deadline or server.process.poll() is not None:
            for connection in connections.values():
                connection.close()
            raise RuntimeError(f"{len(connections)} of {count} workers answered: {server.log()}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/healthz")
            answered = connection.getresponse()
            answered.read()
        except OSError:
            connection.close()
            time.sleep(0.05)  # a worker is starting
            continue
        pid = answering_worker(server, connection) if answered.status == 200 else None
        if pid is None or pid in connections:
            connection.close()
            time.sleep(0.02)
            continue
        connections[pid] = connection
    return connections


@contextmanager
def serve(
    command: list[str],
    env: dict[str, str],
    port: int,
    log_path: Path,
    *,
    ready: Callable[[httpx.Response], bool],
    then: Callable[[Server], object] | None = None,
) -> Iterator[Server]:
    """`command`, serving on `port`, once `/healthz` answers as `ready` says (and `then` returned);
    its output goes to `log_path`; terminated (killed after 15 s) on exit."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            wait_ready(server, ready)
            if then is not None:
                then(server)
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
