"""One way in: every door (MCP, REST, CLI) is a transport over the operation catalog."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.routing import Route

from server.rest import API_PREFIX
from storage.errors import ConstraintViolation, Locked, StoreBusy
from storage.tables import AuditEvent
from tests.support.rest import bearer, rest_client, rest_route
from tools.core.errors import Busy, Conflict
from tools.core.internal import reading, writing
from tools.registry import ALL_OPERATIONS, TOOLS, served_over

ROOT = Path(__file__).resolve().parents[2]


async def test_every_api_route_but_the_openapi_document_is_an_operation_of_the_catalog(app):
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(API_PREFIX):
            assert route.methods is not None, f"{route.path}: a function endpoint's route has its methods"
            served |= {(method, route.path) for method in route.methods - {"HEAD"}}
    catalog = {
        (method, API_PREFIX + path)
        for op in served_over("rest")
        for method, main_path in [rest_route(op)]
        for path in (main_path, *dict(op.http_also))
    }
    assert served - {("GET", f"{API_PREFIX}/openapi.json")} == catalog


def test_the_mcp_tools_are_exactly_the_operations_an_api_key_may_call():
    assert {op.name for op in TOOLS} == {op.name for op in ALL_OPERATIONS if "api_key" in op.auth}
    assert all({"mcp", "rest"} <= op.transports for op in TOOLS)
    # The tools a session also calls: the owner reads the audit log, manages webhooks and reads the
    # school (its courses, students, communities and insights) on the dashboard, downloads a
    # student's export and erases a student.
    assert {op.name for op in TOOLS if op.auth != {"api_key"}} == {
        "list_audit_events",
        "create_webhook",
        "list_webhooks",
        "update_webhook",
        "delete_webhook",
        "list_courses",
        "get_course_insights",
        "get_school_report",
        "list_students",
        "get_student",
        "export_student",
        "erase_student",
        "list_enrollments",
        "list_certificates",
        "list_communities",
        "list_members",
        "get_community_insights",
        "find_students_needing_attention",
    }


def _imports_and_calls(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    return modules, attributes


# How each module runs operations: the demo through the sample data builder's `operate`.
_RUNS_OPERATIONS_BY = {
    "server/cli.py": "run_operation",
    "server/demo.py": "sample_data.operate",
    "server/sample_data.py": "run_operation",
    "server/demo_school.py": "from server.sample_data import operate",
}


@pytest.mark.parametrize("module", _RUNS_OPERATIONS_BY)
def test_the_cli_and_the_demo_run_operations_never_sql(module):
    modules, attributes = _imports_and_calls(ROOT / module)
    assert not {
        name
        for name in modules
        if name.split(".")[0] == "sqlalchemy" or name in ("storage.tables", "storage.accounts")
    }
    assert not attributes & {"sessions", "reading", "writing", "execute", "scalar", "scalars"}
    assert _RUNS_OPERATIONS_BY[module] in (ROOT / module).read_text()


_OPENS_A_STORE_SESSION = frozenset({"sessions", "reading", "writing", "writing_if_free"})
"""The `Store`'s ways in (`storage.engine`): an operation's reads or write transaction, a read session."""
# The runner, and the one internal service for what runs outside an operation call (its docstring
# says which paths and why), under the runner's rules.
_MAY_OPEN_STORE_SESSIONS = ("tools/core/runner.py", "tools/core/internal.py")


def _store_sessions_opened(source: str) -> list[str]:
    """Where `source` opens a store transaction or session (`store.reading()`, `writing()`, ...),
    or passes an opener on (`store.writing` uncalled): `line: name` each. The internal service's
    own `reading(store, ...)` and `writing(store, ...)` are called by name, not on a store."""
    found = [
        (node.lineno, node.attr)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in _OPENS_A_STORE_SESSION
    ]
    return [f"{line}: {name}" for line, name in sorted(found)]


def test_no_module_of_server_or_tools_opens_a_store_session_but_the_runner_and_the_internal_service():
    opened = {
        str(path.relative_to(ROOT)): found
        for package in ("server", "tools")
        for path in sorted((ROOT / package).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in _MAY_OPEN_STORE_SESSIONS
        and (found := _store_sessions_opened(path.read_text()))
    }
    assert opened == {}


def test_the_store_session_check_finds_every_way_to_open_one():
    snippet = """
