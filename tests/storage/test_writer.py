"""Write transactions (`storage/writer.py`, `Store.writing`): the hottest writes and reads open no
ORM session (their storage functions make only compiled statements); a write is whole or not at
all whichever it uses, takes its turn with every other write, and waits for another process's
lock off the event loop's thread; the compiled statements' own type processing returns what
SQLAlchemy would."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

import anyio
import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlmodel import col
from sqlmodel.sql.sqltypes import UTCDateTime

import storage.audit
import storage.engine
import storage.write_turns
from storage.engine import open_store
from storage.errors import ConstraintViolation, Locked, translated_sqlite
from storage.statements import PreparedQuery, sqlite_stored_timestamp, sqlite_utc_datetime
from storage.tables import Category, Thread
from storage.write_turns import WriteTurns
from tests.support.community_factories import call, new_community, new_student, refuse
from tests.support.databases import ENGINE, sqlite_path
from tests.support.enrollment_factories import new_learner, progress
from tests.support.factories import mcp_client
from tests.support.locks import hold, release_later, ticks_while, waited_off_the_loop


@asynccontextmanager
async def _sessions_opened(store):
    """A list that grows by one for each ORM session an operation's `Db` opens in the block."""
    opened: list[bool] = []
    for role in ("reading", "writing"):
        original = getattr(store, role)

        def counted(original=original):
            @asynccontextmanager
            async def opening():
                async with original() as db:
                    try:
                        yield db
                    finally:
                        opened.append(db.opened_session is not None)

            return opening

        setattr(store, role, counted())
    try:
        yield opened
    finally:
        del store.reading, store.writing  # the class's own methods again


async def _member_thread_arguments(client) -> dict:
    community = await new_community(client)
    user_id = await new_student(client)
    await call(client, "add_member", communityId=community["id"], userId=user_id)
    return {"communityId": community["id"], "title": "Hello", "content": "First post", "userId": user_id}


async def test_the_hot_reads_and_on_sqlite_the_hot_writes_open_no_session(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=2)
        arguments = await _member_thread_arguments(client)
        async with _sessions_opened(store) as opened:
            done = await progress(client, learner.enrollment_id, learner.lesson_ids[0])
            thread = (await call(client, "create_thread", **arguments))["thread"]
            await call(client, "get_course", courseId=learner.course_id)
            await call(client, "get_student", studentId=learner.student_id)
            await call(client, "whoami")
        # On PostgreSQL a write's transaction is its session's; on SQLite the writer's connection's.
        writes_in_a_session = ENGINE == "postgresql"
        assert opened == [writes_in_a_session] * 2 + [False] * 3
        # ...and what they wrote is there, audited, with its events.
        fetched = await call(
            client, "get_thread", communityId=arguments["communityId"], threadId=thread["id"]
        )
        audit = await call(client, "list_audit_events", operation="create_thread")
        events = await call(client, "list_events", types=["thread.created", "lesson.completed"])
    assert done["enrollment"]["progress"]["percent"] == 50
    assert fetched["thread"]["title"] == "Hello"
    assert [event["outcome"] for event in audit["data"]] == ["ok"]
    assert {event["type"] for event in events["data"]} == {"thread.created", "lesson.completed"}


