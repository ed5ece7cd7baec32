"""Server processes for the benchmarks: `blohko serve --http`, the bare SDK server, peak RSS."""

from __future__ import annotations

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

__all__ = ["BARE_SERVER", "BLOHKO", "Server", "free_port", "peak_rss_mb", "server_env", "serve_blohko_http", "serve_bare_http"]

BLOHKO = str(Path(sys.executable).parent / "blohko")
BARE_SERVER = str(Path(__file__).parent / "bare_server.py")


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark server: the rate limit is off (it is a feature, not what we measure)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOHKO_")}
    return {**env, "BLOHKO_DATABASE_URL": database_url, "BLOHKO_RATE_LIMIT_PER_MINUTE": "0",
            "BLOHKO_LOG_LEVEL": "WARNING", **extra}


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

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)


@contextmanager
def _serve(command: list[str], env: dict[str, str], port: int, log_path: Path) -> Iterator[Server]:
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(url=f"http://127.0.0.1:{port}", process=process)
        try:
            _wait_listening(server, port, log_path)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(server: Server, port: int, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}: {log_path.read_text()}")
        try:
            httpx.get(f"{server.url}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


def serve_blohko_http(env: dict[str, str], log_path: Path):
    port = free_port()
    return _serve([BLOHKO, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)], env, port, log_path)


def serve_bare_http(log_path: Path):
    port = free_port()
    return _serve([sys.executable, BARE_SERVER, "--http", str(port)], dict(os.environ), port, log_path)
