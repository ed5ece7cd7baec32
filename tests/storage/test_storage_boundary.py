"""The store owns its SQL: `tools/` imports neither SQLAlchemy nor SQLModel, writes nothing through
the ORM itself (storage functions build, add, change and delete the rows), and the store raises
its own errors (`storage.errors`) where the database refuses or fails a write."""

from __future__ import annotations

import ast
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

import storage.engine
import storage.tables
from storage.engine import open_store
from storage.errors import ConstraintViolation, Locked
from storage.ids import new_id
from storage.tables import OWNER_EMAIL_INDEX, Producer, User
from tests.support.databases import sqlite_path
from tests.support.factories import error, make_tenant, mcp_client, ok, principal_of
from tools.core.errors import Conflict
from tools.core.runner import run_operation
from tools.domains.accounts import record_last_use
from tools.registry import TOOLS

ROOT = Path(__file__).resolve().parents[2]
_SQL_LIBRARIES = {"sqlalchemy", "sqlmodel"}


def _sql_imports(source: str) -> list[str]:
    """The imports of a SQL library in `source`, as `line: module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {module}" for module in modules if module.split(".")[0] in _SQL_LIBRARIES]
    return found


def test_no_module_of_tools_imports_sqlalchemy_or_sqlmodel():
    offending = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "tools").rglob("*.py"))
        if (found := _sql_imports(path.read_text()))
    }
    assert offending == {}, "SQL belongs in storage/: give the operation a storage function instead"


def test_the_import_check_finds_every_form_of_a_sql_import():
    source = "import sqlalchemy\nimport os, sqlmodel.sql as s\nfrom sqlalchemy.exc import IntegrityError\nfrom storage import queries\n"
    assert _sql_imports(source) == ["1: sqlalchemy", "2: sqlmodel.sql", "3: sqlalchemy.exc"]


_SESSION_WRITES = frozenset(
    {"add", "add_all", "flush", "delete", "refresh", "merge", "expunge", "commit", "rollback"}
)
TABLES = frozenset(
    name
    for name, value in vars(storage.tables).items()
    if isinstance(value, type) and isinstance(getattr(value, "__table__", None), Table)
)
"""The table classes of `storage.tables` by name."""

Returns = Mapping[str, Mapping[str, ast.expr | None]]
"""Each module's functions' return annotations, by module name and function name."""


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _function_returns(source: str) -> dict[str, ast.expr | None]:
    return {
        node.name: node.returns
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _returns_of_the_code() -> dict[str, dict[str, ast.expr | None]]:
    return {
        _module_name(path): _function_returns(path.read_text())
        for package in ("tools", "storage")
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _names_a_table(annotation: ast.expr | None, tables: frozenset[str] = TABLES) -> bool:
    """Whether a type annotation names a table class (`Course`, `Course | None`, `list[Lesson]`,
    `tables.Course`), by its name or one of `tables`."""
    if annotation is None:
        return False
    for node in ast.walk(annotation):
        if (isinstance(node, ast.Name) and node.id in tables) or (
            isinstance(node, ast.Attribute) and node.attr in TABLES
        ):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
            try:
                if _names_a_table(ast.parse(node.value, mode="eval").body, tables):
                    return True
            except SyntaxError:
                continue
    return False


def _tuple_parts(annotation: ast.expr | None) -> list[ast.expr] | None:
    """The element types of a `tuple[A, B]` annotation, else None."""
    if (
        isinstance(annotation, ast.Subscript)
        and isinstance(annotation.value, ast.Name)
        and annotation.value.id == "tuple"
        and isinstance(annotation.slice, ast.Tuple)
    ):
        return annotation.slice.elts
    return None


def _is_session(node: ast.expr) -> bool:
    """`session`, `ctx.db.session`, `anything.session`: what the code calls a database session."""
    return (isinstance(node, ast.Name) and node.id == "session") or (
        isinstance(node, ast.Attribute) and node.attr == "session"
    )


class _ModuleNames:
    """What a module's names stand for: table classes, storage and tools modules, functions."""

    def __init__(self, tree: ast.Module, returns: Returns) -> None:
        self.tables: dict[str, str] = {}  # local name -> table class
        self.tables_modules: set[str] = {"storage.tables"}  # how storage.tables is spelt here
        self.modules: dict[str, str] = {}  # local name -> module
        self.functions: dict[str, ast.expr | None] = {}  # local name -> return annotation
        self.returns = returns
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node.returns
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    local = alias.asname or alias.name
                    if node.module == "storage.tables" and alias.name in TABLES:
                        self.tables[local] = alias.name
                    elif f"{node.module}.{alias.name}" == "storage.tables":
                        self.tables_modules.add(local)
                    elif f"{node.module}.{alias.name}" in returns:
                        self.modules[local] = f"{node.module}.{alias.name}"
                    elif alias.name in returns.get(node.module, {}):
                        self.functions[local] = returns[node.module][alias.name]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name == "storage.tables":
                        self.tables_modules.add(alias.asname)
                    elif alias.asname and alias.name in returns:
                        self.modules[alias.asname] = alias.name

    def names_a_table(self, annotation: ast.expr | None) -> bool:
        return _names_a_table(annotation, TABLES | frozenset(self.tables))

    def constructs_a_table(self, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in self.tables
        return (
            isinstance(func, ast.Attribute)
            and func.attr in TABLES
            and ast.unparse(func.value) in self.tables_modules
        )

    def returned(self, value: ast.expr | None) -> ast.expr | None:
        """The type annotation of what `value` holds, if it is a call whose return type is known
        (a row built from a table class counts as that class)."""
        if isinstance(value, ast.Await):
            value = value.value
        if not isinstance(value, ast.Call):
            return None
        if self.constructs_a_table(value):
            return value.func
        func = value.func
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = self.modules.get(func.value.id)
            return self.returns.get(module, {}).get(func.attr) if module else None
        return None


def _rows_of(function: ast.FunctionDef | ast.AsyncFunctionDef, names: _ModuleNames) -> set[str]:
    """The names in `function` that hold a table row: arguments and variables annotated with a
    table class, and variables given a row built there or returned by a function typed to return one."""
    arguments = function.args
    rows = {
        argument.arg
        for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        if names.names_a_table(argument.annotation)
    }
    for node in ast.walk(function):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if names.names_a_table(node.annotation) or names.names_a_table(names.returned(node.value)):
                rows.add(node.target.id)
        elif isinstance(node, ast.Assign | ast.NamedExpr | ast.For | ast.AsyncFor):
            value = node.iter if isinstance(node, ast.For | ast.AsyncFor) else node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            kind = names.returned(value)
            for target in targets:
                if isinstance(target, ast.Name) and names.names_a_table(kind):
                    rows.add(target.id)
                elif isinstance(target, ast.Tuple) and (parts := _tuple_parts(kind)):
                    rows |= {
                        element.id
                        for element, part in zip(target.elts, parts, strict=False)
                        if isinstance(element, ast.Name) and names.names_a_table(part)
                    }
    return rows


def _assigned_attributes(node: ast.AST) -> Iterator[ast.Attribute]:
    if isinstance(node, ast.Assign | ast.Delete):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    else:
        return
    for target in targets:
        for part in ast.walk(target):
            if isinstance(part, ast.Attribute) and isinstance(part.ctx, ast.Store | ast.Del):
                yield part


def _orm_writes(source: str, *, returns: Returns | None = None) -> list[str]:
    """The writes `source` makes through the ORM itself, as `line: what`: a call of a session's
    add, flush, delete, ... (`ctx.db.session.flush()`), a table class called to build a row
    (`Course(...)`), an attribute of a row set (`course.title =`, `setattr(course, ...)`)."""
    tree = ast.parse(source)
    names = _ModuleNames(tree, returns or {})
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _SESSION_WRITES and _is_session(func.value):
                found.add((node.lineno, f"{ast.unparse(func)}()"))
            elif names.constructs_a_table(node):
                found.add((node.lineno, f"{ast.unparse(func)}(...)"))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        rows = _rows_of(function, names)
        for node in ast.walk(function):
            for attribute in _assigned_attributes(node):
                if isinstance(attribute.value, ast.Name) and attribute.value.id in rows:
                    found.add((attribute.lineno, f"{ast.unparse(attribute)} ="))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("setattr", "delattr")
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in rows
            ):
                found.add((node.lineno, f"{node.func.id}({node.args[0].id}, ...)"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_no_module_of_tools_writes_through_the_orm():
    returns = _returns_of_the_code()
    offending = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "tools").rglob("*.py"))
        if (found := _orm_writes(path.read_text(), returns=returns))
    }
    listed = "\n".join(f"{path}:{found}" for path, writes in offending.items() for found in writes)
    assert offending == {}, (
        f"the store owns its writes: give the operation a storage function that makes the row\n{listed}"
    )


