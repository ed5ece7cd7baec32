"""The processes only the benchmarks start: the bare SDK server Blohko is measured against, and
the environment of a measured `blohko` server. Starting and stopping real `blohko` processes is
`tests/support/processes.py`, which the end-to-end tests use too."""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path

from tests.support.processes import BLOHKO, Server, cli_env, free_port, http_server, serve

__all__ = ["BARE_SERVER", "BLOHKO", "bare_http_server", "http_server", "server_env"]

BARE_SERVER = str(Path(__file__).parent / "bare_server.py")


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark server: the rate limit is off (it is a feature, not what we
    measure) and it logs only warnings, like the bare server."""
    return cli_env(database_url, BLOHKO_RATE_LIMIT_PER_MINUTE="0", BLOHKO_LOG_LEVEL="WARNING", **extra)


def bare_http_server(log_path: Path) -> AbstractContextManager[Server]:
    """The bare SDK server (`bare_server.py`) over HTTP, once it answers at all (it has no /healthz)."""
    port = free_port()
    return serve(
        [sys.executable, BARE_SERVER, "--http", str(port)],
        dict(os.environ),
        port,
        log_path,
        ready=lambda _: True,
    )
