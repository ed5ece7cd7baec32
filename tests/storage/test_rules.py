"""storage.rules: each CHECK condition, run by the database, accepts exactly the values the input
models accept (so valid data always stores, and nothing the API refuses can be stored)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import Annotated

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import String, func, literal, select

from storage.engine import open_store
from storage.rules import (
    EMAIL,
    EMAIL_MAX_LENGTH,
    NOT_BLANK,
    SLUG,
    WHITESPACE,
    Rule,
    is_blank,
    is_email,
    is_slug,
)
from tests.support.databases import raw_connection
from tests.support.properties import ALL_HEALTH_CHECKS
from tools.core.fields import Title
from tools.domains.communities import Name
from tools.domains.courses import Slug
from tools.domains.students import Email

PROPERTY = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=ALL_HEALTH_CHECKS
)

SLUGS = st.one_of(
    st.text(alphabet="az09-A _!é.", max_size=8), st.from_regex(r"[a-z0-9]+(-[a-z0-9]+)*", fullmatch=True)
)
EMAILS = st.one_of(st.text(alphabet="ab.@-_%'İ" + WHITESPACE, max_size=10), st.emails())
TEXTS = st.text(alphabet=WHITESPACE + "a\u200b'", max_size=6)


def test_whitespace_is_what_python_strips_and_regex_spaces_match():
    spaces = [character for character in map(chr, range(sys.maxunicode + 1)) if character.isspace()]
    assert sorted(WHITESPACE) == spaces
    assert all(re.fullmatch(r"\s", character) for character in WHITESPACE)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio") as running:
        yield running


@pytest.fixture
def evaluate(portal, database_url) -> Iterator[Callable[[Callable, list[str]], list[bool]]]:
    """Whether the database holds `condition(value)` true, for each of `values`, in one query."""
    with portal.wrap_async_context_manager(open_store(database_url)) as store:

        async def query(condition: Callable, values: list[str]) -> list[bool]:
            async with raw_connection(store.url) as connection:
                row = (
                    await connection.execute(select(*(condition(literal(v, String)) for v in values)))
                ).one()
            return [bool(answer) for answer in row]

        yield lambda condition, values: portal.call(query, condition, values)


def _fits(rule: Rule, length: int) -> Callable:
    return lambda value: rule(value) & (func.length(value) <= length)


def _accepts(adapter: TypeAdapter, value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def test_the_slug_check_is_the_slug_field(evaluate):
    field = TypeAdapter(Slug)

    @PROPERTY
    @given(st.lists(SLUGS, min_size=1, max_size=40))
    @example(["a", "a" * 200, "a" * 201, "Bad Slug!", "-a", "a-", "a--b", ""])
    def check(values: list[str]) -> None:
        assert [is_slug(v) for v in values] == evaluate(SLUG, values)
        assert [_accepts(field, v) for v in values] == evaluate(_fits(SLUG, 200), values)

    check()


def test_the_email_checks_are_the_email_field(evaluate):
    field = TypeAdapter(Email)

    @PROPERTY
    @given(st.lists(EMAILS, min_size=1, max_size=40))
    @example(
        ["a" * 308 + "@example.com", "a" * 309 + "@example.com", "İ" * 300 + "@example.com", "a@b", "a b@c.d"]
    )
    def check(values: list[str]) -> None:
        # A row holds the email as given (stripped) and lowercased, each checked in its own column.
        stored = [v.strip() for v in values]
        email_fits = _fits(EMAIL, EMAIL_MAX_LENGTH)
        lowered = evaluate(email_fits, [v.lower() for v in stored])
        fits = [a and b for a, b in zip(evaluate(email_fits, stored), lowered, strict=True)]
        assert [is_email(v) for v in stored] == fits
        assert [_accepts(field, v) for v in values] == fits

    check()


def test_the_not_blank_check_is_the_text_and_title_fields(evaluate):
    texts, titles = TypeAdapter(Name), TypeAdapter(Title)
    stripped = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])  # what a Title stores

    @PROPERTY
    @given(st.lists(TEXTS, min_size=1, max_size=40))
    @example(["", " ", "\x1c", "\u200b", "\u3000a\u3000", "a" * 201])
    def check(values: list[str]) -> None:
        assert [not is_blank(v) for v in values] == evaluate(NOT_BLANK, values)
        assert [_accepts(texts, v) for v in values] == evaluate(_fits(NOT_BLANK, 200), values)
        as_stored = [stripped.validate_python(v) for v in values]
        assert [_accepts(titles, v) for v in values] == evaluate(_fits(NOT_BLANK, 200), as_stored)

    check()
