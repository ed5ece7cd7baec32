"""constraints: owner emails unique among owners, CHECK constraints on every table

Revision ID: 0009
Revises: 0008

The CHECK constraints are the models' own (storage.tables, built from storage.rules), so the
database refuses what the API refuses: enums, bounds, slug and email shapes, non-blank names,
text lengths. A later change to a rule needs its own migration (drop and re-create the
constraint by name); a later migration that adds or removes a table or column must pin here
the constraints of this revision, which this one reads from the models.

Rows that break a new constraint (written by another tool, or owners that already share an
email) stop the upgrade before any change, with a message naming each table and constraint:
such rows need a person's decision, never a silent change.

SQLite adds a CHECK constraint only by rebuilding the table (Alembic's batch mode: copy, drop,
rename). That is safe only with foreign keys off, as on the connection of migrations/env.py:
with them on, dropping a parent table would delete its children's rows (ON DELETE CASCADE).
Rebuilding `users` drops the name-search triggers and renumbers its rowids: both are restored.
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

from storage.search import SQLITE_NAME_FTS_REBUILD, SQLITE_NAME_FTS_TRIGGERS
from storage.tables import OWNER_EMAIL_INDEX, metadata

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    "producers",
    "users",
    "api_keys",
    "producer_sessions",
    "categories",
    "courses",
    "sections",
    "lessons",
    "communities",
    "community_members",
    "threads",
    "comments",
    "community_media",
    "rate_limit_windows",
    "login_failures",
    "audit_events",
    "enrollments",
    "lesson_progress",
    "certificates",
    "learning_days",
    "achievements",
)
_OWNER = sa.text("role = 'owner'")
_ADDED_LATER = ("ck_api_keys_identities",)
"""Name prefixes of checks on these tables that a later migration adds with their column (0018:
the column's value and its length): not this one's."""


def _checks(table: str) -> list[tuple[str, sa.CheckConstraint]]:
    """The table's CHECK constraints with their names, in name order (storage.tables names every one)."""
    named = []
    for constraint in metadata.tables[table].constraints:
        if isinstance(constraint, sa.CheckConstraint):
            assert isinstance(constraint.name, str), f"an unnamed CHECK constraint on {table}"
            if constraint.name.startswith(_ADDED_LATER):
                continue
            named.append((constraint.name, constraint))
    return sorted(named, key=lambda pair: pair[0])


def _broken_rows(bind: sa.Connection) -> list[str]:
    """What existing rows break, one line per table and constraint (one scan per table)."""
    problems = []
    for table in _TABLES:
        checks = _checks(table)
        counts = [sa.func.sum(sa.case((sa.not_(check.sqltext), 1), else_=0)) for _, check in checks]
        found = bind.execute(sa.select(*counts).select_from(sa.table(table))).one()
        problems += [
            f"{table}: {rows} row(s) break {name}"
            for (name, _), rows in zip(checks, found, strict=True)
            if rows
        ]
    shared = (
        bind.execute(
            sa.text(
                "SELECT email_normalized FROM users WHERE role = 'owner' GROUP BY email_normalized HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if shared:
        problems.append(
            f"users: owners sharing the emails {', '.join(sorted(shared))} break {OWNER_EMAIL_INDEX}"
        )
    return problems


def _refuse_broken_rows(bind: sa.Connection) -> None:
    problems = _broken_rows(bind)
    if problems:
        raise RuntimeError(
            "migration 0009 cannot add its constraints, existing rows break them (correct or delete these rows, "
            "then upgrade again): " + "; ".join(problems)
        )


def _rebuild_sqlite_tables(change: Callable[[BatchOperations, str, sa.CheckConstraint], None]) -> None:
    """Rebuild every table on SQLite with `change(batch_op, name, check)` applied for each of its checks."""
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0009 rebuilds tables on SQLite and needs foreign keys off (as storage/migrations/env.py "
            "connects): with them on, dropping a table would delete the rows that reference it"
        )
    for table in _TABLES:
        with op.batch_alter_table(table, recreate="always") as batch_op:
            for name, check in _checks(table):
                change(batch_op, name, check)
    # The rebuild of `users` dropped the name-search triggers and renumbered its rowids.
    for statement in (*SQLITE_NAME_FTS_TRIGGERS, SQLITE_NAME_FTS_REBUILD):
        op.execute(statement)


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_broken_rows(bind)
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite_tables(
            lambda batch_op, name, check: batch_op.create_check_constraint(name, check.sqltext)
        )
    else:
        for table in _TABLES:
            for name, check in _checks(table):
                op.create_check_constraint(name, table, check.sqltext)
    op.create_index(
        OWNER_EMAIL_INDEX,
        "users",
        ["email_normalized"],
        unique=True,
        sqlite_where=_OWNER,
        postgresql_where=_OWNER,
    )


def downgrade() -> None:
    op.drop_index(OWNER_EMAIL_INDEX, table_name="users")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_tables(lambda batch_op, name, _: batch_op.drop_constraint(name, type_="check"))
    else:
        for table in _TABLES:
            for name, _ in _checks(table):
                op.drop_constraint(name, table, type_="check")
