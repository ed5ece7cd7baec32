"""The catalog itself: every operation fully declared, permissions exactly as docs/architecture.md's table."""

import re

import pytest
from pydantic import BaseModel

from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.fields import Secret
from tools.core.models import NoInput, OutputModel, SecretResult
from tools.core.permissions import VALID_GRANTS, AllOf, AnyOf, Permission
from tools.core.shown_once import held_models, shown_once_fields
from tools.registry import ALL_OPERATIONS, OPERATIONS_BY_NAME, TOOLS

# The permission table of docs/architecture.md, as data.
DESIGN_PERMISSIONS = {
    "courses:read": "list_categories list_courses get_course list_sections list_lessons get_lesson",
    "courses:write": "create_course update_course delete_course publish_course unpublish_course create_section "
    "update_section delete_section create_lesson update_lesson delete_lesson",
    "students:read": "list_students get_student export_student",
    "students:write": "register_student update_student erase_student",
    "enrollments:read": "list_enrollments get_enrollment list_certificates list_achievements "
    "find_students_needing_attention",
    "enrollments:write": "enroll_student enroll_students update_progress delete_enrollment",
    "communities:read": "list_communities get_community list_threads get_thread list_comments list_members list_media "
    "get_community_insights",
    "communities:write": "create_community update_community delete_community create_thread update_thread "
    "delete_thread create_comment update_comment delete_comment add_member remove_member add_media",
    # The audit log, behind its own read-only permission.
    "audit:read": "list_audit_events",
    # The event feed, behind its own read-only permission.
    "events:read": "list_events",
    "webhooks:read": "list_webhooks",
    "webhooks:write": "create_webhook update_webhook delete_webhook",
    None: "parse_video whoami",
}
REQUIRED_PERMISSION: dict[str, object] = {
    name: perm for perm, names in DESIGN_PERMISSIONS.items() for name in names.split()
}
# Insights that join resources: one needs both permissions, a report of parts any of its parts'.
REQUIRED_PERMISSION["get_course_insights"] = AllOf(Permission.COURSES_READ, Permission.ENROLLMENTS_READ)
REQUIRED_PERMISSION["get_school_report"] = AnyOf(
    Permission.STUDENTS_READ, Permission.ENROLLMENTS_READ, Permission.COMMUNITIES_READ
)


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
    assert op.name in REQUIRED_PERMISSION, f"{op.name} is not in the permission table"
    assert op.permission == REQUIRED_PERMISSION[op.name]
    needed = getattr(op.permission, "permissions", () if op.permission is None else (op.permission,))
    assert all(permission in VALID_GRANTS for permission in needed)


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