_WRITES_THROUGH_THE_ORM = """\
from storage import courses as courses_storage
from storage import tables
from storage.tables import Course as CourseRow, Section


async def owned(ctx) -> CourseRow:
    return await courses_storage.get_course(ctx.db, producer_id="p", course_id="c")


async def handler(ctx, section: Section | None, session):
    course = await owned(ctx)
    course.title = "New"
    found = await courses_storage.get_course(ctx.db, producer_id="p", course_id="c")
    found.updated_at += 1
    ctx.db.session.add(CourseRow(id="c"))
    session.add_all([tables.Lesson(id="l")])
    await ctx.store.session.flush()
    section.order = 2
    setattr(section, "title", "Renamed")
    await session.delete(section)
    await ctx.db.session.refresh(course)
"""


def test_the_write_check_finds_every_form_of_a_write_through_the_orm():
    returns = {"storage.courses": _function_returns((ROOT / "storage/courses.py").read_text())}
    assert _orm_writes(_WRITES_THROUGH_THE_ORM, returns=returns) == [
        "12: course.title =",
        "14: found.updated_at =",
        "15: CourseRow(...)",
        "15: ctx.db.session.add()",
        "16: session.add_all()",
        "16: tables.Lesson(...)",
        "17: ctx.store.session.flush()",
        "18: section.order =",
        "19: setattr(section, ...)",
        "20: session.delete()",
        "21: ctx.db.session.refresh()",
    ]


