"""The value rules of stored data, written once: enums, bounds and shapes.

The input models of `tools/` take their enums and checks from here, and the CHECK constraints of
`storage.tables` (and so of migration 0009) are built from the same definitions, so the database
refuses exactly what the API refuses, whoever writes the row. Each rule is a function from a
column to an SQL condition that runs on SQLite and PostgreSQL alike; as in any CHECK, a NULL
passes (nullability is the column's business).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Literal, get_args

from sqlalchemy import CheckConstraint, String, and_, column, false, func, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = [
    "AMOUNT",
    "BOOLEAN",
    "COUNT",
    "EMAIL",
    "EMAIL_MAX_LENGTH",
    "FILE_SIZE",
    "LEVELS",
    "MAX_FILE_SIZE",
    "MAX_INT",
    "MEDIA_TYPES",
    "MEMBER_ROLES",
    "NOT_BLANK",
    "SLUG",
    "USER_ROLES",
    "VIDEO_TYPES",
    "WHITESPACE",
    "Level",
    "MediaType",
    "MemberRole",
    "Rule",
    "VideoType",
    "all_or_none_set",
    "between",
    "check",
    "checks",
    "is_blank",
    "is_email",
    "is_slug",
    "max_length",
    "one_of",
]

Rule = Callable[[ColumnElement], ColumnElement[bool]]
"""A column -> the condition its values must meet."""

# ---- the rules as data

MAX_INT = 2_147_483_647
"""The largest value an integer column holds on every engine."""
MAX_FILE_SIZE = 2**53
"""The largest file size in bytes (the largest integer a JSON client reads exactly)."""

Level = Literal["beginner", "intermediate", "advanced"]
MemberRole = Literal["member", "moderator", "admin"]
MediaType = Literal["video", "file", "image"]
VideoType = Literal["youtube", "vimeo", "direct"]
"""The enums as types, for the input models; the tuples below are their values, for the checks."""
LEVELS: tuple[Level, ...] = get_args(Level)
USER_ROLES = ("owner", "staff", "bot", "student")
MEMBER_ROLES: tuple[MemberRole, ...] = get_args(MemberRole)
MEDIA_TYPES: tuple[MediaType, ...] = get_args(MediaType)
VIDEO_TYPES: tuple[VideoType, ...] = get_args(VideoType)

SLUG_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
"""A slug is runs of these joined by single hyphens."""
_SLUG = re.compile(f"[{SLUG_CHARACTERS}]+(?:-[{SLUG_CHARACTERS}]+)*")

WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Every character Python's `str.strip()` and the regex `\\s` take for whitespace (a test keeps
this equal to them): what makes a text blank, and what no email holds."""

EMAIL_MAX_LENGTH = 320
_EMAIL = re.compile(f"[^@{WHITESPACE}]+@[^@{WHITESPACE}]+\\.[^@{WHITESPACE}]+")


def is_slug(value: str) -> bool:
    """Lowercase letters and digits in runs joined by single hyphens, like `intro-to-python`."""
    return _SLUG.fullmatch(value) is not None


def is_email(value: str) -> bool:
    """One `@` between a local part and a domain with a dot inside it, no whitespace, and short
    enough to store, lowercased too (the login lookup's form: some letters grow when lowercased)."""
    fits = max(len(value), len(value.lower())) <= EMAIL_MAX_LENGTH
    return fits and _EMAIL.fullmatch(value) is not None


def is_blank(value: str) -> bool:
    return not value.strip()


# ---- the same rules as SQL


class _Text(ColumnElement[str]):
    """A string literal that may hold any character, written so that each engine reads it and the
    DDL keeps to one line (SQLAlchemy reads SQLite's CHECK constraints back line by line):
    `'a' || char(9)` on SQLite, `E'a\\u0009'` on PostgreSQL."""

    type = String()
    inherit_cache = True
    # Read from the class to build cache keys, never mutated. A list, as SQLAlchemy types the
    # attribute: a ClassVar would not match the instance attribute it overrides.
    _traverse_internals: list[tuple[str, InternalTraversal]] = [("text", InternalTraversal.dp_string)]  # noqa: RUF012  # SQLAlchemy types it as this instance list

    def __init__(self, text: str) -> None:
        self.text = text


def _plain(character: str) -> bool:
    return character.isprintable() and character not in WHITESPACE.replace(" ", "")


@compiles(_Text, "sqlite")
def _sqlite_text(element: _Text, compiler, **kw) -> str:
    runs, plain = [], ""
    for character in element.text:
        if _plain(character):
            plain += character
            continue
        if plain:
            runs.append("'" + plain.replace("'", "''") + "'")
            plain = ""
        runs.append(f"char({ord(character)})")
    if plain or not runs:
        runs.append("'" + plain.replace("'", "''") + "'")
    return " || ".join(runs)


@compiles(_Text, "postgresql")
def _postgresql_text(element: _Text, compiler, **kw) -> str:
    escaped = (
        ch.replace("\\", "\\\\").replace("'", "''") if _plain(ch) else f"\\u{ord(ch):04x}"
        for ch in element.text
    )
    return "E'" + "".join(escaped) + "'"


def one_of(values: Iterable[str]) -> Rule:
    values = tuple(values)
    return lambda value: value.in_(values)


def between(low: int, high: int) -> Rule:
    return lambda value: value.between(low, high)


def max_length(length: int) -> Rule:
    return lambda value: func.length(value) <= length


def _boolean(value: ColumnElement) -> ColumnElement[bool]:
    # PostgreSQL's boolean type already holds only these; SQLite stores any value in the column.
    return value.in_([false(), true()])


def _not_blank(value: ColumnElement) -> ColumnElement[bool]:
    return func.trim(value, _Text(WHITESPACE)) != ""


def _slug(value: ColumnElement) -> ColumnElement[bool]:
    return and_(
        func.ltrim(value, SLUG_CHARACTERS + "-") == "",
        value != "",
        value.not_like("-%"),
        value.not_like("%-"),
        value.not_like("%--%"),
    )


def _email(value: ColumnElement) -> ColumnElement[bool]:
    # '_%@_%._%' with a single '@': a local part, and a domain with a dot neither first nor last.
    return and_(
        value.like("_%@_%._%"),
        value.not_like("%@%@%"),
        *(~value.contains(_Text(character)) for character in WHITESPACE),
    )


BOOLEAN: Rule = _boolean
NOT_BLANK: Rule = _not_blank
SLUG: Rule = _slug
EMAIL: Rule = _email
AMOUNT: Rule = between(0, MAX_INT)
"""Prices, in cents."""
COUNT: Rule = between(0, MAX_INT)
"""Counts, durations and watched seconds, orders."""
FILE_SIZE: Rule = between(0, MAX_FILE_SIZE)


def all_or_none_set(*columns: str) -> ColumnElement[bool]:
    """Either every one of `columns` is set or none is."""
    return or_(
        and_(*(column(name).is_(None) for name in columns)),
        and_(*(column(name).is_not(None) for name in columns)),
    )


def check(table: str, name: str, condition: ColumnElement[bool]) -> CheckConstraint:
    """A CHECK constraint named `ck_<table>_<name>`, so a refusal names what it refused."""
    return CheckConstraint(condition, name=f"ck_{table}_{name}")


def checks(table: str, **rules: Rule) -> list[CheckConstraint]:
    """One CHECK constraint per column of `table` named in `rules`: `ck_<table>_<column>`."""
    return [check(table, name, rule(column(name))) for name, rule in rules.items()]
