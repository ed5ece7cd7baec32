"""A stdio server's runtime, loaded after the server has answered its first `tools/list`.

Loading the runtime imports the store (SQLAlchemy), the operation framework and the catalog:
seconds, on a cold start, that a client would otherwise wait for before it sees a single tool.
So `blohko serve` on an SQLite file serves `tools/list` from the precomputed list
(`server.published_tools`), checks its key with `storage.startup` (the standard library's
`sqlite3`, the row read on every list, so a revoked key stops at once) and starts loading the
runtime when it has answered the first list (or at the first call, whichever comes first):
the imports run in a worker thread while the client reads the list; the store opens on the
event loop. Every call waits for the loaded runtime and from then on everything runs as it
would have with a runtime given loaded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import import_module
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from server.settings import Settings
from storage.startup import StartupReader
from tools.core.principal import Principal
from tools.domains.api_key_check import check_key_shape, hash_api_key, principal_of_key_row

if TYPE_CHECKING:
    from server.runtime import Runtime

__all__ = ["DeferredRuntime", "authenticate_on_file", "deferred_runtime"]

logger = logging.getLogger("blohko.serve")

_AFTER_THE_ANSWER_SECONDS = 0.05
"""How long loading waits after a `tools/list`: the answer is written first, without a thread
importing beside it."""


_RUNTIME_MODULES = (
    "server.runtime",  # the store, the operation framework
    "storage.engine",
    "tools.core.runner",
    "tools.domains.accounts",
    "tools.registry",  # every operation
)
"""What loading the runtime imports (in a worker thread: `DeferredRuntime`)."""


def _import_runtime_modules() -> None:
    for name in _RUNTIME_MODULES:
        import_module(name)


def authenticate_on_file(reader: StartupReader, api_key: str | None) -> Principal:
    """The principal of `api_key`, its row read from the file now; `Unauthorized` as
    `tools.domains.accounts.authenticate_api_key` says it (its last use is not recorded here:
    the loaded runtime records it at the next request)."""
    key = check_key_shape(api_key)
    return principal_of_key_row(reader.api_key(hash_api_key(key)), now=datetime.now(UTC))


class DeferredRuntime:
    """The runtime of a stdio server on an SQLite file: `loaded` once loaded, else None."""

    def __init__(self, settings: Settings, reader: StartupReader) -> None:
        self.loaded: Runtime | None = None
        self._settings = settings
        self._reader = reader
        self._requested = anyio.Event()
        self._delay = 0.0
        self._ready = anyio.Event()
        self._closing = anyio.Event()
        self._failure: BaseException | None = None

    def authenticate_before_loading(self, api_key: str | None) -> Principal:
        return authenticate_on_file(self._reader, api_key)

    def start_loading(self) -> None:
        """Load the runtime soon after the answer being sent (idempotent)."""
        if not self._requested.is_set():
            self._delay = _AFTER_THE_ANSWER_SECONDS
            self._requested.set()

    async def get(self) -> Runtime:
        """The loaded runtime: loads it now if no one asked yet, and waits for it."""
        self._requested.set()
        await self._ready.wait()
        if self.loaded is None:
            raise RuntimeError("the server's store could not be loaded") from self._failure
        return self.loaded

    async def _hold(self) -> None:
        """Load when asked and keep the store open until the server stops."""
        await self._requested.wait()
        try:
            if self._closing.is_set():
                return
            await anyio.sleep(self._delay)
            await anyio.to_thread.run_sync(_import_runtime_modules)
            if self._closing.is_set():
                return
            from server.runtime import Runtime, settle_heap
            from storage.engine import open_store

            async with open_store(**self._settings.store_options()) as store:
                self.loaded = Runtime.from_settings(self._settings, store)
                settle_heap()
                self._ready.set()
                await self._closing.wait()
        except Exception as failure:  # every call reports it; the list keeps being served
            logger.exception("could not load the store")
            self._failure = failure
        finally:
            self._ready.set()

    def _close(self) -> None:
        self._closing.set()
        self._requested.set()


@asynccontextmanager
async def deferred_runtime(settings: Settings, reader: StartupReader) -> AsyncIterator[DeferredRuntime]:
    """A `DeferredRuntime` for the block; its store (if it was loaded) closes when the block ends."""
    runtime = DeferredRuntime(settings, reader)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(runtime._hold)
        try:
            yield runtime
        finally:
            runtime._close()
