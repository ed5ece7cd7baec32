"""The permission model, as data: resources, actions, and what a key's grants allow.

A key holds grants such as `*`, `courses:*`, `students:read`. Every operation
requires exactly one permission (`<resource>:read` or `<resource>:write`) or none
(`parse_video`, `whoami`: any valid key). `allows` is the single decision used for
listing tools, calling them, and REST alike.

Operations name their permission by a `Permission` member (`Permission.COURSES_READ`): a
misspelt one is an AttributeError when its module is imported.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tools.core.principal import Principal

__all__ = [
    "RESOURCES",
    "RESOURCE_ACTIONS",
    "VALID_GRANTS",
    "Guarded",
    "Permission",
    "allows",
    "may_call",
    "normalize_grants",
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


class Guarded(Protocol):
    """What `may_call` needs of a tool: a catalog `Operation`, or a tool of the published list
    (`server.published_tools`) before the catalog is loaded."""

    @property
    def permission(self) -> str | None: ...

    @property
    def auth(self) -> Collection[str]: ...


def may_call(principal: Principal, op: Guarded) -> bool:
    """The one decision: whether `principal` may see and call `op` (its kind of caller is admitted
    and its grants include the permission). `run_operation` enforces it on every call; tool lists
    are filtered by it."""
    return principal.kind in op.auth and allows(principal.grants, op.permission)
