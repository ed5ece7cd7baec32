"""Wire models shared by every domain: camelCase JSON, UTC timestamps, pagination, URLs.

Python attributes are snake_case; the JSON (MCP and REST alike) is camelCase.
Input models accept only the documented camelCase names and refuse unknown fields;
output models serialize by alias.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

from tools.core.fields import IsoDatetime

__all__ = [
    "NoInput",
    "Deleted",
    "InputModel",
    "OutputModel",
    "Page",
    "PageQuery",
    "Pagination",
    "UPDATED_AFTER",
    "UtcDatetime",
    "WebUrl",
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


def _iso_utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


UtcDatetime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str, when_used="json")]
"""A timestamp that leaves as ISO 8601 UTC with milliseconds: `2026-03-16T10:00:00.000Z`."""


def _check_web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    return value


WebUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(_check_web_url)]
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