async def test_a_retry_under_an_idempotency_key_opens_a_session_for_its_key(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        arguments = await _member_thread_arguments(client)
        async with _sessions_opened(store) as opened:
            first = await call(client, "create_thread", idempotencyKey="thread-1", **arguments)
            again = await call(client, "create_thread", idempotencyKey="thread-1", **arguments)
    assert opened == [True, True]
    assert first == again


async def test_a_write_that_fails_after_its_first_statement_leaves_nothing(store, tenant, monkeypatch):
    async with mcp_client(store, tenant.key) as client:
        arguments = await _member_thread_arguments(client)

        async def broken_audit(*args, **kwargs):
            raise ConstraintViolation("audit_events_pkey")

        monkeypatch.setattr(storage.audit, "insert_audit_event", broken_audit)
        refusal = await refuse(client, "create_thread", **arguments)
    assert refusal["error"] == "conflict"
    async with store.sessions() as session:  # the thread inserted before the audit record rolled back
        assert (await session.scalars(select(col(Thread.id)))).all() == []


@pytest.mark.sqlite_only
async def test_a_write_of_compiled_statements_waits_for_another_process_lock_in_a_thread(store):
    count = PreparedQuery(select(col(Category.id)))

    async def write() -> int:
        async with store.writing() as db:
            return len(await db.rows(count))

    assert await waited_off_the_loop(store.url, write, "BEGIN IMMEDIATE") > 0


@pytest.mark.sqlite_only
async def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_the_connection_free(store):
    insert = PreparedQuery(Category.__table__.insert())

    async def write(slug: str) -> None:
        async with store.writing() as db:
            await db.run(insert, id=f"cat_{slug}", name=slug, slug=slug, icon="x", order=99)

    await write("first")  # the writer's connection is open before the lock is taken
    other = hold(store.url, "BEGIN IMMEDIATE")
    with anyio.move_on_after(0.2):  # the caller gives up while its BEGIN waits in a thread
        await write("cancelled")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(release_later, other)
        await write("after")  # waits for the lock, then for the abandoned BEGIN, and writes
    async with store.sessions() as session:
        slugs = set(
            (await session.scalars(select(col(Category.slug)).where(col(Category.order) == 99))).all()
        )
    assert slugs == {"first", "after"}


@pytest.mark.sqlite_only
async def test_writes_without_a_session_take_turns_with_session_writes(store):
    order: list[str] = []

    async def direct_write() -> None:
        async with store.writing():
            order.append("direct begins")
            await anyio.sleep(0.2)  # hold the SQLite write lock while the session write arrives
            order.append("direct ends")

    async def session_write() -> None:
        await anyio.sleep(0.05)  # arrive while the direct write holds the lock
        async with store.writing() as db:
            await db.session.get(Category, "cat_none")
            order.append("session")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(direct_write)
        tasks.start_soon(session_write)
    assert order == ["direct begins", "direct ends", "session"]


@pytest.mark.sqlite_only  # on PostgreSQL the session runs it, as SQLAlchemy does
async def test_an_insert_missing_a_column_is_refused_by_name(store):
    insert = PreparedQuery(Category.__table__.insert())
    with pytest.raises(ValueError, match="'icon'"):
        async with store.writing() as db:
            await db.run(insert, id="cat_new", name="New", slug="new", order=9)


@pytest.mark.parametrize(
    "stored",
    [
        "2026-03-16 10:00:00.000000",
        "2026-03-16 10:00:00.123456",
        "2026-03-16 10:00:00",
        "1999-12-31 23:59:59.999999",
    ],
)
def test_the_fast_timestamp_parser_returns_what_sqlalchemy_and_sqlmodel_do(stored):
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert process is not None, "UTCDateTime converts what SQLite returns"
    through_sqlalchemy = process(stored)
    fast = sqlite_utc_datetime(stored)
    assert fast == through_sqlalchemy
    assert through_sqlalchemy is not None
    assert fast.utcoffset() == through_sqlalchemy.utcoffset()


def test_sqlite_refusals_of_direct_statements_name_their_constraint():
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (x INTEGER CONSTRAINT ck_t_x CHECK (x > 0))")
    with pytest.raises(ConstraintViolation) as refused, translated_sqlite():
        connection.execute("INSERT INTO t VALUES (-1)")
    assert refused.value.constraint == "ck_t_x"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 16, 10, 0, tzinfo=UTC),
        datetime(2026, 3, 16, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 16, 12, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    ],
)
def test_the_fast_timestamp_writer_stores_what_sqlalchemy_and_sqlmodel_do(value):
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None, "UTCDateTime converts what it hands SQLite"
    through_sqlalchemy = process(value)
    assert sqlite_stored_timestamp(value) == through_sqlalchemy


def test_the_fast_timestamp_writer_refuses_a_timestamp_without_a_time_zone():
    with pytest.raises(ValueError, match="without a time zone"):
        sqlite_stored_timestamp(datetime(2026, 3, 16, 10, 0))


