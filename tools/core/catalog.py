"""The `Operation` declaration and the decorator that makes one from a handler.

An operation is declared once, next to its handler:

    @operation(title="Register student", permission=Permission.STUDENTS_WRITE, http=("POST", "/students", 201), kind="write")
    async def register_student(ctx: OperationContext, data: RegisterStudentInput) -> StudentResult:
        '''The description an LLM reads: what it does, when to use it, what it returns, side effects.'''

The handler's annotations give the typed input and output models; its docstring is the
description. MCP tools and REST routes are both generated from these declarations.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from tools.core.context import OperationContext, PrincipalKind
from tools.core.errors import BlohkoError, Unprocessable
from tools.core.events import EVENT_TYPES
from tools.core.permissions import (  # the one decision, re-exported here
    AllOf,
    AnyOf,
    Permission,
    Requirement,
    may_call,
)
from tools.core.shown_once import check_replayable

__all__ = [
    "InputRule",
    "Operation",
    "Transport",
    "may_call",
    "operation",
    "path_params",
    "publish",
    "published",
]

Handler = Callable[[OperationContext, Any], Awaitable[BaseModel]]

Transport = Literal["mcp", "rest", "cli", "dashboard"]

_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class InputRule:
    """A rule on an operation's arguments that JSON Schema cannot state (an order between two
    dates, an id that must exist, a host that must resolve to public addresses, a parser's), and
    the error that answers a request breaking it: `Unprocessable` (422) unless a more telling
    one fits (`NotFound` for an id that names nothing). The OpenAPI document states each in the
    operation's description and lists its status; everything JSON Schema can state is in the
    schema instead, answered 400."""

    text: str
    error: type[BlohkoError] = Unprocessable


def path_params(path: str) -> tuple[str, ...]:
    """The parameter names of a route path, in order: `/courses/{courseId}/sections` -> `("courseId",)`."""
    return tuple(_PATH_PARAM.findall(path))


class _LeanJsonSchema(GenerateJsonSchema):
    """JSON schema without the `title` pydantic puts on every model and property.

    Titles repeat the property names and cost an agent context on every `tools/list`.
    """

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def generate(self, schema, mode="validation"):
        result = super().generate(schema, mode=mode)
        result.pop("title", None)
        for definition in result.get("$defs", {}).values():
            definition.pop("title", None)
        return result

    def model_schema(self, schema):
        result = super().model_schema(schema)
        result.pop("title", None)
        return result


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    description: str
    permission: Requirement | None
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    read_only: bool
    destructive: bool
    idempotent: bool
    http_method: str | None
    http_path: str | None
    http_status: int = 200
    open_world: bool = False
    auth: frozenset[PrincipalKind] = frozenset({"api_key"})
    events: tuple[str, ...] = ()
    """Event types its result announces (`tools.core.events`), written with its transaction."""
    """Which callers may run it: API keys (the default), producer sessions, the operator, nobody yet."""
    transports: frozenset[Transport] = frozenset({"mcp", "rest"})
    """Where it is served: MCP tools, REST routes, CLI commands, the Producer Dashboard's pages."""
    audited_read: bool = False
    """A read the audit log records all the same, in one transaction with the read: the export of
    a student's data, which a school must be able to account for (GDPR article 15)."""
    own_transactions: bool = False
    """The handler takes its own transactions (`tools.core.internal.reading` and `writing` on
    `ctx.store`, under the runner's transaction and error rules) instead of running in one, and
    audits itself: sign-in and the password change, which hash a password between two."""
    session_cookie: Literal["set", "clear"] | None = None
    """Over REST: set the session cookie from the result's session token, or clear it."""
    input_rules: tuple[InputRule, ...] = ()
    """Rules on its arguments that a JSON schema cannot state, each with the error that answers
    it. The OpenAPI document states them; the MCP tool's description already says what an agent needs."""
    http_also: tuple[tuple[str, str], ...] = ()
    """More REST paths for the same method, as (path, operationId): a read whose MCP tool may leave
    out an id that its main path holds (threads of all communities: `/threads`)."""

    def __post_init__(self) -> None:
        if self.takes_idempotency_key:  # its answer is kept for a replay: never with a secret in it
            check_replayable(self.name, self.output_model)

    @property
    def path_params(self) -> tuple[str, ...]:
        return path_params(self.http_path or "")

    @property
    def audited(self) -> bool:
        """Its calls are in the audit log: every write, and a read marked `audited_read`."""
        return not self.read_only or self.audited_read

    @property
    def creates(self) -> bool:
        """It makes a resource: its REST answer is 201 Created."""
        return self.http_status == 201

    @property
    def takes_idempotency_key(self) -> bool:
        """A create that an API key may call: a retry under the same idempotency key gets the first
        result back instead of a second resource (`tools.core.runner`). Agents and scripts retry
        blindly after a timeout; a person at the dashboard or the CLI does not. The one create only
        they call, a new API key, must not take one either: its result is the key itself, shown once
        and stored only hashed, which an idempotency record would keep readable for a day."""
        return self.creates and "api_key" in self.auth

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema(by_alias=True, schema_generator=_LeanJsonSchema)

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema(
            by_alias=True, mode="serialization", schema_generator=_LeanJsonSchema
        )


