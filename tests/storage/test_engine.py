"""Write sessions: concurrent read-then-write transactions take turns instead of failing or losing updates."""

import asyncio

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from storage.engine import StoreBusy, WriteGate, open_store
from storage.tables import Producer


async def test_concurrent_read_then_write_transactions_take_turns(store, tenant, database_url):
    where = Producer.id == tenant.producer_id
    async with store.writing() as db:
        await db.session.execute(update(Producer).where(where).values(name="0"))

    # At most 10 transactions in flight per store: 20 racing is race enough, and 50 at once held 60
    # PostgreSQL connections, which with the other worker's tests could pass the server's 100.
    limiters = {}

    async def increment(through) -> None:
        async with (
            limiters.setdefault(id(through), anyio.CapacityLimiter(10)),
            through.writing() as db,
        ):
            session = db.session
            # FOR UPDATE serializes on PostgreSQL; on SQLite BEGIN IMMEDIATE does it between stores.
            count = int(await session.scalar(select(col(Producer.name)).where(where).with_for_update()))
            await anyio.lowlevel.checkpoint()  # let the other transactions read the same value if they can
            await session.execute(update(Producer).where(where).values(name=str(count + 1)))

    # A second store on the same database stands for a second process: each has its own write
    # queue, so the two really race for the database's own lock.
    async with open_store(database_url) as other, anyio.create_task_group() as group:
        for n in range(50):
            group.start_soon(increment, store if n % 2 else other)
    async with store.sessions() as session:
        assert await session.scalar(select(col(Producer.name)).where(where)) == "50"


async def test_the_write_gate_lets_writes_through_one_at_a_time_in_arrival_order():
    gate = WriteGate(limit=100, timeout=5)
    order: list[int] = []
    inside = 0

    async def write(n: int) -> None:
        nonlocal inside
        async with gate.turn():
            inside += 1
            assert inside == 1
            order.append(n)
            await asyncio.sleep(0)  # the others run meanwhile, and must find the turn taken
            inside -= 1

    async with anyio.create_task_group() as group:
        for n in range(30):
            group.start_soon(write, n)
            await asyncio.sleep(0)  # arrive in this order
    assert order == list(range(30))


async def test_a_write_that_waits_past_the_timeout_or_finds_the_queue_full_is_refused_as_busy():
    gate = WriteGate(limit=2, timeout=0.2)
    held = asyncio.Event()
    release = asyncio.Event()

    async def long_write() -> None:
        async with gate.turn():
            held.set()
            await release.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(long_write)
        await held.wait()
        with pytest.raises(StoreBusy, match="within 0.2 s") as timed_out:
            async with gate.turn():
                pass
        assert timed_out.value.retry_after >= 1

        waiters = [asyncio.create_task(_take_turn(gate)) for _ in range(2)]
        await asyncio.sleep(0)  # both start and queue for the turn
        with pytest.raises(StoreBusy, match="2 writes are already waiting"):
            async with gate.turn():
                pass
        release.set()
        assert await asyncio.gather(*waiters) == [True, True]


async def _take_turn(gate: WriteGate) -> bool:
    async with gate.turn():
        return True
