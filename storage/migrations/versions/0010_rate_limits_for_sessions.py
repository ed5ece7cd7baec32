"""rate limit windows count producer sessions too: no foreign key to api_keys

Revision ID: 0010
Revises: 0009

A window's `key_id` names an API key or a producer session, so it loses its foreign key.
PostgreSQL drops the constraint; SQLite, which cannot drop one, copies the table into a new one
without it (the rows, the current minute's counters, are kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "rate_limit_windows"
_POSTGRES_FOREIGN_KEY = "rate_limit_windows_key_id_fkey"  # PostgreSQL's name for 0006's unnamed key
# The CHECK constraint migration 0009 gave this table, pinned here.
_CHECK = "length(key_id) <= 40", "ck_rate_limit_windows_key_id_length"


def _copy_sqlite_table(*foreign_key: sa.ForeignKeyConstraint) -> None:
    op.create_table(
        "_rate_limit_windows_new",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("window_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        *foreign_key,
        sa.CheckConstraint(_CHECK[0], name=_CHECK[1]),
        sa.PrimaryKeyConstraint("key_id", "window_start"),
    )
    op.execute(
        f"INSERT INTO _rate_limit_windows_new (key_id, window_start, count) SELECT key_id, window_start, count FROM {_TABLE}"
    )
    op.drop_table(_TABLE)
    op.rename_table("_rate_limit_windows_new", _TABLE)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite_table()
    else:
        op.drop_constraint(_POSTGRES_FOREIGN_KEY, _TABLE, type_="foreignkey")


def downgrade() -> None:
    # Windows of sessions have no key to point at: they go, as the key's foreign key requires.
    op.execute(f"DELETE FROM {_TABLE} WHERE key_id NOT IN (SELECT id FROM api_keys)")
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite_table(sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"))
    else:
        op.create_foreign_key(
            _POSTGRES_FOREIGN_KEY, _TABLE, "api_keys", ["key_id"], ["id"], ondelete="CASCADE"
        )
