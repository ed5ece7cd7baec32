"""The indexed name search (storage.search) finds exactly what the plain ILIKE scan finds, at any
search length, and stays in sync with registrations, renames and deletes."""

from sqlalchemy import delete, select
from sqlmodel import col

from storage.queries import _escape_like
from storage.tables import Producer, User
from tests.support.factories import mcp_client, ok

NAMES = [
    "Jane Smith",
    "Janet Doe",
    "Bob",
    "50%_off",
    'Ann "Quote" Lee',
    "Émile Zola",
    "émilie",
    "ab",
    "JANE",
    "Xy Jan",
]
SEARCHES = [
    "j",
    "ja",
    "jan",
    "JAN",
    "ane",
    "%_",
    "50%_o",
    '"quote"',
    "émi",
    "ÉMI",
    "mile",
    "ab",
    "zzz",
    "e ",
    " ",
]


async def _scan(store, producer_id: str, search: str) -> list[str]:
    """What a plain case-insensitive LIKE (no index) finds, newest first."""
    statement = (
        select(col(User.name))
        .where(col(User.producer_id) == producer_id, col(User.role) == "student")
        .where(col(User.name).ilike(f"%{_escape_like(search)}%", escape="\\"))
        .order_by(col(User.created_at).desc(), col(User.id).desc())
    )
    async with store.sessions() as session:
        return list((await session.scalars(statement)).all())


async def _search(client, search: str) -> tuple[list[str], int]:
    result = ok(await client.call_tool("list_students", {"search": search, "limit": 100}))
    return [row["name"] for row in result["data"]], result["pagination"]["total"]


async def test_search_finds_what_the_unindexed_scan_finds_for_every_length(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        for number, name in enumerate(NAMES):
            ok(await client.call_tool("register_student", {"name": name, "email": f"s{number}@x.io"}))
        for search in SEARCHES:
            expected = await _scan(store, tenant.producer_id, search)
            assert await _search(client, search) == (expected, len(expected)), search


async def test_search_total_counts_only_matches_even_beyond_one_page(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        for number in range(7):
            ok(
                await client.call_tool(
                    "register_student", {"name": f"Marwick {number}", "email": f"m{number}@x.io"}
                )
            )
        ok(await client.call_tool("register_student", {"name": "Someone Else", "email": "e@x.io"}))
        result = ok(await client.call_tool("list_students", {"search": "marwick", "limit": 5}))
    assert len(result["data"]) == 5 and result["pagination"]["total"] == 7


async def test_search_follows_a_rename(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        made = ok(await client.call_tool("register_student", {"name": "Old Name", "email": "o@x.io"}))[
            "student"
        ]
        ok(await client.call_tool("update_student", {"studentId": made["id"], "name": "Fresh Title"}))
        assert await _search(client, "old name") == ([], 0)
        assert await _search(client, "fresh") == (["Fresh Title"], 1)


async def test_search_forgets_deleted_users(store, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with mcp_client(store, other.key) as client:
        ok(await client.call_tool("register_student", {"name": "Gone Student", "email": "g@x.io"}))
    async with store.writing() as db:
        await db.session.execute(delete(Producer).where(Producer.id == other.producer_id))
    tenant = await tenant_factory("Kept Academy")
    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("register_student", {"name": "Gone Student", "email": "g@x.io"}))
        assert await _search(client, "gone") == (["Gone Student"], 1)
