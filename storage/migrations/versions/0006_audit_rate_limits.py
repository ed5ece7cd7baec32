"""audit events and rate limit windows

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("producer_id", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("key_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("target_ids", sa.JSON(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.ForeignKeyConstraint(["producer_id"], ["producers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_producer_key_time", ["producer_id", "key_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_producer_operation_time",
            ["producer_id", "operation", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_events_producer_time", ["producer_id", "occurred_at", "id"], unique=False
        )

    op.create_table(
        "rate_limit_windows",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("window_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_windows")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_producer_time")
        batch_op.drop_index("ix_audit_events_producer_operation_time")
        batch_op.drop_index("ix_audit_events_producer_key_time")

    op.drop_table("audit_events")
