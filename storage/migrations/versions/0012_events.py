"""events: the outbox every write records its events in, and each producer's sequence counter

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_counters",
        sa.Column("producer_id", sa.String(length=40), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("length(producer_id) <= 40", name="ck_event_counters_producer_id_length"),
        sa.ForeignKeyConstraint(["producer_id"], ["producers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("producer_id"),
    )
    op.create_table(
        "events",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("producer_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("key_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("course_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("community_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("student_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.CheckConstraint("length(community_id) <= 40", name="ck_events_community_id_length"),
        sa.CheckConstraint("length(course_id) <= 40", name="ck_events_course_id_length"),
        sa.CheckConstraint("length(id) <= 40", name="ck_events_id_length"),
        sa.CheckConstraint("length(key_id) <= 40", name="ck_events_key_id_length"),
        sa.CheckConstraint("length(key_name) <= 200", name="ck_events_key_name_length"),
        sa.CheckConstraint("length(producer_id) <= 40", name="ck_events_producer_id_length"),
        sa.CheckConstraint("length(student_id) <= 40", name="ck_events_student_id_length"),
        sa.CheckConstraint("length(type) <= 40", name="ck_events_type_length"),
        sa.ForeignKeyConstraint(["producer_id"], ["producers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("producer_id", "sequence", name="uq_events_producer_sequence"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_producer_time", ["producer_id", "occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_producer_time")

    op.drop_table("events")
    op.drop_table("event_counters")
