"""`blohko serve --http --workers N`: N server processes on one listening socket, under a supervisor.

The supervisor is the `blohko` process itself. Before any worker starts, it binds the port
(`server.cli._worker_sockets`: a taken port is one error line, not N) and checks the schema once
(`server.cli._prepare_database`, which also creates a new SQLite store). Then uvicorn's
multiprocess supervisor spawns the workers, each a fresh interpreter that builds its own store,
MCP server and app (`worker_app`). Each worker slot has a listening socket of its own on the one
port (`SO_REUSEPORT`), kept by the slot's replacements: the kernel spreads new connections over
the sockets, and a keep-alive connection stays with the worker that accepted it. (On one shared
socket a burst of connections goes to whichever worker wakes first: asyncio accepts every
connection waiting at once.)

The supervisor checks every worker twice a second and replaces one that died or hangs (in the
same slot, on the same socket: connections the kernel queued there meanwhile wait for it). On SIGTERM
(or Ctrl+C, which it relays as SIGTERM) it stops every worker: each stops accepting, lets its
requests in flight finish for up to `drain_seconds`, records its webhook deliveries in flight and
exits; one still running after that is killed.

Nothing a request needs lives in one process (`docs/deploying.md`): the per-key rate limit counts
in the database (PostgreSQL) or in a file beside it that every worker maps (SQLite,
`storage.rate_limits`). Every worker delivers webhooks; deliveries are leased in the database, so
no two workers send the same one.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from server.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["WorkerStartFailed", "serve_with_workers", "uvicorn_config", "worker_app"]

logger = logging.getLogger("blohko.workers")

_STOP_MARGIN_SECONDS = 5.0
"""What a stopping worker may take beyond the drain and the delivery timeout (closing its store)."""


class WorkerStartFailed(Exception):
    """A worker exited before it served: every replacement would fail the same way."""


def uvicorn_config(settings: Settings, app: Any, **options: Any) -> uvicorn.Config:
    """Uvicorn's configuration of a Blohko HTTP server, in one process or in every worker."""
    # `X-Forwarded-Proto`/`-For` count only from the configured proxies (uvicorn's own default
    # would read FORWARDED_ALLOW_IPS, which is not ours to document).
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="asyncio",
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # uvicorn types it int; it is used as asyncio's timeout, which takes any number of seconds.
        timeout_graceful_shutdown=settings.drain_seconds,  # type: ignore[arg-type]
        **options,
    )


def worker_app(settings: Settings) -> Starlette:
    """One worker's app, built in the worker (uvicorn calls it as the app's factory, in the worker's
    event loop): its own store, closed when the app shuts down."""
    from server.http_app import create_http_app
    from server.logs import configure_logging
    from server.mcp_app import Runtime
    from server.runtime import settle_heap
    from storage.engine import Store

    _stop_with_supervisor()
    configure_logging(settings.log_level)
    store = Store(**settings.store_options())
    app = create_http_app(settings, Runtime.from_settings(settings, store), owns_store=True)
    settle_heap()
    return app


def _stop_with_supervisor() -> None:
    """The worker follows its supervisor: SIGINT (Ctrl+C reaches the whole process group) is left
    to the supervisor, which relays it as one SIGTERM (a second signal would make uvicorn skip the
    drain); and on Linux a worker whose supervisor dies gets SIGTERM, rather than serving on alone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    supervisor = os.getppid()
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:  # it died before the request above took effect
        os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor (its signals, pings and `Process`), with a socket of its own for each
    worker slot, kept by the slot's replacements, and a bound on how long stopping may take."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], *, stop_within: float) -> None:
        super().__init__(config, sockets)
        self.processes_num = len(sockets)
        self._stop_within = stop_within

    def _start(self, slot: int) -> Process:
        worker = Process(self.config, [self.sockets[slot]])
        worker.start()
        return worker

    def init_processes(self) -> None:
        self.processes = [self._start(slot) for slot in range(self.processes_num)]

    def keep_subprocess_alive(self) -> None:
        """Replace a worker that exited, or that did not answer a ping in time (killed first)."""
        if self.should_exit.is_set():
            return
        for slot, worker in enumerate(self.processes):
            if worker.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            worker.kill()
            worker.join()
            if worker.exitcode == STARTUP_FAILURE:  # the next one would fail the same way
                logger.error("worker %s failed to start: stopping", worker.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning("worker %s ended (exit status %s): starting another", worker.pid, worker.exitcode)
            self.processes[slot] = self._start(slot)

    def restart_all(self) -> None:
        """SIGHUP: replace each worker in turn, the new one serving before the old one stops."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                logger.error(
                    "a new worker was not ready in time: kept worker %s, stopped restarting", old.pid
                )
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def handle_ttin(self) -> None:
        logger.warning("SIGTTIN ignored: the number of workers is set by --workers (BLOHKO_WORKERS)")

    def handle_ttou(self) -> None:
        logger.warning("SIGTTOU ignored: the number of workers is set by --workers (BLOHKO_WORKERS)")

    def join_all(self) -> None:
        deadline = time.monotonic() + self._stop_within
        for worker in self.processes:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                logger.warning("worker %s did not stop within %g s: killed", worker.pid, self._stop_within)
                worker.kill()
                worker.process.join()

    def start_failed(self) -> bool:
        return any(worker.exitcode == STARTUP_FAILURE for worker in self.processes)


def serve_with_workers(settings: Settings, sockets: list[socket.socket]) -> None:
    """Serve with a worker on each of `sockets` (all bound to one port with `SO_REUSEPORT`, by
    `server.cli`, which also checked the schema) until SIGTERM or Ctrl+C stops them all.
    `WorkerStartFailed` if a worker could not start."""
    config = uvicorn_config(
        settings, functools.partial(worker_app, settings), factory=True, workers=len(sockets)
    )
    stop_within = settings.drain_seconds + settings.webhook_timeout_seconds + _STOP_MARGIN_SECONDS
    supervisor = _Supervisor(config, sockets, stop_within=stop_within)
    supervisor.run()
    if supervisor.start_failed():
        raise WorkerStartFailed("a worker failed to start (its error is logged above): stopped")