_LEGITIMATE_CODE = """\
from storage import courses as courses_storage
from storage.tables import Course


class Counter:
    def __init__(self) -> None:
        self.seen = set()

    def note(self, course: Course) -> None:
        self.seen.add(course.id)
        self.total = len(self.seen)


async def handler(ctx, rows: list[str], changes: dict) -> Course | None:
    names = set()
    names.add("a")
    rows.append("b")
    changes["title"] = "New"
    ctx.queued_deliveries = 2
    await ctx.db.session.execute("SELECT 1")
    await courses_storage.update_course(ctx.db, course=None, changes=changes, at=None)
    result = Result()
    result.title = "Shown"
    return await courses_storage.get_course(ctx.db, producer_id="p", course_id="c")
"""


def test_the_write_check_leaves_other_calls_and_assignments_alone():
    returns = {"storage.courses": _function_returns((ROOT / "storage/courses.py").read_text())}
    assert _orm_writes(_LEGITIMATE_CODE, returns=returns) == []


_DB_INSIDES = frozenset({"session", "opened_session", "rows", "first", "raw", "picker", "run", "run_each"})
"""What a `Db` offers storage functions (`storage/db.py`): its session and its compiled statements."""


def _reaches_into_a_db(source: str) -> list[str]:
    """Where `source` uses a `Db`'s session or compiled statements itself (`ctx.db.session`,
    `db.rows(...)`) instead of handing the `Db` to a storage function: `line: what` each."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Attribute) and node.attr in _DB_INSIDES):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "db") or (
            isinstance(owner, ast.Attribute) and owner.attr == "db"
        ):
            found.append((node.lineno, ast.unparse(node)))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_no_module_of_tools_or_server_reaches_into_a_db():
    """A handler hands `ctx.db` to storage functions, which choose the session or compiled
    statements: the connection is never chosen above `storage/`."""
    reached = {
        str(path.relative_to(ROOT)): found
        for package in ("tools", "server")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := _reaches_into_a_db(path.read_text()))
    }
    assert reached == {}


def test_the_db_check_finds_a_handler_that_reaches_into_its_db():
    snippet = """
