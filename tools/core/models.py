"""Wire models shared by every domain: camelCase JSON, UTC timestamps, pagination, URLs.

Python attributes are snake_case; the JSON (MCP and REST alike) is camelCase.
Input models accept only the documented camelCase names and refuse unknown fields;
output models serialize by alias.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from storage.rules import WHITESPACE
from tools.core.fields import IsoDatetime, RestSchema, whitespace_class

__all__ = [
    "UPDATED_AFTER",
    "WEB_URL_PATTERN",
    "Deleted",
    "InputModel",
    "NoInput",
    "OutputModel",
    "Page",
    "PageQuery",
    "Pagination",
    "SecretResult",
    "UtcDatetime",
    "WebUrl",
    "format_utc",
]

MAX_URL_LENGTH = 2048


def _storable(value: Any) -> None:
    """Raise unless every text in `value` can be stored on every engine."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must not contain unpaired surrogate characters") from None
    elif isinstance(value, list | tuple):
        for item in value:
            _storable(item)
    elif isinstance(value, dict):
        for item in value.values():
            _storable(item)


class InputModel(BaseModel):
    """Arguments of an operation: camelCase names only, unknown fields refused, no type coercion,
    and no text that a database would refuse (PostgreSQL stores no NUL; UTF-8 no lone surrogate)."""

    # Built when the catalog loads (not `defer_build`): a server freezes what it loaded out of the
    # garbage collector's full collections (`server.runtime.settle_heap`), and validators built
    # later would be walked by every one of them (measured: a third fewer get_course calls/s).
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        strict=True,
        frozen=True,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _only_storable_text(cls, value: Any) -> Any:
        _storable(value)
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers_are_integers(cls, value: Any, info: ValidationInfo) -> Any:
        # JSON Schema's `integer` is any number without a fractional part, 5.0 too: clients and
        # generators built from the documents send such numbers. Strict mode would refuse them.
        if isinstance(value, float) and value.is_integer() and _takes_integer(cls, info.field_name):
            return int(value)
        return value


@cache
def _takes_integer(model: type[BaseModel], field_name: str | None) -> bool:
    field = model.model_fields.get(field_name or "")
    return field is not None and _is_integer_type(field.annotation)


def _is_integer_type(annotation: Any) -> bool:
    """`int`, `Annotated[int, ...]`, `int | None`: a type whose value is an integer when given."""
    if typing.get_origin(annotation) is Annotated:
        return _is_integer_type(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(
            _is_integer_type(member) for member in typing.get_args(annotation) if member is not type(None)
        )
    return annotation is int


class NoInput(InputModel):
    """The input of an operation that takes no arguments."""


class OutputModel(BaseModel):
    """A result: built in Python by field name, serialized as camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )


@lru_cache(maxsize=4096)
def _iso_utc(value: datetime) -> str:
    # Kept: a result repeats its timestamps (a curriculum's lessons made in one call), and callers
    # read the same rows again; this runs for every timestamp of every answer.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


UtcDatetime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str, when_used="json")]
"""A timestamp that leaves as ISO 8601 UTC with milliseconds: `2026-03-16T10:00:00.000Z`."""


def format_utc(value: datetime) -> str:
    """`value` as a `UtcDatetime` leaves in JSON, for a timestamp written into a text."""
    return _iso_utc(value)


class SecretResult(OutputModel):
    """The answer of a create that shows a secret once (a field marked `tools.core.fields.Secret`)
    and takes an idempotency key: its replay shows null instead, and says so here
    (`tools.core.shown_once`)."""

    NOTE: ClassVar[str] = "secretNote"
    secret_note: str | None = Field(
        default=None,
        description="Only in a replay under an idempotency key: the secret (null) was shown only in the first answer, at the time it names.",
    )


def _ipv6_pattern() -> str:
    """RFC 3986's IPv6address, the text `ipaddress` reads (no zone id)."""
    h16, octet = "[0-9A-Fa-f]{1,4}", "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ls32 = f"(?:{h16}:{h16}|{octet}(?:\\.{octet}){{3}})"
    forms = [f"(?:{h16}:){{6}}{ls32}", f"::(?:{h16}:){{5}}{ls32}"]
    for before, after in (
        (0, f"(?:{h16}:){{4}}{ls32}"),
        (1, f"(?:{h16}:){{3}}{ls32}"),
        (2, f"(?:{h16}:){{2}}{ls32}"),
        (3, f"{h16}:{ls32}"),
        (4, ls32),
        (5, h16),
        (6, ""),
    ):
        forms.append(f"(?:(?:{h16}:){{0,{before}}}{h16})?::{after}")
    return "(?:" + "|".join(forms) + ")"


_VISIBLE = whitespace_class(negated=True)
_NO_HOST_END = whitespace_class(negated=True, also="/?#@:[]")
WEB_URL_PATTERN = (
    "^[Hh][Tt][Tt][Pp][Ss]?://"  # the scheme, in any case
    f"(?:{whitespace_class(negated=True, also='/?#@')}*@)?"  # user information
    f"(?:{_NO_HOST_END}+|\\[{_ipv6_pattern()}\\])"  # the host: a name, an IPv4 address, or an IPv6 one in brackets
    "(?::[0-9]*)?"  # the port
    f"(?:[/?#]{_VISIBLE}*)?$"  # path, query and fragment
)
"""An absolute http(s) URL with a host and no whitespace. The one rule: the validator matches it
and the OpenAPI document publishes it as the `pattern` (ECMA-262 reads it as Python does)."""
_WEB_URL = re.compile(WEB_URL_PATTERN)


def _check_web_url(value: str) -> str:
    if _WEB_URL.fullmatch(value) is None:
        if "\x00" in value:  # the pattern leaves NUL out too: say so, as for any other text
            raise ValueError("must not contain NUL (\\u0000) characters")
        if any(character in WHITESPACE for character in value):
            raise ValueError("must not contain whitespace")
        raise ValueError("must be an http(s) URL with a host")
    return value


WebUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH),
    AfterValidator(_check_web_url),
    # No `format: uri`: that is RFC 3986, ASCII only, and the API takes internationalized URLs
    # (`https://bücher.example/straße`) as browsers do; the pattern is the whole rule.
    RestSchema(pattern=WEB_URL_PATTERN),
]
"""An absolute http(s) URL."""


UPDATED_AFTER = "Only rows created or changed after this time, oldest change first (incremental sync)."


class PageQuery(InputModel):
    """`page` and `limit` of every list operation, and `updatedAfter`, which turns a list into an
    incremental sync: only rows created or changed after the time, oldest change first."""

    page: int = Field(default=1, ge=1, le=1_000_000, description="Page number, from 1.")
    limit: int = Field(default=20, ge=1, le=100, description="Results per page, 1-100.")
    updated_after: IsoDatetime | None = Field(default=None, description=UPDATED_AFTER)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class Pagination(OutputModel):
    page: int
    limit: int
    total: int
    total_pages: int
    has_more: bool


ItemT = TypeVar("ItemT")


class Page(OutputModel, Generic[ItemT]):
    """A page of a list: `{"data": [...], "pagination": {...}}`."""

    data: list[ItemT]
    pagination: Pagination


class Deleted(OutputModel):
    """The answer of every delete."""

    deleted: Literal[True] = True
    id: str
