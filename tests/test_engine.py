"""Write sessions: concurrent read-then-write transactions take turns instead of failing or losing updates."""

import anyio
import pytest
from sqlalchemy import select, update

from storage.tables import Producer

pytestmark = pytest.mark.anyio


async def test_concurrent_read_then_write_transactions_take_turns(store, tenant):
    where = Producer.id == tenant.producer_id
    async with store.sessions() as session, session.begin():
        await session.execute(update(Producer).where(where).values(name="0"))

    async def increment() -> None:
        async with store.write_sessions() as session, session.begin():
            # FOR UPDATE serializes on PostgreSQL; SQLite ignores it, and BEGIN IMMEDIATE does the work.
            count = int(await session.scalar(select(Producer.name).where(where).with_for_update()))
            await anyio.sleep(0)  # let the other transactions read the same value if they can
            await session.execute(update(Producer).where(where).values(name=str(count + 1)))

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(increment)
    async with store.sessions() as session:
        assert await session.scalar(select(Producer.name).where(where)) == "50"
