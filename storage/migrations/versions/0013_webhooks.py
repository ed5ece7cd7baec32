"""webhooks: endpoints and their deliveries (the outbox's fan-out to each subscribed endpoint)

Revision ID: 0013
Revises: 0012

The CHECK constraints that differ by engine are written with `storage.rules` expressions.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from storage.rules import BOOLEAN, COUNT, NOT_BLANK, one_of

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("producer_id", sa.String(length=40), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("disabled_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("failing_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(NOT_BLANK(sa.column("url")), name="ck_webhook_endpoints_url"),
        sa.CheckConstraint(BOOLEAN(sa.column("enabled")), name="ck_webhook_endpoints_enabled"),
        sa.CheckConstraint("length(description) <= 500", name="ck_webhook_endpoints_description_length"),
        sa.CheckConstraint(
            "length(disabled_reason) <= 500", name="ck_webhook_endpoints_disabled_reason_length"
        ),
        sa.CheckConstraint("length(id) <= 40", name="ck_webhook_endpoints_id_length"),
        sa.CheckConstraint("length(producer_id) <= 40", name="ck_webhook_endpoints_producer_id_length"),
        sa.CheckConstraint("length(secret) <= 100", name="ck_webhook_endpoints_secret_length"),
        sa.CheckConstraint("length(url) <= 2048", name="ck_webhook_endpoints_url_length"),
        sa.ForeignKeyConstraint(["producer_id"], ["producers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_producer_id"), ["producer_id"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            one_of(("pending", "succeeded", "failed"))(sa.column("state")), name="ck_webhook_deliveries_state"
        ),
        sa.CheckConstraint(COUNT(sa.column("attempts")), name="ck_webhook_deliveries_attempts"),
        sa.CheckConstraint("length(endpoint_id) <= 40", name="ck_webhook_deliveries_endpoint_id_length"),
        sa.CheckConstraint("length(error) <= 500", name="ck_webhook_deliveries_error_length"),
        sa.CheckConstraint("length(event_id) <= 40", name="ck_webhook_deliveries_event_id_length"),
        sa.CheckConstraint("length(id) <= 40", name="ck_webhook_deliveries_id_length"),
        sa.CheckConstraint(
            "length(response_excerpt) <= 500", name="ck_webhook_deliveries_response_excerpt_length"
        ),
        sa.CheckConstraint("length(state) <= 20", name="ck_webhook_deliveries_state_length"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(
            "ix_webhook_deliveries_endpoint_sequence", ["endpoint_id", "sequence"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_event_id"))
        batch_op.drop_index("ix_webhook_deliveries_endpoint_sequence")
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_producer_id"))

    op.drop_table("webhook_endpoints")