async def sneak(store, ctx):
    async with store.sessions() as session:
        pass
    async with ctx.store.writing() as db:
        pass
    async with store.writing_if_free() as db:
        pass
    async with self._store.reading() as db:
        pass
    opener = store.writing
"""
    assert _store_sessions_opened(snippet) == [
        "3: sessions",
        "5: writing",
        "7: writing_if_free",
        "9: reading",
        "11: writing",
    ]
    assert _store_sessions_opened("async def read(ctx):\n    return await get_row(ctx.db, 1)\n") == []


def test_the_runner_and_the_internal_service_are_where_the_store_sessions_are_opened():
    for module in _MAY_OPEN_STORE_SESSIONS:
        assert _store_sessions_opened((ROOT / module).read_text()), module


@pytest.mark.parametrize(
    ("raised", "answered"),
    [
        (ConstraintViolation("uq_example"), Conflict),
        (StoreBusy("the write queue is full", retry_after=2), Busy),
        (Locked("database is locked"), Busy),
    ],
)
async def test_the_internal_service_answers_the_stores_errors_as_the_runner_does(store, raised, answered):
    with pytest.raises(answered):
        async with writing(store, "a test write"):
            raise raised
    with pytest.raises(answered):
        async with reading(store, "a test read"):
            raise raised


async def test_the_internal_service_passes_other_errors_unchanged(store):
    with pytest.raises(LookupError):
        async with writing(store, "a test write"):
            raise LookupError("not the store's")


async def test_sign_in_key_management_and_sign_out_are_audited(store, app, tenant):
    async with rest_client(app) as http:
        signed_in = await http.post(
            "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
        )
        token = signed_in.json()["session"]["token"]
        created = (
            await http.post(
                "/api-keys", json={"name": "Audited", "permissions": ["courses:read"]}, headers=bearer(token)
            )
        ).json()
        key_id = created["apiKey"]["id"]
        assert (
            await http.delete("/api-keys", params={"id": key_id}, headers=bearer(token))
        ).status_code == 200
        assert (await http.post("/auth/logout", headers=bearer(token))).status_code == 200
    async with store.sessions() as session:
        events = (
            await session.scalars(
                select(AuditEvent).order_by(col(AuditEvent.occurred_at), col(AuditEvent.id))
            )
        ).all()
    recorded = [(event.operation, event.outcome, event.key_name) for event in events]
    assert recorded == [
        ("login", "ok", None),
        ("create_api_key", "ok", "owner session"),
        ("revoke_api_key", "ok", "owner session"),
        ("logout", "ok", "owner session"),
    ]
    assert events[1].target_ids == {"apiKeyId": key_id} and events[2].target_ids == {
        "id": key_id,
        "apiKeyId": key_id,
    }
    assert all(event.producer_id == tenant.producer_id for event in events)
    assert created["apiKey"]["key"] not in repr([event.target_ids for event in events])


async def test_session_calls_count_against_a_rate_limit(store, tenant):
    from tests.support.rest import http_app

    async with rest_client(http_app(store, rate_limit_per_minute=3)) as http:
        token = (
            await http.post(
                "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
            )
        ).json()["session"]["token"]
        statuses = [(await http.get("/api-keys", headers=bearer(token))).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def _module_imports(package: Path) -> dict[str, set[str]]:
    """Each module of `package` and the modules of the same package it imports, anywhere in it."""
    names = {
        f"tools.{'.'.join(path.relative_to(package).with_suffix('').parts)}" for path in package.rglob("*.py")
    }
    names = {name.removesuffix(".__init__") for name in names}
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        name = f"tools.{'.'.join(path.relative_to(package).with_suffix('').parts)}".removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {module for module in imported if module in names and module != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return visiting[visiting.index(node) :] + [node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            if found := visit(target):
                return found
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if found := visit(node):
            return found
    return None


def test_no_module_of_tools_imports_itself_through_others():
    assert _cycle(_module_imports(ROOT / "tools")) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
