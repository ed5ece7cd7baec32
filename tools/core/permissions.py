"""The permission model, as data: resources, actions, and what a key's grants allow.

A key holds grants such as `*`, `courses:*`, `students:read`. Every operation requires a
`Requirement` or none (`parse_video`, `whoami`: any valid key): one permission
(`<resource>:read` or `<resource>:write`), `AllOf` several (each must be granted), or `AnyOf`
several (one is enough: a report whose parts each need their own, answering only the parts the
key may read). `may_call` is the single decision used for listing tools, calling them, and REST
alike; `missing` says what a refused key lacks.

Operations name their permission by a `Permission` member (`Permission.COURSES_READ`): a
misspelt one is an AttributeError when its module is imported.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tools.core.principal import Principal

__all__ = [
    "RESOURCES",
    "RESOURCE_ACTIONS",
    "VALID_GRANTS",
    "AllOf",
    "AnyOf",
    "Guarded",
    "Permission",
    "Requirement",
    "allows",
    "may_call",
    "missing",
    "normalize_grants",
    "requirement_from_json",
    "requirement_json",
]


class Permission(StrEnum):
    """One member per permission an operation can require: `Permission.COURSES_READ == "courses:read"`.
    The audit log and the event feed are read-only: their records are written by the operations
    themselves."""

    COURSES_READ = "courses:read"
    COURSES_WRITE = "courses:write"
    STUDENTS_READ = "students:read"
    STUDENTS_WRITE = "students:write"
    ENROLLMENTS_READ = "enrollments:read"
    ENROLLMENTS_WRITE = "enrollments:write"
    COMMUNITIES_READ = "communities:read"
    COMMUNITIES_WRITE = "communities:write"
    AUDIT_READ = "audit:read"
    EVENTS_READ = "events:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"


def _resource_actions() -> dict[str, tuple[str, ...]]:
    actions: dict[str, tuple[str, ...]] = {}
    for permission in Permission:
        resource, action = permission.split(":")
        actions[resource] = (*actions.get(resource, ()), action)
    return actions


RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = _resource_actions()
"""Each resource and the actions it has, in `Permission`'s order."""
RESOURCES: tuple[str, ...] = tuple(RESOURCE_ACTIONS)


def _valid_grants() -> frozenset[str]:
    grants = {"*"}
    for resource, actions in RESOURCE_ACTIONS.items():
        grants.add(f"{resource}:*")
        grants.update(f"{resource}:{action}" for action in actions)
    return frozenset(grants)


VALID_GRANTS = _valid_grants()


def normalize_grants(grants: Iterable[str]) -> list[str]:
    """Validate grant strings, drop duplicates, keep order. Raises ValueError naming a bad one."""
    seen: list[str] = []
    for grant in grants:
        if grant not in VALID_GRANTS:
            allowed = ", ".join(sorted(VALID_GRANTS))
            raise ValueError(f"unknown permission {grant!r}; use one of: {allowed}")
        if grant not in seen:
            seen.append(grant)
    return seen


def allows(grants: Iterable[str], required: str | None) -> bool:
    """Whether `grants` include `required` (None: any valid key is enough)."""
    if required is None:
        return True
    resource = required.split(":", 1)[0]
    granted = set(grants)
    return "*" in granted or f"{resource}:*" in granted or required in granted


@dataclass(frozen=True)
class AllOf:
    """Every one of `permissions` (an answer joining two resources: a course's enrollments)."""

    permissions: tuple[Permission, ...]

    def __init__(self, *permissions: Permission) -> None:
        _check_members(self, permissions)
        object.__setattr__(self, "permissions", permissions)

    def __str__(self) -> str:
        return " and ".join(self.permissions)


@dataclass(frozen=True)
class AnyOf:
    """At least one of `permissions`: a report of parts, each needing its own permission, that
    answers only the parts the key may read and says which it left out."""

    permissions: tuple[Permission, ...]

    def __init__(self, *permissions: Permission) -> None:
        _check_members(self, permissions)
        object.__setattr__(self, "permissions", permissions)

    def __str__(self) -> str:
        return "one of " + ", ".join(self.permissions)


def _check_members(requirement: object, permissions: tuple[Permission, ...]) -> None:
    if len(permissions) < 2 or not all(isinstance(p, Permission) for p in permissions):
        raise TypeError(
            f"{type(requirement).__name__} takes two or more Permission members, not {permissions!r}"
        )


Requirement = Permission | AllOf | AnyOf
"""What an operation requires of a key's grants."""


def _grants_requirement(grants: Iterable[str], required: Requirement | None) -> bool:
    grants = tuple(grants)
    if isinstance(required, AllOf):
        return all(allows(grants, permission) for permission in required.permissions)
    if isinstance(required, AnyOf):
        return any(allows(grants, permission) for permission in required.permissions)
    return allows(grants, required)


def missing(grants: Iterable[str], required: Requirement | None) -> str | None:
    """What `grants` lack of `required`, as a refusal names it ("the enrollments:read permission",
    "one of the students:read, communities:read permissions"), or None when nothing is missing."""
    grants = tuple(grants)
    if required is None or _grants_requirement(grants, required):
        return None
    if isinstance(required, AnyOf):
        return f"one of the {', '.join(required.permissions)} permissions"
    needed = required.permissions if isinstance(required, AllOf) else (required,)
    lacking = [p for p in needed if not allows(grants, p)]
    return f"the {' and '.join(lacking)} permission{'s' if len(lacking) > 1 else ''}"


def requirement_json(required: Requirement | None) -> Any:
    """`required` as the published tool list and the OpenAPI document carry it: a permission's
    string, `{"allOf": [...]}` or `{"anyOf": [...]}`, or None."""
    if isinstance(required, AllOf):
        return {"allOf": [str(p) for p in required.permissions]}
    if isinstance(required, AnyOf):
        return {"anyOf": [str(p) for p in required.permissions]}
    return None if required is None else str(required)


def requirement_from_json(value: Any) -> Requirement | None:
    """The inverse of `requirement_json`."""
    if value is None:
        return None
    if isinstance(value, str):
        return Permission(value)
    if "allOf" in value:
        return AllOf(*(Permission(p) for p in value["allOf"]))
    return AnyOf(*(Permission(p) for p in value["anyOf"]))


class Guarded(Protocol):
    """What `may_call` needs of a tool: a catalog `Operation`, or a tool of the published list
    (`server.published_tools`) before the catalog is loaded."""

    @property
    def permission(self) -> Requirement | None: ...

    @property
    def auth(self) -> Collection[str]: ...


def may_call(principal: Principal, op: Guarded) -> bool:
    """The one decision: whether `principal` may see and call `op` (its kind of caller is admitted
    and its grants meet the operation's requirement). `run_operation` enforces it on every call;
    tool lists are filtered by it."""
    return principal.kind in op.auth and _grants_requirement(principal.grants, op.permission)
