"""The permission model, as data: resources, actions, and what a key's grants allow.

A key holds grants such as `*`, `courses:*`, `students:read`. Every operation
requires exactly one permission (`<resource>:read` or `<resource>:write`) or none
(`parse_video`, `whoami`: any valid key). `allows` is the single decision used for
listing tools, calling them, and REST alike.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ACTIONS", "RESOURCES", "VALID_GRANTS", "allows", "normalize_grants", "permission"]

RESOURCES: tuple[str, ...] = ("courses", "students", "enrollments", "communities")
ACTIONS: tuple[str, ...] = ("read", "write")


def permission(resource: str, action: str) -> str:
    if resource not in RESOURCES or action not in ACTIONS:
        raise ValueError(f"unknown permission {resource}:{action}")
    return f"{resource}:{action}"


def _valid_grants() -> frozenset[str]:
    grants = {"*"}
    for resource in RESOURCES:
        grants.add(f"{resource}:*")
        grants.update(f"{resource}:{action}" for action in ACTIONS)
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
