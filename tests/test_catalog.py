"""The catalog itself: every operation fully declared, permissions exactly as DESIGN.md's table."""

import re

import pytest
from pydantic import BaseModel

from tools.core.permissions import VALID_GRANTS
from tools.registry import ALL_OPERATIONS, OPERATIONS_BY_NAME, TOOLS

# DESIGN.md's permission table, as data. Operations not built yet are simply absent from the catalog.
DESIGN_PERMISSIONS = {
    "courses:read": "list_categories list_courses get_course list_sections list_lessons get_lesson",
    "courses:write": "create_course update_course delete_course publish_course unpublish_course create_section "
    "update_section delete_section create_lesson update_lesson delete_lesson",
    "students:read": "list_students get_student",
    "students:write": "register_student update_student",
    "enrollments:read": "list_enrollments get_enrollment list_certificates list_achievements",
    "enrollments:write": "enroll_student enroll_students update_progress delete_enrollment",
    "communities:read": "list_communities get_community list_threads get_thread list_comments list_members list_media",
    "communities:write": "create_community update_community delete_community create_thread update_thread "
    "delete_thread create_comment update_comment delete_comment add_member remove_member add_media",
    # Not in DESIGN.md's table: issue 9 adds the audit log behind its own read-only permission.
    "audit:read": "list_audit_events",
    # Issue 17: the event feed, behind its own read-only permission.
    "events:read": "list_events",
    "webhooks:read": "list_webhooks",
    "webhooks:write": "create_webhook update_webhook delete_webhook",
    None: "parse_video whoami",
}
REQUIRED_PERMISSION = {name: perm for perm, names in DESIGN_PERMISSIONS.items() for name in names.split()}


@pytest.mark.parametrize("op", ALL_OPERATIONS, ids=lambda op: op.name)
def test_operation_is_fully_declared(op):
    assert re.fullmatch(r"[a-z][a-z0-9_]*", op.name)
    assert op.title and len(op.title) <= 40
    assert op.description and len(op.description) >= 30
    assert issubclass(op.input_model, BaseModel) and issubclass(op.output_model, BaseModel)
    for hint in (op.read_only, op.destructive, op.idempotent, op.open_world):
        assert isinstance(hint, bool)
    assert op.open_world is False
    assert not (op.read_only and op.destructive)
    assert ("rest" in op.transports) is (op.http_method in {"GET", "POST", "PATCH", "DELETE"})
    assert op.http_path is None or op.http_path.startswith("/")
    assert op.input_schema["type"] == "object" and op.output_schema["type"] == "object"


@pytest.mark.parametrize("op", TOOLS, ids=lambda op: op.name)
def test_operation_requires_the_permission_design_names(op):
    assert op.name in REQUIRED_PERMISSION, f"{op.name} is not in DESIGN.md's permission table"
    assert op.permission == REQUIRED_PERMISSION[op.name]
    assert op.permission is None or op.permission in VALID_GRANTS


def test_reads_are_get_and_read_only():
    for op in ALL_OPERATIONS:
        if op.http_method == "GET":
            assert op.read_only, op.name


def test_operation_names_and_routes_are_unique():
    assert len(OPERATIONS_BY_NAME) == len(ALL_OPERATIONS)
    routes = [(op.http_method, op.http_path) for op in ALL_OPERATIONS if op.http_path]
    assert len(set(routes)) == len(routes)


def _schema_titles(schema, path="$"):
    """Paths of every `title` keyword in a JSON schema (a property *named* title is not one)."""
    found = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                found.append(path)
            elif key == "properties" and isinstance(value, dict):
                found += [p for name, sub in value.items() for p in _schema_titles(sub, f"{path}.{name}")]
            else:
                found += _schema_titles(value, f"{path}.{key}")
    elif isinstance(schema, list):
        found += [p for item in schema for p in _schema_titles(item, path)]
    return found


