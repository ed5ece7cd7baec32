"""The database refuses what the API refuses, whoever writes the row: a course row with level
'expert', price -5 and slug 'Bad Slug!', written by another tool, would make list_courses and
get_course fail for its whole producer.

Each bad value below is written with plain SQL, as another tool would, on insert and on update;
the database must refuse it, naming the constraint (PostgreSQL's own column types refuse some
values first: too long for a VARCHAR, too large for an INTEGER, not a boolean)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Table, delete, insert, literal_column, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage.ids import utcnow
from storage.queries import violated_constraint
from storage.tables import ROLLUP_TABLES, Category, Course, metadata
from tests.support.databases import ENGINE, raw_connection
from tests.support.factories import make_course, mcp_client, ok
from tests.support.table_rows import insert_rows, valid_rows


@dataclass(frozen=True)
class Bad:
    """`value` (SQL) in `column` of `table` breaks one of `constraints`; `typed`: PostgreSQL's
    column type refuses it first."""

    table: str
    column: str
    value: str
    constraints: tuple[str, ...]
    typed: bool = False


def _rule(table: str, column: str, *values: str, typed: bool = False) -> list[Bad]:
    return [Bad(table, column, value, (f"ck_{table}_{column}",), typed) for value in values]


BLANKS = ("''", "' '", "'\t\n'", "'\u00a0\u3000'", "'\x1c'")
SLUGS = ("'Bad Slug!'", "''", "'-a'", "'a-'", "'a--b'", "'Upper'", "'a b'", "'a_b'", "'é'")
EMAILS = (
    "'no-at-sign'",
    "'a@b'",
    "'a b@c.d'",
    "'a@b@c.d'",
    "'@b.c'",
    "'a@.c'",
    "'a@b.'",
    "'a\u3000b@c.d'",
    "''",
)
BOOLEANS = ("2", "-1", "'yes!'")

RULES = [
    *_rule("producers", "name", *BLANKS),
    *_rule("users", "name", *BLANKS),
    *_rule("users", "email", *EMAILS),
    *_rule("users", "email_normalized", *EMAILS),
    *_rule("users", "role", "'admin'", "'Owner'", "''"),
    *_rule("api_keys", "name", *BLANKS),
    *_rule("categories", "name", *BLANKS),
    *_rule("categories", "slug", *SLUGS),
    *_rule("categories", "order", "-1"),
    *_rule("courses", "title", *BLANKS),
    *_rule("courses", "slug", *SLUGS),
    *_rule("courses", "level", "'expert'", "'Beginner'", "''"),
    *_rule("courses", "price", "-5", "-1"),
    *_rule("courses", "price", "2147483648", typed=True),
    *_rule("courses", "is_free", *BOOLEANS, typed=True),
    *_rule("courses", "published", *BOOLEANS, typed=True),
    *_rule("sections", "title", *BLANKS),
    *_rule("sections", "order", "-1"),
    *_rule("lessons", "title", *BLANKS),
    *_rule("lessons", "duration", "-1"),
    *_rule("lessons", "order", "-1"),
    *_rule("lessons", "video_type", "'dailymotion'", "''"),
    *_rule("lessons", "is_preview", *BOOLEANS, typed=True),
    *(
        Bad("lessons", column, "NULL", ("ck_lessons_video",))
        for column in ("video_type", "video_url", "video_original_url")
    ),
    *_rule("communities", "name", *BLANKS),
    *_rule("communities", "slug", *SLUGS),
    *_rule("communities", "description", *BLANKS),
    *_rule("communities", "price", "-1"),
    *_rule("communities", "is_free", *BOOLEANS, typed=True),
    *_rule("communities", "is_public", *BOOLEANS, typed=True),
    *_rule("community_members", "role", "'owner'", "''"),
    *_rule("threads", "title", *BLANKS),
    *_rule("threads", "content", *BLANKS),
    *_rule("threads", "pinned", *BOOLEANS, typed=True),
    *_rule("threads", "comment_count", "-1"),
    *_rule("comments", "content", *BLANKS),
    *_rule("community_media", "type", "'audio'", "''"),
    *_rule("community_media", "title", *BLANKS),
    *_rule("community_media", "description", *BLANKS),
    *_rule("community_media", "file_name", *BLANKS),
    *_rule("community_media", "mime_type", *BLANKS),
    *_rule("community_media", "file_size", "-1", str(2**53 + 1)),
    *_rule("community_media", "duration", "-1"),
    *_rule("lesson_progress", "watched_seconds", "-1"),
    *_rule("lesson_progress", "completed", *BOOLEANS, typed=True),
]


def _too_long() -> list[Bad]:
    """One character over the length of every bounded text column (an email still shaped as one;
    a value of an enum is also refused as none of them)."""
    cases = []
    for table in metadata.sorted_tables:
        if table.name in ROLLUP_TABLES:  # written only by triggers, from rows these checks bound
            continue
        for column in table.columns:
            length = getattr(column.type, "length", None)  # String and its kinds; Enum among them
            if not length:
                continue
            text = "x" * (length + 1)
            if column.name.startswith("email"):
                text = text[: -len("@example.com")] + "@example.com"
            rule, length = f"ck_{table.name}_{column.name}", f"ck_{table.name}_{column.name}_length"
            cases.append(Bad(table.name, column.name, f"'{text}'", (length, rule), typed=True))
    return cases


CASES = RULES + _too_long()
TABLES = sorted({case.table for case in CASES})


def _check_refusal(refusal: DBAPIError | None, case: Bad, how: str) -> str | None:
    """What is wrong with how the database answered `case` (None: refused as it should be)."""
    if refusal is None:
        return f"{how} {case.table}.{case.column} = {case.value!r}: accepted"
    if isinstance(refusal, IntegrityError) and violated_constraint(refusal) in case.constraints:
        return None
    if ENGINE == "postgresql" and case.typed and not isinstance(refusal, IntegrityError):
        return None
    return f"{how} {case.table}.{case.column} = {case.value!r}: refused by {refusal.orig}, not {case.constraints}"


async def _attempt(store, rows: list[tuple[Table, dict]], statement) -> DBAPIError | None:
    """Run `statement` after inserting `rows`, all in one transaction that is rolled back."""
    async with raw_connection(store.url, commit=False) as connection:
        try:
            await insert_rows(connection, rows)
            await connection.execute(statement)
        except DBAPIError as refusal:
            return refusal
    return None


def _target(rows: list[tuple[Table, dict]], table_name: str) -> int:
    return next(i for i, (table, _) in enumerate(rows) if table.name == table_name)


@pytest.fixture
async def existing(store) -> AsyncIterator[list[tuple[Table, dict]]]:
    """One valid row of every table, in the store (so valid rows are accepted)."""
    rows = valid_rows(secrets.token_hex(4))
    async with raw_connection(store.url) as connection:
        await insert_rows(connection, rows)
    yield rows
    # Categories are reference data that outlives a test on PostgreSQL.
    category = rows[_target(rows, "categories")][1]["id"]
    async with raw_connection(store.url) as connection:
        await connection.execute(delete(Course).where(Course.category_id == category))
        await connection.execute(delete(Category).where(Category.id == category))


@pytest.mark.parametrize("table_name", TABLES)
async def test_every_bad_value_is_refused_on_insert_and_on_update(store, existing, table_name):
    fresh = valid_rows(secrets.token_hex(4))
    problems = []
    for case in [case for case in CASES if case.table == table_name]:
        # Insert: a new valid row (its parents first) but for the bad value.
        at = _target(fresh, case.table)
        table, values = fresh[at]
        inserted = insert(table).values({**values, case.column: literal_column(case.value)})
        problems.append(_check_refusal(await _attempt(store, fresh[:at], inserted), case, "insert"))
        # Update: the existing valid row, given the bad value.
        table, values = existing[_target(existing, case.table)]
        key = [column == values[column.name] for column in table.primary_key.columns]
        updated = update(table).where(*key).values({case.column: literal_column(case.value)})
        problems.append(_check_refusal(await _attempt(store, [], updated), case, "update"))
    assert [problem for problem in problems if problem] == []


REPORTED = {"level": "'expert'", "price": "-5", "slug": "'Bad Slug!'"}
"""The row of the security review."""


async def test_the_reported_course_row_is_refused_on_insert_and_update(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
    now = utcnow()
    row = {
        "id": "course_bad",
        "producer_id": tenant.producer_id,
        "category_id": "cat_web_development",
        "title": "Bad",
        "is_free": False,
        "published": False,
        "created_at": now,
        "updated_at": now,
    }
    bad = {column: literal_column(value) for column, value in REPORTED.items()}
    table = Course.__table__
    refusals = [
        await _attempt(store, [], insert(table).values({**row, **bad})),
        await _attempt(store, [], update(table).where(table.c.id == course["id"]).values(bad)),
    ]
    for refusal in refusals:
        assert isinstance(refusal, IntegrityError)
        assert violated_constraint(refusal) in {"ck_courses_level", "ck_courses_price", "ck_courses_slug"}


async def test_courses_stay_listable_for_a_producer_whose_rows_another_tool_writes(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Good Course")
        table = Course.__table__
        for column, value in REPORTED.items():
            statement = (
                update(table).where(table.c.id == course["id"]).values({column: literal_column(value)})
            )
            try:
                async with raw_connection(store.url) as connection:
                    await connection.execute(statement)
            except IntegrityError:
                pass  # refused: nothing got in
        listed = ok(await client.call_tool("list_courses", {}))
        fetched = ok(await client.call_tool("get_course", {"courseId": course["id"]}))
    assert [row["slug"] for row in listed["data"]] == [course["slug"]]
    assert fetched["course"]["level"] is None and fetched["course"]["price"] == 0
