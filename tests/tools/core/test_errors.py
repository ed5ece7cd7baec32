"""Domain errors (`tools.core.errors`): each says its code and HTTP status, and a validation
failure becomes one bad_request naming every offending field by the caller's path."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.core.errors import (
    BadRequest,
    Busy,
    Conflict,
    Forbidden,
    InternalError,
    NotFound,
    NotPermitted,
    RateLimited,
    Unauthorized,
    Unprocessable,
    bad_request_from_validation,
)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (BadRequest("x"), "bad_request", 400),
        (Unprocessable("x"), "unprocessable", 422),
        (Unauthorized("x"), "unauthorized", 401),
        (Forbidden("x"), "forbidden", 403),
        (NotPermitted("x"), "forbidden", 403),
        (NotFound("x"), "not_found", 404),
        (Conflict("x"), "conflict", 409),
        (RateLimited(7), "rate_limited", 429),
        (Busy(2), "busy", 503),
        (InternalError(), "internal_error", 500),
    ],
)
def test_each_error_has_its_code_and_status(error, code, status):
    assert (error.code, error.status) == (code, status)
    assert error.to_body()["error"] == code


def test_an_error_to_retry_says_when_in_its_body():
    assert RateLimited(7).to_body() == {
        "error": "rate_limited",
        "message": "Rate limit exceeded for this API key; retry in 7 seconds",
        "retryAfter": 7,
    }
    assert Busy(2).to_body()["retryAfter"] == 2


class _Lesson(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lessons: list[_Lesson]


class _Course(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    sections: list[_Section]


def test_a_validation_failure_names_every_field_by_its_path():
    with pytest.raises(ValidationError) as failed:
        _Course.model_validate(
            {"title": None, "sections": [{"lessons": []}, {"lessons": [{"title": ""}]}], "color": "red"}
        )
    error = bad_request_from_validation(failed.value)
    assert isinstance(error, BadRequest)
    assert error.message.startswith("Invalid input: ")
    problems = error.message.removeprefix("Invalid input: ").split("; ")
    assert "title: must not be null" in problems
    assert any(problem.startswith("sections[1].lessons[0].title: ") for problem in problems)
    assert "color: unknown field" in problems
