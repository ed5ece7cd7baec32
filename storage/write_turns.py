"""Whose turn it is to write an SQLite file, across processes: an OS file lock beside the database.

In one process writes take turns in the store's `WriteGate`. Several processes on one file
(`blohko serve --http --workers N`, a CLI command beside a server) would otherwise meet only at
SQLite's own lock, where a writer that finds it taken waits in SQLite's busy handler: it polls,
sleeping 1 ms growing to 100 ms between tries, so the lock can sit free while the next writer
sleeps, and a burst of one worker's writes can keep another's waiting. Here every Blohko process
takes `flock` on `<database>-writer.lock` before `BEGIN IMMEDIATE` and gives it back when the
transaction ends: the kernel wakes a waiting process the moment it is given back.

A process keeps its turn from one write to the next while more of its own writes wait in its
write gate, for up to `TURN_HOLD_SECONDS` from when it took it, then gives it back even if more
wait. Turns that alternate write by write cost each write a hand-over: the waiting process's
`flock` returns in a thread, which must then wake its event loop (about 1 ms measured, while the
lock sits taken and unused), and SQLite drops a connection's page cache whenever another
connection wrote the file. Measured with two workers under `wrk` (update_progress, requests/s):
no keeping ~900, keeping 1-7 ms ~1,150-1,250, 20 ms ~900, 100 ms ~600 (a long turn leaves the
other process's writes queued and its core idle).

`flock` hands nothing over: a process giving the turn back and taking it again at once wins
before the kernel's wake-up of a waiting process has run, so with its writes always queued it
could keep the turn for good. So a process marks itself waiting for the turn (a shared lock on
`<database>-writer.waiting`, dropped the moment it has the turn), and a process about to take the
turn first lets a marked process have it (up to `LET_GO_FIRST_SECONDS`). Another process so waits
about that bound plus one write at most, a turn more if it was not yet marked when the turn was
given back (its thread starting). Measured with two workers, update_progress against one worker's:
1.18-1.57x over five runs, against 1.28x and 1.30x taking the turn whenever it is free: within
the runs' spread.

Taking it is one non-blocking system call when it is free. When another process holds it, the
wait runs in a worker thread, off the event loop, up to the busy timeout (`Locked` past it, as
SQLite's own wait would be). A wait given up (its caller cancelled or out of time) leaves its
thread blocked in `flock`; the lock it then gets is given back at once, and the next turn waits for
that first (`flock` locks belong to the open file, so two waits in one process would both get it).

Processes that are not Blohko's still meet it at SQLite's lock, as before. Where `fcntl` does not
exist (Windows) there are no turns across processes, only SQLite's lock.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from storage.errors import Locked

if sys.platform != "win32":
    import fcntl

__all__ = ["LET_GO_FIRST_SECONDS", "TURN_HOLD_SECONDS", "WriteTurns"]

TURN_HOLD_SECONDS = 0.005
"""How long a process may keep its write turn for its own waiting writes, from when it took it
(the middle of the measured 1-7 ms plateau)."""

LET_GO_FIRST_SECONDS = 0.05
"""How long a process about to take the turn waits for a process marked waiting to take it first
(one stopped while it waits then holds the others up no longer)."""


class WriteTurns:
    """The file lock of one SQLite database, held by this process while one of its writes runs."""

    def __init__(self, database: str, *, timeout_ms: int) -> None:
        self._turn_path = f"{database}-writer.lock"
        self._waiting_path = f"{database}-writer.waiting"
        self._timeout = timeout_ms / 1000
        self._turn_fd: int | None = None
        self._waiting_fd: int | None = None
        self._abandoned: asyncio.Future[Any] | None = None
        self.held = False
        self._taken_at = 0.0

    def _turn_file(self) -> int:
        if self._turn_fd is None:
            self._turn_fd = os.open(self._turn_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._turn_fd

    def _waiting_file(self) -> int:
        if self._waiting_fd is None:
            self._waiting_fd = os.open(self._waiting_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._waiting_fd

    async def take(self) -> None:
        """Wait for this process's turn to write the file, unless it kept it from its last write;
        `Locked` past the busy timeout."""
        if sys.platform == "win32" or self.held:
            return
        try:
            async with asyncio.timeout(self._timeout):
                # First: a wait given up still blocks in its thread, marked waiting on the same
                # open file that `_another_waits` locks (which would convert its mark, not test it).
                if self._abandoned is not None:
                    await asyncio.shield(self._abandoned)
                await self._while_another_waits()
                try:
                    fcntl.flock(self._turn_file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    await self._wait_in_thread()
        except TimeoutError:
            raise Locked("another process kept the database's write turn") from None
        self.held = True
        self._taken_at = time.monotonic()

    @staticmethod
    def _wait_for_turn(turn: int, waiting: int) -> None:
        """In a thread: wait for the turn, marked as waiting meanwhile (a shared lock on the
        `-writer.waiting` file) so that a process about to take it lets this one have it first."""
        fcntl.flock(waiting, fcntl.LOCK_SH)
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)
        finally:
            fcntl.flock(waiting, fcntl.LOCK_UN)

    def _another_waits(self) -> bool:
        waiting = self._waiting_file()
        try:
            fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(waiting, fcntl.LOCK_UN)
        return False

    async def _while_another_waits(self) -> None:
        """Let a process marked waiting take the turn first: poll for its mark (it drops it the
        moment it has the turn, about 1 ms after a give-back as measured), up to
        `LET_GO_FIRST_SECONDS`. Nobody marked: one non-blocking lock and its unlock."""
        deadline = time.monotonic() + LET_GO_FIRST_SECONDS
        while self._another_waits() and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)

    async def _wait_in_thread(self) -> None:
        """Wait for the turn off the event loop; if its caller gives the wait up (cancelled, out
        of time), the thread goes on, and the turn it then gets is given back."""
        waiting = asyncio.ensure_future(
            asyncio.to_thread(self._wait_for_turn, self._turn_file(), self._waiting_file())
        )
        try:
            await asyncio.shield(waiting)
        except BaseException:
            self._abandon(waiting)
            raise

    def _abandon(self, waiting: asyncio.Future[Any]) -> None:
        fd = self._turn_fd

        def settle(done: asyncio.Future[Any]) -> None:
            if self._abandoned is done:
                self._abandoned = None
            if fd is not None and not done.cancelled() and done.exception() is None:
                fcntl.flock(fd, fcntl.LOCK_UN)

        self._abandoned = waiting
        waiting.add_done_callback(settle)

    def end_write(self, *, more_waiting: bool) -> None:
        """A write transaction ended: keep the turn for the next of this process's writes if one
        waits and the turn is younger than `TURN_HOLD_SECONDS`, else give it back. A kept turn
        is given back by `give_back` when this process's writes stop waiting for it."""
        if not (more_waiting and time.monotonic() - self._taken_at < TURN_HOLD_SECONDS):
            self.give_back()

    def give_back(self) -> None:
        """End this process's turn."""
        if self.held and sys.platform != "win32" and self._turn_fd is not None:
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)
        self.held = False

    def close(self) -> None:
        self.give_back()
        files = [fd for fd in (self._turn_fd, self._waiting_fd) if fd is not None]
        self._turn_fd = self._waiting_fd = None

        def close_files(_: object = None) -> None:
            for fd in files:
                os.close(fd)

        if self._abandoned is None:
            close_files()
        else:  # its thread still uses them: closed after it ends and its turn is given back
            self._abandoned.add_done_callback(close_files)
