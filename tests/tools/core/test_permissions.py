"""The permission model (`tools.core.permissions`): which grants exist, what a grant allows, and
the one decision `may_call`. The catalog-wide consequences (every key lists exactly what it may
call) are `tests/tools/test_generated_matrices.py`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tools.core.permissions import (
    RESOURCE_ACTIONS,
    VALID_GRANTS,
    Permission,
    allows,
    may_call,
    normalize_grants,
)
from tools.core.principal import ANONYMOUS, OPERATOR, Principal


@dataclass(frozen=True)
class _Tool:
    permission: str | None
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
    assert may_call(reader, _Tool("courses:read"))
    assert not may_call(reader, _Tool("courses:write"))
    assert not may_call(reader, _Tool("courses:read", auth=("session",)))
    assert may_call(OPERATOR, _Tool("courses:write", auth=("operator",)))
    assert not may_call(OPERATOR, _Tool("courses:write"))  # the operator is not an API key
    assert not may_call(ANONYMOUS, _Tool(None))
    assert may_call(ANONYMOUS, _Tool(None, auth=("anonymous",)))
