"""Field types shared by the domain modules, so a limit is written once."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.config import JsonDict, JsonValue

from storage.rules import MAX_INT, SLUG_CHARACTERS, WHITESPACE, is_blank, is_slug

__all__ = [
    "MAX_INT",
    "NOT_BLANK_CHECKS",
    "NOT_BLANK_PATTERN",
    "REST_SCHEMA",
    "SEARCHES_IDENTITIES",
    "SHOWN_ONCE",
    "SLUG_CHECKS",
    "SLUG_PATTERN",
    "Count",
    "Id",
    "IsoDate",
    "IsoDatetime",
    "Price",
    "RestSchema",
    "SearchesIdentities",
    "Secret",
    "ShownOnce",
    "Title",
    "exactly_one_of",
    "whitespace_class",
]

REST_SCHEMA = "x-rest"
"""The key under which a JSON schema carries what only the REST API's OpenAPI document states."""


class RestSchema:
    """`Annotated` metadata: JSON-schema keywords (`pattern`, `format`, `enum`) for the OpenAPI
    document only. The validators already enforce them; the MCP tool schemas leave them out on
    purpose (every agent pays for `tools/list` in context), so they travel under `REST_SCHEMA`,
    which `server.openapi` merges in and `server.tool_listing` drops."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        schema[REST_SCHEMA] = {**schema.get(REST_SCHEMA, {}), **self.keywords}
        return schema


class ShownOnce:
    """`Annotated` metadata on an output field: a credential (a signing secret, an API key, a
    session token, a generated password, a one-time code) shown in the answer that made it and
    never again. An answer kept under an idempotency key keeps none of them, and its replay says
    where they were shown (`tools.core.shown_once`); mark every such field, so a new one is
    withheld too."""

    def __repr__(self) -> str:
        return "SHOWN_ONCE"


SHOWN_ONCE = ShownOnce()
Secret = Annotated[str, SHOWN_ONCE]
"""A credential in an answer, shown once (`ShownOnce`). In the answer of a create that takes an
idempotency key, declare it `Secret | None`: a replay answers null in its place."""


class SearchesIdentities:
    """`Annotated` metadata on an input field that finds students by their name or email (a
    search text, a list of emails). A pseudonymous caller is refused it, or it could learn who a
    pseudonym is one guess at a time (`tools.core.pseudonyms.refuse_identity_search`); mark every
    such field, and the runner refuses it for every operation alike."""

    def __repr__(self) -> str:
        return "SEARCHES_IDENTITIES"


SEARCHES_IDENTITIES = SearchesIdentities()


def whitespace_class(*, negated: bool, also: str = "") -> str:
    """A regex character class of `WHITESPACE` (and `also`), written with `\\uXXXX` escapes that
    Python's `re` and ECMA-262 (JSON Schema's `pattern`) read alike. Negated, it leaves out NUL
    too: no text an input model takes holds one (`tools.core.models.InputModel`)."""
    escaped = "".join(
        f"\\u{ord(character):04x}" for character in WHITESPACE + also + ("\x00" if negated else "")
    )
    return f"[{'^' if negated else ''}{escaped}]"


NOT_BLANK_PATTERN = whitespace_class(negated=True)
"""Unanchored, as JSON Schema's `pattern` is: the text holds a character that is not whitespace."""

Id = Annotated[str, Field(min_length=1, max_length=100)]
Price = Annotated[int, Field(ge=0, le=MAX_INT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]


_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    # pydantic would also take numbers and numeric strings as Unix times; the schema says ISO text.
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date-time string such as 2026-05-01T09:00:00Z")
    return value


_FIRST_INSTANT, _LAST_INSTANT = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _in_utc(value: datetime) -> datetime:
    # The store compares instants in UTC. Near the ends of the calendar the conversion leaves the
    # years a datetime holds (0001-01-01T00:00+14:00 is in year 0 in UTC). Every such argument is a
    # bound of a filter (since, until, updatedAfter), and no stored time lies beyond the first or
    # last instant a datetime holds: the nearest of those filters exactly alike. So the document's
    # `format: date-time` is the whole rule, with no range that JSON Schema could not state.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return _FIRST_INSTANT if value.year == 1 else _LAST_INSTANT


IsoDatetime = Annotated[
    AwareDatetime, Field(strict=False), BeforeValidator(_iso_text), AfterValidator(_in_utc)
]
"""A timestamp argument bounding a filter: an ISO 8601 string with a timezone (JSON has no date
type), handed to the operation as the same instant in UTC (or, past the ends of the calendar in
UTC, its first or last instant, which filter alike)."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: Any) -> Any:
    # pydantic would also take a date-time, and numbers as Unix times; the schema says a date.
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be an ISO 8601 date string such as 2026-05-01")
    return value


IsoDate = Annotated[date, Field(strict=False), BeforeValidator(_iso_date_text)]
"""A UTC day argument: an ISO 8601 date string (YYYY-MM-DD)."""


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be blank")
    return value


SLUG_PATTERN = f"^[{SLUG_CHARACTERS}]+(?:-[{SLUG_CHARACTERS}]+)*$"
"""`storage.rules.is_slug` as a JSON Schema pattern."""


def _check_slug(value: str) -> str:
    if not is_slug(value):
        raise ValueError("must be lowercase letters, digits and single hyphens, like intro-to-python")
    return value


# Stripped by pydantic, whose whitespace is Unicode's; blank is Python's (storage.rules.WHITESPACE),
# which also counts the separators U+001C-U+001F, as the database's check does.
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_not_blank),
    RestSchema(pattern=NOT_BLANK_PATTERN),
]


NOT_BLANK_CHECKS = (AfterValidator(_not_blank), RestSchema(pattern=NOT_BLANK_PATTERN))
"""`Annotated` metadata of a text that is not only whitespace, after its length:
`Annotated[str, Field(min_length=1, max_length=200), *NOT_BLANK_CHECKS]`."""
SLUG_CHECKS = (AfterValidator(_check_slug), RestSchema(pattern=SLUG_PATTERN))
"""`Annotated` metadata of a URL slug (lowercase letters, digits and single hyphens), after its
length: `Annotated[str, Field(min_length=1, max_length=100), *SLUG_CHECKS]`."""


def exactly_one_of(*fields: str) -> ConfigDict:
    """An input model's config saying, in the REST document only, that exactly one of `fields`
    (wire names) is given and not null. The operation still checks it, with its own message; MCP
    schemas leave it out like every `RestSchema`.

    Written as `not` (none given, or two given), not as a `oneOf` of one branch per field: client
    generators read a `oneOf` as the body's type and drop its properties (`openapi-python-client`
    made two bodies of one field each), while they pass over `not`, as it only refuses."""
    none_given: JsonDict = {"properties": {field: {"type": "null"} for field in fields}}
    two_given: list[JsonValue] = [
        {
            "required": [first, second],
            "properties": {first: {"not": {"type": "null"}}, second: {"not": {"type": "null"}}},
        }
        for index, first in enumerate(fields)
        for second in fields[index + 1 :]
    ]
    return ConfigDict(json_schema_extra={REST_SCHEMA: {"not": {"anyOf": [none_given, *two_given]}}})