# The "Ways in" table of docs/architecture.md, as data: who calls the operations no API key may call, and where.
DOORS = {
    "login": ({"anonymous"}, {"rest", "dashboard"}),
    "logout": ({"session"}, {"rest", "dashboard"}),
    "create_api_key": ({"session", "operator"}, {"rest", "cli", "dashboard"}),
    "list_api_keys": ({"session", "operator"}, {"rest", "cli", "dashboard"}),
    "revoke_api_key": ({"session", "operator"}, {"rest", "cli", "dashboard"}),
    "get_school_overview": ({"session"}, {"dashboard"}),
    "name_audit_targets": ({"session"}, {"dashboard"}),
    "change_password": ({"session"}, {"dashboard"}),
    "create_producer": ({"operator"}, {"cli"}),
    "find_producer": ({"operator"}, {"cli"}),
    "list_producers": ({"operator"}, {"cli"}),
    # OAuth's consent page and connected apps: the owner, signed in.
    "review_app_authorization": ({"session"}, {"dashboard"}),
    "answer_app_authorization": ({"session"}, {"dashboard"}),
    "list_connected_apps": ({"session"}, {"dashboard"}),
    "disconnect_app": ({"session"}, {"dashboard"}),
    # The owner's side of webhooks (the secret, test events, the delivery log).
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
        operation(
            title="Session only",
            permission=None,
            http=("GET", "/x"),
            kind="read",
            auth=("session",),
            transports=("mcp", "rest"),
        )
    declared = operation(
        title="Both", permission=None, http=("GET", "/x"), kind="read", auth=("api_key", "session")
    )
    assert callable(declared)


# ---- integers that reach the database

SIGNED_64_BIT_MAX = 2**63 - 1
"""The most a signed 64-bit column (PostgreSQL BIGINT, SQLite INTEGER) holds."""


def _integer_schemas(schema: dict, root: dict, path: str = "") -> list[tuple[str, dict]]:
    """Every integer in `schema`, by its path, through `$ref`, `anyOf` and array items."""
    if "$ref" in schema:
        return _integer_schemas(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root, path)
    found = [(path, schema)] if schema.get("type") == "integer" else []
    for option in schema.get("anyOf", []):
        found += _integer_schemas(option, root, path)
    for name, member in schema.get("properties", {}).items():
        found += _integer_schemas(member, root, f"{path}.{name}".lstrip("."))
    if isinstance(schema.get("items"), dict):
        found += _integer_schemas(schema["items"], root, path + "[]")
    return found


@pytest.mark.parametrize("op", ALL_OPERATIONS, ids=lambda op: op.name)
def test_every_integer_argument_states_bounds_a_64_bit_column_holds(op):
    # An integer beyond them once reached the store and came back as an internal error (OverflowError);
    # the schema states the bounds, so MCP and REST refuse such a number as invalid input first.
    for path, integer in _integer_schemas(op.input_schema, op.input_schema):
        assert "minimum" in integer and "maximum" in integer, f"{op.name}.{path} states no bounds: {integer}"
        assert -SIGNED_64_BIT_MAX <= integer["minimum"] <= integer["maximum"] <= SIGNED_64_BIT_MAX, (
            f"{op.name}.{path}"
        )
    properties = op.input_schema.get("properties", {})
    if "page" in properties and "limit" in properties:  # the offset they make stays in range too
        assert properties["page"]["maximum"] * properties["limit"]["maximum"] <= SIGNED_64_BIT_MAX, op.name


# ---- credentials in answers: marked, so a kept answer keeps none

# Every field of an answer that carries a credential: a webhook's signing secret, an API key, a
# session token, a generated password, the redirect that carries a one-time authorization code.
CREDENTIAL_FIELDS = {
    "create_webhook": {"webhook.secret"},
    "rotate_webhook_secret": {"webhook.secret"},
    "create_api_key": {"apiKey.key"},
    "login": {"session.token"},
    "register_student": {"generatedPassword"},
    "create_producer": {"generatedPassword"},
    "answer_app_authorization": {"redirectTo"},
}
# A name that says it holds a credential: a new such field must be marked (and listed above).
_CREDENTIAL_NAME = re.compile(r"(?i)(secret|token|password|credential)$|^key$")


def _text_fields(
    model: type[BaseModel], path: tuple[str, ...] = (), seen: frozenset = frozenset()
) -> list[str]:
    """The wire paths of every text field of `model` and the models it holds."""
    found = []
    for name, field in model.model_fields.items():
        here = (*path, field.alias or name)
        if "str" in repr(field.annotation) or field.annotation is str:
            found.append(".".join(here).replace(".[]", "[]"))
        for step, inner in held_models(field.annotation):
            if inner not in seen:
                found += _text_fields(inner, (*here, *step), seen | {model})
    return found


@pytest.mark.parametrize("op", ALL_OPERATIONS, ids=lambda op: op.name)
def test_every_answer_field_that_carries_a_credential_is_marked_shown_once(op):
    marked = {field.wire_path for field in shown_once_fields(op.output_model)}
    assert marked == CREDENTIAL_FIELDS.get(op.name, set()), f"{op.name}: marked {marked}"
    named = {
        path for path in _text_fields(op.output_model) if _CREDENTIAL_NAME.search(path.rsplit(".", 1)[-1])
    }
    assert named <= marked, f"{op.name}: {named - marked} carry a credential by their name: mark them Secret"


def test_a_replayed_create_whose_answer_shows_a_secret_must_say_so_or_it_fails_when_declared():
    class Plain(OutputModel):
        token: Secret | None

    class NotNullable(SecretResult):
        token: Secret

    declare = operation(
        title="Make token", permission=Permission.COURSES_WRITE, http=("POST", "/tokens", 201), kind="write"
    )
    for answer, complaint in ((Plain, "must be a SecretResult"), (NotNullable, "answers null for token")):

        async def make_token(ctx: OperationContext, data: NoInput) -> answer:  # type: ignore[valid-type]  # a loop variable, read at run time
            """Make a token for the tests of the catalog's own rules."""

        with pytest.raises(TypeError, match=complaint):
            declare(make_token)
