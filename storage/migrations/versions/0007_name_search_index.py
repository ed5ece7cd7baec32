"""indexed name search: SQLite FTS5 trigram table, PostgreSQL pg_trgm index

Revision ID: 0007
Revises: 0006

Objects outside the models' metadata (see storage.search), so written by hand per dialect.
"""

from collections.abc import Sequence

from alembic import op

from storage.search import SQLITE_NAME_FTS_REBUILD, SQLITE_NAME_FTS_TABLE, SQLITE_NAME_FTS_TRIGGERS

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UPGRADE = [SQLITE_NAME_FTS_TABLE, *SQLITE_NAME_FTS_TRIGGERS, SQLITE_NAME_FTS_REBUILD]
_SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS users_name_fts_update",
    "DROP TRIGGER IF EXISTS users_name_fts_delete",
    "DROP TRIGGER IF EXISTS users_name_fts_insert",
    "DROP TABLE IF EXISTS users_name_fts",
]
_POSTGRES_UPGRADE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_users_name_trgm ON users USING gin (name gin_trgm_ops)",
]
_POSTGRES_DOWNGRADE = ["DROP INDEX IF EXISTS ix_users_name_trgm"]


def _run(by_dialect: dict[str, list[str]]) -> None:
    for statement in by_dialect.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def upgrade() -> None:
    _run({"sqlite": _SQLITE_UPGRADE, "postgresql": _POSTGRES_UPGRADE})


def downgrade() -> None:
    _run({"sqlite": _SQLITE_DOWNGRADE, "postgresql": _POSTGRES_DOWNGRADE})
