"""Partial updates (`tools.core.updates`): the input model says which fields null may clear; an
absent field is untouched; null where it may not clear is a bad_request naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import Field

from storage.queries import set_changes
from tools.core.errors import BadRequest
from tools.core.models import InputModel
from tools.core.runner import parse_arguments
from tools.core.updates import given_changes, unchanged
from tools.registry import OPERATIONS_BY_NAME


class _Ref(InputModel):
    thing_id: str


class _UpdateThing(_Ref):
    title: str = unchanged(max_length=10)
    note: str | None = Field(default=None, description="null clears it.")


def test_only_the_fields_given_are_changes_and_the_ones_naming_the_row_are_not():
    data = parse_arguments(_UpdateThing, {"thingId": "t1", "note": None})
    assert given_changes(data, target=_Ref) == {"note": None}


def test_null_for_a_field_that_cannot_be_cleared_is_a_bad_request_naming_it():
    with pytest.raises(BadRequest) as refused:
        parse_arguments(_UpdateThing, {"thingId": "t1", "title": None})
    assert refused.value.message == "Invalid input: title: must not be null"


def test_the_schema_offers_null_only_where_it_clears():
    properties = _UpdateThing.model_json_schema(by_alias=True)["properties"]
    assert properties["title"]["type"] == "string" and "anyOf" not in properties["title"]
    assert "default" not in properties["title"]  # a published `default: null` would offer null
    assert {"type": "null"} in properties["note"]["anyOf"]


def test_applying_changes_bumps_updated_at_only_when_something_changed():
    at = datetime(2026, 5, 1, tzinfo=UTC)
    row = SimpleNamespace(title="Old", updated_at=None)
    set_changes(row, {}, at=at)
    assert row.updated_at is None
    set_changes(row, {"title": "New"}, at=at)
    assert (row.title, row.updated_at) == ("New", at)


@pytest.mark.parametrize(
    "op", [op for op in OPERATIONS_BY_NAME.values() if op.http_method == "PATCH"], ids=lambda op: op.name
)
def test_every_update_field_that_accepts_null_says_what_null_does(op):
    for name, schema in op.input_schema["properties"].items():
        if {"type": "null"} in schema.get("anyOf", []):
            assert "null" in schema.get("description", ""), f"{op.name}.{name}"