async def handler(ctx, data):
    rows = await ctx.db.rows(QUERY, id=data.id)
    await ctx.db.session.execute(statement)
    async with reading(store, "x") as db:
        found = db.session
    return await courses_storage.get_course(ctx.db, producer_id="p", course_id="c")
"""
    assert _reaches_into_a_db(snippet) == ["3: ctx.db.rows", "4: ctx.db.session", "6: db.session"]


def _owner(producer_id: str, email: str) -> User:
    return User(
        id=new_id("user"),
        producer_id=producer_id,
        name="Owner",
        email=email,
        email_normalized=email,
        role="owner",
    )


async def test_a_flush_a_unique_index_refuses_raises_a_constraint_violation_naming_the_index(store, tenant):
    twin = Producer(id=new_id("prod"), name="Twin Academy")
    async with store.writing() as db:
        db.session.add(twin)
        await db.session.flush()
        db.session.add(_owner(twin.id, tenant.owner_email))
        with pytest.raises(ConstraintViolation) as refused:
            await db.session.flush()
        await db.session.rollback()
    assert refused.value.constraint == OWNER_EMAIL_INDEX
    assert isinstance(refused.value.__cause__, IntegrityError)  # kept for the log


async def test_a_write_refused_at_commit_leaves_the_write_session_as_a_constraint_violation(store, tenant):
    twin = Producer(id=new_id("prod"), name="Twin Academy")
    with pytest.raises(ConstraintViolation) as refused:
        async with store.writing() as db:
            db.session.add_all([twin, _owner(twin.id, tenant.owner_email)])  # flushed only by the commit
    assert refused.value.constraint == OWNER_EMAIL_INDEX
    async with store.sessions() as session:
        assert await session.get(Producer, twin.id) is None


async def test_a_constraint_an_operation_did_not_expect_is_a_conflict(store, tenant):
    async def adds_a_second_producer_with_the_same_id(ctx, data):
        ctx.db.session.add(Producer(id=ctx.producer_id, name="Twin Academy"))
        await ctx.db.session.flush()

    operation = replace(
        next(op for op in TOOLS if op.name == "register_student"),
        handler=adds_a_second_producer_with_the_same_id,
    )
    with pytest.raises(Conflict, match="^The change conflicts with existing data; reload and try again$"):
        await run_operation(
            operation,
            {"name": "Ada", "email": "ada@example.com"},
            store=store,
            principal=principal_of(tenant),
        )


def _hold_the_file_lock(database_url: str) -> sqlite3.Connection:
    """Another process's write transaction on the same SQLite file (a CLI command, a second server)."""
    holder = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.mark.sqlite_only
async def test_a_write_locked_out_past_the_busy_timeout_is_busy_and_writes_nothing(database_url, monkeypatch):
    monkeypatch.setattr(storage.engine, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    async with open_store(database_url) as store:
        tenant = await make_tenant(store, name="Locked Out", permissions=["*"])
        async with mcp_client(store, tenant.key) as client:
            holder = _hold_the_file_lock(database_url)
            try:
                refused = error(
                    await client.call_tool("register_student", {"name": "Ada", "email": "ada@example.com"})
                )
            finally:
                holder.rollback()
                holder.close()
            assert ok(await client.call_tool("list_students", {}))["data"] == []
    assert refused["error"] == "busy" and refused["retryAfter"] == 1


@pytest.mark.sqlite_only
async def test_a_last_use_the_locked_database_refuses_is_logged_not_raised(database_url, monkeypatch, caplog):
    monkeypatch.setattr(storage.engine, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    touched: list[BaseException] = []

    async def touch(session) -> None:
        try:
            await session.execute(Producer.__table__.update().values(name="Touched"))
        except BaseException as failure:
            touched.append(failure)
            raise

    async with open_store(database_url) as store:
        holder = _hold_the_file_lock(database_url)
        try:
            with caplog.at_level(logging.WARNING, logger="blohko.accounts"):
                await record_last_use(store, touch, "API key key_locked")
        finally:
            holder.rollback()
            holder.close()
    assert touched == []  # its transaction could not begin: the touch never ran
    logged = [record for record in caplog.records if record.name == "blohko.accounts"]
    assert [record.getMessage() for record in logged] == [
        "could not record the last use of API key key_locked"
    ]
    assert isinstance(logged[0].exc_info[1], Locked)
