"""The permission model (`tools.core.permissions`): which grants exist, what a grant allows, and
the one decision `may_call`. The catalog-wide consequences (every key lists exactly what it may
call) are `tests/tools/test_generated_matrices.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tools.core.permissions import (
    RESOURCE_ACTIONS,
    VALID_GRANTS,
    AllOf,
    AnyOf,
    Permission,
    Requirement,
    allows,
    may_call,
    missing,
    normalize_grants,
    requirement_from_json,
    requirement_json,
)
from tools.core.principal import ANONYMOUS, OPERATOR, Principal


@dataclass(frozen=True)
class _Tool:
    permission: Requirement | None
    auth: tuple[str, ...] = ("api_key",)


def _key(*grants: str) -> Principal:
    return Principal(producer_id="prod_a", key_id="key_a", key_name="a", grants=grants)


def test_every_resource_action_is_a_permission_and_a_grant():
    for resource, actions in RESOURCE_ACTIONS.items():
        assert f"{resource}:*" in VALID_GRANTS
        for action in actions:
            assert getattr(Permission, f"{resource}_{action}".upper()) == f"{resource}:{action}"
            assert f"{resource}:{action}" in VALID_GRANTS
    assert "*" in VALID_GRANTS
    assert "audit:write" not in VALID_GRANTS  # the audit log is read-only


@pytest.mark.parametrize(
    ("grants", "required", "allowed"),
    [
        (["*"], "courses:write", True),
        (["courses:*"], "courses:write", True),
        (["courses:*"], "students:read", False),
        (["courses:read"], "courses:read", True),
        (["courses:read"], "courses:write", False),  # a write needs more than read
        ([], "courses:read", False),
        ([], None, True),  # no permission: any valid key
    ],
)
def test_a_grant_allows_its_permission_its_resource_wildcard_or_everything(grants, required, allowed):
    assert allows(grants, required) is allowed


def test_normalize_grants_keeps_order_drops_duplicates_and_names_an_unknown_grant():
    assert normalize_grants(["students:read", "*", "students:read"]) == ["students:read", "*"]
    with pytest.raises(ValueError, match="unknown permission 'course:read'"):
        normalize_grants(["courses:read", "course:read"])


def test_may_call_needs_both_an_admitted_kind_of_caller_and_the_permission():
    reader = _key("courses:read")
    assert may_call(reader, _Tool(Permission.COURSES_READ))
    assert not may_call(reader, _Tool(Permission.COURSES_WRITE))
    assert not may_call(reader, _Tool(Permission.COURSES_READ, auth=("session",)))
    assert may_call(OPERATOR, _Tool(Permission.COURSES_WRITE, auth=("operator",)))
    assert not may_call(OPERATOR, _Tool(Permission.COURSES_WRITE))  # the operator is not an API key
    assert not may_call(ANONYMOUS, _Tool(None))
    assert may_call(ANONYMOUS, _Tool(None, auth=("anonymous",)))


COURSE_INSIGHTS = _Tool(AllOf(Permission.COURSES_READ, Permission.ENROLLMENTS_READ))
SCHOOL_REPORT = _Tool(
    AnyOf(Permission.STUDENTS_READ, Permission.ENROLLMENTS_READ, Permission.COMMUNITIES_READ)
)


@pytest.mark.parametrize(
    ("grants", "allowed", "lacking"),
    [
        (["courses:read"], False, "the enrollments:read permission"),
        (["enrollments:*"], False, "the courses:read permission"),
        (["students:read"], False, "the courses:read and enrollments:read permissions"),
        (["courses:read", "enrollments:read"], True, None),
        (["courses:*", "enrollments:read"], True, None),
        (["*"], True, None),
    ],
)
def test_all_of_needs_every_permission_and_names_the_missing_ones(grants, allowed, lacking):
    assert may_call(_key(*grants), COURSE_INSIGHTS) is allowed
    assert missing(grants, COURSE_INSIGHTS.permission) == lacking


@pytest.mark.parametrize(
    ("grants", "allowed"),
    [
        (["communities:read"], True),
        (["students:*"], True),
        (["*"], True),
        (["courses:read", "webhooks:read"], False),  # reads, but of no part of the report
        (["enrollments:write"], False),  # a write grant is not a read
        ([], False),
    ],
)
def test_any_of_needs_one_of_its_permissions(grants, allowed):
    assert may_call(_key(*grants), SCHOOL_REPORT) is allowed
    if not allowed:
        assert missing(grants, SCHOOL_REPORT.permission) == (
            "one of the students:read, enrollments:read, communities:read permissions"
        )


def test_a_single_permission_is_missing_by_its_name():
    assert missing(["courses:read"], Permission.COURSES_WRITE) == "the courses:write permission"
    assert missing([], None) is None


@pytest.mark.parametrize(
    "required",
    [None, Permission.COURSES_READ, COURSE_INSIGHTS.permission, SCHOOL_REPORT.permission],
)
def test_a_requirement_survives_the_published_list_and_its_wire_form_is_plain_json(required):
    wire = requirement_json(required)
    assert requirement_from_json(json.loads(json.dumps(wire))) == required
    assert wire == (str(required) if isinstance(required, Permission) else wire)


def test_all_of_and_any_of_take_two_or_more_permission_members():
    with pytest.raises(TypeError):
        AllOf(Permission.COURSES_READ)
    with pytest.raises(TypeError):
        AnyOf("courses:read", "students:read")  # type: ignore[arg-type]
