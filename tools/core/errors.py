"""Domain errors. Every failure an operation reports is one of these; anything else is a bug.

    BlohkoError                 code             HTTP
     ├── BadRequest             bad_request      400   (names the offending fields)
     │    └── Unprocessable     unprocessable    422   (well-formed, refused by a rule the operation's
     │                                                  description states and JSON Schema cannot)
     ├── Unauthorized           unauthorized     401
     ├── Forbidden              forbidden        403
     │    └── NotPermitted                        (the caller may not call the operation at all)
     ├── NotFound               not_found        404
     ├── Conflict               conflict         409
     ├── RateLimited            rate_limited     429   (with retryAfter, in seconds)
     ├── Busy                   busy             503   (with retryAfter: nothing was written)
     └── InternalError          internal_error   500   (never carries internals)

Transports render any of them as `{"error": code, "message": message}`: REST as the
response body with `status`, MCP as a tool result with `isError: true`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "BadRequest",
    "BlohkoError",
    "Busy",
    "Conflict",
    "Forbidden",
    "InternalError",
    "NotFound",
    "NotPermitted",
    "RateLimited",
    "Unauthorized",
    "Unprocessable",
    "bad_request_from_validation",
]


class BlohkoError(Exception):
    code = "internal_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class BadRequest(BlohkoError):
    code = "bad_request"
    status = 400


class Unprocessable(BadRequest):
    """Input its schema allows, refused by a rule the schema cannot state (an order between two
    dates, a host that must resolve to public addresses, a parser's): the operation's description
    states the rule. A kind of `BadRequest`: whoever handles bad input handles it too."""

    code = "unprocessable"
    status = 422


class Unauthorized(BlohkoError):
    code = "unauthorized"
    status = 401


class Forbidden(BlohkoError):
    code = "forbidden"
    status = 403


class NotPermitted(Forbidden):
    """The caller may not call this operation at all (its permission or kind of caller): MCP
    answers it exactly like an unknown tool, unlike a rule of the domain that forbids one call."""


class NotFound(BlohkoError):
    code = "not_found"
    status = 404


class Conflict(BlohkoError):
    code = "conflict"
    status = 409


class _RetryLater(BlohkoError):
    """An error the same request may retry after `retry_after` seconds (REST: `Retry-After`)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "retryAfter": self.retry_after}


class RateLimited(_RetryLater):
    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: int, *, message: str | None = None) -> None:
        text = message or f"Rate limit exceeded for this API key; retry in {retry_after} seconds"
        super().__init__(text, retry_after=retry_after)


class Busy(_RetryLater):
    code = "busy"
    status = 503

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"The store is busy with other writes; nothing was changed. Retry in {retry_after} seconds",
            retry_after=retry_after,
        )


class InternalError(BlohkoError):
    code = "internal_error"
    status = 500

    def __init__(self, message: str = "An internal error occurred; it has been logged.") -> None:
        super().__init__(message)


def _field_path(location: Iterable[Any]) -> str:
    """`('sections', 1, 'lessons', 0, 'videoUrl')` -> `sections[1].lessons[0].videoUrl`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(body)"


def _describe(error: ErrorDetails) -> str:
    if error["type"] != "missing" and error.get("input", ...) is None:
        # A field whose type does not allow null, such as an update's field that cannot be
        # cleared: "Input should be a valid string" would not say that null is the problem.
        return "must not be null"
    message = str(error["msg"])
    # pydantic prefixes errors raised inside validators; the prefix means nothing to a caller.
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return message


def bad_request_from_validation(exc: ValidationError) -> BadRequest:
    """One `bad_request` naming every offending field by its path, in the caller's (camelCase) names."""
    problems = []
    for error in exc.errors(include_url=False, include_input=True):
        # Union members and `function-after` validators add their own names to the path.
        location = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
        problems.append(f"{_field_path(location)}: {_describe(error)}")
    return BadRequest("Invalid input: " + "; ".join(problems))
