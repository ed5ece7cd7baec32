"""sync and idempotency: `updated_at` on enrollments and memberships, indexes for `updatedAfter`
listings, and the records of creates run under an idempotency key

Revision ID: 0014
Revises: 0013

The new `updated_at` columns start from what the rows already say: a membership's join time, an
enrollment's completion (else its enrollment) time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("caller", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("producer_id", sa.String(length=40), nullable=False),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint('length("key") <= 200', name="ck_idempotency_records_key_length"),
        sa.CheckConstraint("length(caller) <= 60", name="ck_idempotency_records_caller_length"),
        sa.CheckConstraint("length(operation) <= 100", name="ck_idempotency_records_operation_length"),
        sa.CheckConstraint("length(producer_id) <= 40", name="ck_idempotency_records_producer_id_length"),
        sa.CheckConstraint("length(request_hash) <= 64", name="ck_idempotency_records_request_hash_length"),
        sa.ForeignKeyConstraint(["producer_id"], ["producers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("caller", "key"),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_records_expires", ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_idempotency_records_producer_id"), ["producer_id"], unique=False)

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index("ix_comments_thread_updated", ["thread_id", "updated_at", "id"], unique=False)

    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_communities_producer_updated", ["producer_id", "updated_at", "id"], unique=False
        )

    _add_updated_at("community_members", "joined_at")
    with op.batch_alter_table("community_members", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_members_community_updated", ["community_id", "updated_at", "id"], unique=False
        )

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_courses_producer_updated", ["producer_id", "updated_at", "id"], unique=False
        )

    _add_updated_at("enrollments", "COALESCE(completed_at, enrolled_at)")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollments_producer_updated", ["producer_id", "updated_at", "id"], unique=False
        )

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_threads_community_updated", ["community_id", "updated_at", "id"], unique=False
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_producer_updated", ["producer_id", "updated_at", "id"], unique=False)


def _add_updated_at(table: str, initial: str) -> None:
    """A non-null `updated_at` on `table`, filled from the SQL expression `initial` for rows it has."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute(f"UPDATE {table} SET updated_at = {initial}")
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_producer_updated")

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index("ix_threads_community_updated")

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_producer_updated")
        batch_op.drop_column("updated_at")

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index("ix_courses_producer_updated")

    with op.batch_alter_table("community_members", schema=None) as batch_op:
        batch_op.drop_index("ix_community_members_community_updated")
        batch_op.drop_column("updated_at")

    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_index("ix_communities_producer_updated")

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_thread_updated")

    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_producer_id"))
        batch_op.drop_index("ix_idempotency_records_expires")

    op.drop_table("idempotency_records")
