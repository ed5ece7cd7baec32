"""Partial updates, one way for every update operation.

The input model says what each field may do, so validation and the JSON schema say it too:

    class UpdateCourseInput(CourseRef):
        title: Title = unchanged()                                                  # never null
        description: Description | None = Field(default=None, description="null clears it.")

- a field the caller leaves out leaves the row's value as it is;
- `X | None`: null clears the value (stores NULL); the schema offers null;
- `X = unchanged()`: null is refused by validation, a bad_request naming the field
  (`title: must not be null`); the schema does not offer null.

The operation then takes `given_changes(data, target=...)` and hands them to its domain's storage
function, which writes them (`storage.courses.update_course`, ...).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.core.models import InputModel

__all__ = ["given_changes", "unchanged"]


def _no_default(schema: dict[str, Any]) -> None:
    # The default only stands for "absent" (see `unchanged`); published, it would say null is allowed.
    schema.pop("default", None)


def unchanged(**field: Any) -> Any:
    """The default of an update field that cannot be cleared, with `Field` arguments (description,
    limits): absent leaves the value unchanged. Pydantic does not validate defaults, so None marks
    "absent" while an explicit null still fails validation."""
    return Field(default=None, json_schema_extra=_no_default, **field)


def given_changes(data: InputModel, *, target: type[InputModel]) -> dict[str, Any]:
    """The fields an update's caller gave, by attribute name, minus those of `target` (the
    model whose fields name the row to update). Each value is one to store: validation has
    already refused null wherever it may not clear."""
    return {name: getattr(data, name) for name in data.model_fields_set - target.model_fields.keys()}