# The MCP hints each kind of operation implies: (readOnlyHint, destructiveHint, idempotentHint).
# An operation states its kind; only an exception to its kind's idempotence is written out.
KINDS: dict[str, tuple[bool, bool, bool]] = {
    "read": (True, False, True),
    "write": (False, False, False),
    "delete": (False, True, True),
}


def operation(
    *,
    title: str,
    permission: Requirement | None,
    http: tuple[str, str] | tuple[str, str, int] | None,
    kind: Literal["read", "write", "delete"],
    idempotent: bool | None = None,
    name: str | None = None,
    auth: Iterable[PrincipalKind] = ("api_key",),
    transports: Iterable[Transport] = ("mcp", "rest"),
    own_transactions: bool = False,
    audited_read: bool = False,
    session_cookie: Literal["set", "clear"] | None = None,
    events: Iterable[str] = (),
    http_also: Iterable[tuple[str, str]] = (),
    input_rules: Iterable[InputRule | str] = (),
) -> Callable[[Handler], Operation]:
    """Declare the decorated handler as an operation of `kind`: "read" (read-only, idempotent),
    "write" (not idempotent unless `idempotent=True`: an update) or "delete" (destructive,
    idempotent unless `idempotent=False`). `permission` is a `Permission` member, an `AllOf` or
    `AnyOf` of them (`tools.core.permissions`), or None for any caller `auth` admits. `http` is the REST route, needed when served over REST. `input_rules`
    are `InputRule`s; a plain sentence is one answered `Unprocessable`."""
    if permission is not None and not isinstance(permission, Permission | AllOf | AnyOf):
        raise TypeError(
            f"{title}: permission must be a Permission member such as Permission.COURSES_READ, not {permission!r}"
        )
    transports = frozenset(transports)
    if ("rest" in transports) != (http is not None):
        raise TypeError(f"{title}: an operation served over REST names its route, and only then")
    if "mcp" in transports and "api_key" not in set(auth):
        raise TypeError(f"{title}: MCP tools are called with an API key, so an MCP tool must admit one")
    read_only, destructive, kind_idempotent = KINDS[kind]
    if audited_read and not read_only:
        raise TypeError(f"{title}: every write is audited; audited_read marks a read")
    events = tuple(events)
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown or (events and read_only):
        raise TypeError(
            f"{title}: only a write announces events, of the types in tools.core.events: not {unknown or events}"
        )

    def declare(handler: Handler) -> Operation:
        hints = get_type_hints(handler)
        parameters = list(inspect.signature(handler).parameters)
        if len(parameters) != 2:
            raise TypeError(f"{handler.__name__}: a handler takes (ctx, data)")
        description = inspect.cleandoc(handler.__doc__ or "")
        method, path, *status = http or (None, None)
        return Operation(
            name=name or handler.__name__,
            title=title,
            description=description,
            permission=permission,
            input_model=hints[parameters[1]],
            output_model=hints["return"],
            handler=handler,
            read_only=read_only,
            destructive=destructive,
            idempotent=kind_idempotent if idempotent is None else idempotent,
            http_method=method,
            http_path=path,
            http_status=status[0] if status else 200,
            auth=frozenset(auth),
            transports=transports,
            own_transactions=own_transactions,
            audited_read=audited_read,
            session_cookie=session_cookie,
            events=events,
            http_also=tuple(http_also),
            input_rules=tuple(
                rule if isinstance(rule, InputRule) else InputRule(rule) for rule in input_rules
            ),
        )

    return declare


_published: tuple[Operation, ...] = ()


def publish(operations: Iterable[Operation]) -> None:
    """Make `operations` the catalog (`tools.registry` does, once, when imported)."""
    global _published
    _published = tuple(operations)


def published() -> tuple[Operation, ...]:
    """The catalog's operations, for the few operations that describe the catalog itself (whoami):
    they read it here, so no domain module imports the registry that imports it."""
    return _published