@pytest.mark.parametrize("op", ALL_OPERATIONS, ids=lambda op: op.name)
def test_schemas_carry_no_title_noise(op):
    assert _schema_titles(op.input_schema) == []
    assert _schema_titles(op.output_schema) == []


def _import_declaration(tmp_path, monkeypatch, permission: str):
    import importlib
    import textwrap

    source = f"""
        from tools.core.catalog import operation
        from tools.core.permissions import Permission
        from tools.core.models import NoInput
        from tools.domains.system import WhoamiResult

        @operation(title="Misspelt", permission={permission}, http=("GET", "/misspelt"), kind="read")
        async def misspelt(ctx, data: NoInput) -> WhoamiResult: ...
    """
    (tmp_path / "declares_an_operation.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module("declares_an_operation")


def test_a_misspelt_permission_fails_when_its_module_is_imported(tmp_path, monkeypatch):
    with pytest.raises(AttributeError, match="COURSES_REED"):
        _import_declaration(tmp_path, monkeypatch, "Permission.COURSES_REED")


def test_a_permission_written_as_a_string_fails_when_its_module_is_imported(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="must be a Permission member"):
        _import_declaration(tmp_path, monkeypatch, '"courses:read"')


# DESIGN.md's "Ways in" table, as data: who calls the operations no API key may call, and where.
DOORS = {
    "login": ({"anonymous"}, {"rest", "dashboard"}),
    "logout": ({"session"}, {"rest", "dashboard"}),
    "create_api_key": ({"session", "operator"}, {"rest", "cli", "dashboard"}),
    "list_api_keys": ({"session", "operator"}, {"rest", "cli", "dashboard"}),
    "revoke_api_key": ({"session", "operator"}, {"rest", "cli", "dashboard"}),
    "get_school_overview": ({"session"}, {"dashboard"}),
    "change_password": ({"session"}, {"dashboard"}),
    "create_producer": ({"operator"}, {"cli"}),
    "find_producer": ({"operator"}, {"cli"}),
    "list_producers": ({"operator"}, {"cli"}),
    # OAuth's consent page and connected apps (issue 16), after DESIGN.md's table: the owner, signed in.
    "review_app_authorization": ({"session"}, {"dashboard"}),
    "answer_app_authorization": ({"session"}, {"dashboard"}),
    "list_connected_apps": ({"session"}, {"dashboard"}),
    "disconnect_app": ({"session"}, {"dashboard"}),
    # Issue 17: the owner's side of webhooks (the secret, test events, the delivery log).
    "rotate_webhook_secret": ({"session"}, {"rest", "dashboard"}),
    "send_test_webhook": ({"session"}, {"rest", "dashboard"}),
    "list_webhook_deliveries": ({"session"}, {"rest", "dashboard"}),
}


@pytest.mark.parametrize("op", [op for op in ALL_OPERATIONS if op not in TOOLS], ids=lambda op: op.name)
def test_operations_beyond_the_tools_are_served_where_design_says_to_whom_it_says(op):
    assert (op.auth, op.transports) == DOORS[op.name]
    assert op.permission is None  # who may call them is their `auth`


def test_an_mcp_tool_must_admit_an_api_key():
    from tools.core.catalog import operation

    with pytest.raises(TypeError, match="must admit one"):
        operation(title="Session only", permission=None, http=("GET", "/x"), kind="read", auth=("session",), transports=("mcp", "rest"))
    declared = operation(title="Both", permission=None, http=("GET", "/x"), kind="read", auth=("api_key", "session"))
    assert callable(declared)


def test_only_a_read_runs_without_a_session_and_the_fast_reads_are_the_hot_ones():
    from tools.core.catalog import operation

    with pytest.raises(TypeError, match="only a read reads through the fast reader alone"):
        operation(title="Fast write", permission=None, http=("POST", "/x"), kind="write", fast_read=True)
    # Each reads in one statement on `storage.fast` (tests/test_statement_counts.py counts them).
    assert {op.name for op in ALL_OPERATIONS if op.fast_read} == {"whoami", "get_student", "get_course"}