def _turn_held_elsewhere(store) -> int:
    """The write turn of the store's file (`storage.write_turns`), taken on an open file of the
    test's own, as another Blohko process would hold it; the caller closes it to give it back."""
    held = os.open(f"{sqlite_path(store.url)}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return held


@pytest.mark.sqlite_only
async def test_a_write_waits_for_another_process_turn_off_the_loop_and_goes_the_moment_it_ends(store):
    insert = PreparedQuery(Category.__table__.insert())

    async def write() -> float:
        async with store.writing() as db:
            await db.run(insert, id="cat_turns", name="turns", slug="turns", icon="x", order=99)
        return anyio.current_time()

    held = _turn_held_elsewhere(store)
    given_back_at: list[float] = []

    async def give_back_later() -> None:
        await anyio.sleep(0.5)
        given_back_at.append(anyio.current_time())
        os.close(held)  # the other process's turn ends

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(give_back_later)
        written_at, ticks, _ = await ticks_while(write)
    assert ticks >= 10  # the loop went on while the write waited in a thread
    assert 0 <= written_at - given_back_at[0] < 0.2  # woken at once, not at SQLite's next poll


@pytest.mark.sqlite_only
async def test_a_write_refused_for_a_turn_held_past_the_busy_timeout_leaves_the_turn_free(
    database_url, monkeypatch
):
    monkeypatch.setattr(storage.engine, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    insert = PreparedQuery(Category.__table__.insert())
    async with open_store(database_url) as store:

        async def write(slug: str) -> None:
            async with store.writing() as db:
                await db.run(insert, id=f"cat_{slug}", name=slug, slug=slug, icon="x", order=99)

        held = _turn_held_elsewhere(store)
        with pytest.raises(Locked):
            await write("refused")
        os.close(held)  # the abandoned wait now gets the turn, and gives it back
        await write("after")
        probe = _turn_held_elsewhere(store)  # free again: nothing of the store still holds it
        fcntl.flock(probe, fcntl.LOCK_UN)
        os.close(probe)
        async with store.sessions() as session:
            slugs = set((await session.execute(select(col(Category.slug)))).scalars())
    assert "after" in slugs and "refused" not in slugs


class _CountedFlock:
    """`storage.write_turns`'s `fcntl`, counting the turns the store takes and gives back."""

    def __init__(self) -> None:
        self._fcntl = fcntl
        self.LOCK_EX, self.LOCK_SH = fcntl.LOCK_EX, fcntl.LOCK_SH
        self.LOCK_NB, self.LOCK_UN = fcntl.LOCK_NB, fcntl.LOCK_UN
        self.taken = 0
        self.given_back = 0

    def flock(self, fd: int, operation: int) -> None:
        self._fcntl.flock(fd, operation)
        if not os.readlink(f"/proc/self/fd/{fd}").endswith("-writer.lock"):
            return  # the `-writer.waiting` file: whether another process waits
        if operation == self.LOCK_UN:
            self.given_back += 1
        else:
            self.taken += 1


def _turn_is_free(store) -> bool:
    try:
        probe = _turn_held_elsewhere(store)
    except BlockingIOError:
        return False
    os.close(probe)
    return True


def _category_insert(slug: str) -> dict:
    return {"id": f"cat_{slug}", "name": slug, "slug": slug, "icon": "x", "order": 99}


async def _queued_write(store, slug: str, *, seconds: float, inside=lambda: None) -> None:
    """A write of one category that lasts `seconds` (the loop goes on meanwhile, so other writes
    queue in the gate), calling `inside()` in its transaction."""
    async with store.writing() as db:
        await db.run(PreparedQuery(Category.__table__.insert()), **_category_insert(slug))
        inside()
        await anyio.sleep(seconds)


@pytest.mark.sqlite_only
async def test_a_process_keeps_its_turn_for_its_own_waiting_writes_and_gives_it_back_after_them(
    store, monkeypatch
):
    """Writes queued in one process run in one turn across processes (a run within the bound):
    the file lock is taken once and given back once, and is free the moment they are done."""
    counted = _CountedFlock()
    monkeypatch.setattr(storage.write_turns, "fcntl", counted)
    monkeypatch.setattr(storage.write_turns, "TURN_HOLD_SECONDS", 60.0)
    held_between: list[bool] = []

    def note_whether_held() -> None:
        held_between.append(not _turn_is_free(store))

    async with anyio.create_task_group() as tasks:
        for number in range(6):
            tasks.start_soon(
                partial(_queued_write, store, f"run{number}", seconds=0.001, inside=note_whether_held)
            )
    assert held_between == [True] * 6
    assert (counted.taken, counted.given_back) == (1, 1)
    assert _turn_is_free(store)


def _another_process_writes(
    turns: WriteTurns, once_it_has_the_turn: Callable[[], object], *, seconds: float = 0.0
) -> threading.Thread:
    """Another process's write on the same database, started: `turns` (a second `WriteTurns`,
    with open files of its own: `flock` locks belong to the open file, as between processes)
    taken in a thread with its own event loop, `once_it_has_the_turn()` called, the turn held
    `seconds`, then given back."""

    async def one_write() -> None:
        await turns.take()
        once_it_has_the_turn()
        await asyncio.sleep(seconds)
        turns.end_write(more_waiting=False)

    thread = threading.Thread(target=lambda: asyncio.run(one_write()))
    thread.start()
    return thread


@pytest.mark.sqlite_only
async def test_another_process_gets_the_turn_within_the_bound_while_this_ones_writes_keep_coming(
    store, monkeypatch
):
    """A process with writes always waiting still gives the turn back once it is older than
    `TURN_HOLD_SECONDS`, and lets another process waiting for it go first: that one gets it
    before those writes are done."""
    monkeypatch.setattr(storage.write_turns, "TURN_HOLD_SECONDS", 0.05)
    written: list[str] = []

    async def write(slug: str) -> None:
        await _queued_write(store, slug, seconds=0.01)  # each holds the turn 10 ms: 40 of them, 400 ms
        written.append(slug)

    other = WriteTurns(sqlite_path(store.url), timeout_ms=5000)
    other_got_it_after: list[int] = []
    try:
        async with anyio.create_task_group() as tasks:
            for number in range(40):
                tasks.start_soon(write, f"stream{number}")
            await anyio.sleep(0.005)  # the store has its turn and a queue of writes
            waiter = _another_process_writes(other, lambda: other_got_it_after.append(len(written)))
        waiter.join(timeout=5)
    finally:
        other.close()
    assert len(written) == 40
    assert other_got_it_after and other_got_it_after[0] < 20  # not after the whole queue


@pytest.mark.parametrize("more_waiting", [True, False], ids=["at-the-bound", "queue-empty"])
async def test_a_turn_given_back_goes_first_to_a_process_marked_waiting(tmp_path, monkeypatch, more_waiting):
    """This process gives its turn back (at the bound with writes still queued, or with none
    queued and the next write arriving at once) and takes it again straight away; another
    process already waits for it. `flock` alone would give it back to this process before the
    kernel's wake-up of the other ran; the other must have it first."""
    monkeypatch.setattr(storage.write_turns, "TURN_HOLD_SECONDS", 0.0)
    monkeypatch.setattr(storage.write_turns, "LET_GO_FIRST_SECONDS", 5.0)  # a slow wake-up on a busy machine
    database = str(tmp_path / "school.db")
    this, other = WriteTurns(database, timeout_ms=10_000), WriteTurns(database, timeout_ms=10_000)
    order: list[str] = []
    await this.take()
    waiter = _another_process_writes(other, lambda: order.append("other"), seconds=0.02)
    try:
        marked_by = time.monotonic() + 5
        while not this._another_waits():  # the other is marked waiting, blocked in `flock`
            assert time.monotonic() < marked_by, "the other process never marked itself waiting"
            await asyncio.sleep(0.001)
        this.end_write(more_waiting=more_waiting)  # given back (the bound is 0 s here)
        await this.take()  # the next write
        order.append("this")
        this.end_write(more_waiting=False)
    finally:
        waiter.join(timeout=10)
        this.close()
        other.close()
    assert order == ["other", "this"]
    for beside in ("-writer.lock", "-writer.waiting"):  # owner-only, as every file beside the database
        assert stat.S_IMODE(os.stat(f"{database}{beside}").st_mode) == 0o600


async def test_closing_with_a_wait_given_up_closes_its_files_once_the_wait_ends(tmp_path):
    """A wait for the turn given up (past the busy timeout) still blocks in its thread when the
    store closes: the turn it then gets is given back, and both files are closed after it."""
    database = os.path.realpath(tmp_path / "school.db")
    beside = {f"{database}-writer.lock", f"{database}-writer.waiting"}
    other = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def files_open_beside() -> list[str]:
        opened = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own, closed since
                opened.append(os.readlink(f"/proc/self/fd/{fd}"))
        return sorted(path for path in opened if path in beside)

    fcntl.flock(other, fcntl.LOCK_EX)  # another process holds the turn
    try:
        this = WriteTurns(database, timeout_ms=50)
        with pytest.raises(Locked):
            await this.take()
        this.close()
        assert files_open_beside() == sorted([*beside, f"{database}-writer.lock"])  # its thread waits
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
    try:
        for _ in range(500):
            if files_open_beside() == [f"{database}-writer.lock"]:  # only the other's
                break
            await asyncio.sleep(0.01)
        assert files_open_beside() == [f"{database}-writer.lock"]
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the turn it got was given back
    finally:
        os.close(other)


async def test_a_process_marked_waiting_that_does_not_take_the_turn_holds_this_one_up_only_briefly(
    tmp_path, monkeypatch
):
    """A process marked waiting but not taking the turn given back to it (stopped, say) holds a
    process that gave its turn back at the bound for `LET_GO_FIRST_SECONDS`, not the busy
    timeout."""
    monkeypatch.setattr(storage.write_turns, "TURN_HOLD_SECONDS", 0.0)
    monkeypatch.setattr(storage.write_turns, "LET_GO_FIRST_SECONDS", 0.2)
    database = str(tmp_path / "school.db")
    this = WriteTurns(database, timeout_ms=60_000)
    stopped = os.open(f"{database}-writer.waiting", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await this.take()
        fcntl.flock(stopped, fcntl.LOCK_SH)  # marked waiting, and never takes the turn
        this.end_write(more_waiting=True)
        started = time.monotonic()
        await asyncio.wait_for(this.take(), timeout=10)
        assert this.held
        assert time.monotonic() - started >= 0.2
    finally:
        this.close()
        os.close(stopped)


@pytest.mark.sqlite_only
async def test_a_kept_turn_is_given_back_when_the_write_it_was_kept_for_gives_up(store, monkeypatch):
    """The turn is kept at the end of a write because another waits in the gate; that one is
    cancelled before it runs: nothing of the process then writes, and the turn must be free."""
    monkeypatch.setattr(storage.write_turns, "TURN_HOLD_SECONDS", 60.0)
    insert = PreparedQuery(Category.__table__.insert())
    second_waiting = anyio.Event()

    async def second_write() -> None:
        second_waiting.set()
        async with store.writing() as db:
            await db.run(insert, **_category_insert("never"))

    second = asyncio.get_running_loop().create_task(second_write())
    async with store.writing() as db:
        await db.run(insert, **_category_insert("first"))
        await second_waiting.wait()
        await anyio.sleep(0.01)  # the second now waits in the gate
        assert store.write_gate.waiting == 1
    # The first write ended and kept the turn for the second; it gives up before it runs.
    assert not _turn_is_free(store)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert _turn_is_free(store)
    async with store.sessions() as session:
        slugs = set((await session.execute(select(col(Category.slug)))).scalars())
    assert "first" in slugs and "never" not in slugs


@pytest.mark.sqlite_only
async def test_a_turn_kept_for_a_checkpoint_is_given_back_when_the_checkpoint_ends(store, monkeypatch):
    """A checkpoint waits in the gate like a write but begins no transaction: the turn a write
    kept for it must not outlive it."""
    monkeypatch.setattr(storage.write_turns, "TURN_HOLD_SECONDS", 60.0)
    insert = PreparedQuery(Category.__table__.insert())
    checkpoint = asyncio.get_running_loop().create_task(store.checkpoint())
    async with store.writing() as db:
        await db.run(insert, **_category_insert("beforecheckpoint"))
        await anyio.sleep(0.01)  # the checkpoint now waits in the gate
        assert store.write_gate.waiting == 1
    await checkpoint
    assert _turn_is_free(store)
