"""OAuth: clients, grants (connected apps), authorization codes and tokens

Revision ID: 0011
Revises: 0010

The CHECK constraints are written with `storage.rules` expressions, not SQL text, so each engine
compiles its own (SQLite's `trim(x, char(9) || ...)` is no PostgreSQL function).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from storage.rules import BOOLEAN, NOT_BLANK, max_length, one_of

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("secret_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("information", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("fetched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            one_of(("registration", "metadata_document"))(sa.column("source")), name="ck_oauth_clients_source"
        ),
        sa.CheckConstraint(NOT_BLANK(sa.column("name")), name="ck_oauth_clients_name"),
        sa.CheckConstraint(max_length(2048)(sa.column("id")), name="ck_oauth_clients_id_length"),
        sa.CheckConstraint(max_length(200)(sa.column("name")), name="ck_oauth_clients_name_length"),
        sa.CheckConstraint(
            max_length(64)(sa.column("secret_hash")), name="ck_oauth_clients_secret_hash_length"
        ),
        sa.CheckConstraint(max_length(20)(sa.column("source")), name="ck_oauth_clients_source_length"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("producer_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=2048), nullable=False),
        sa.Column("client_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("redirect_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(NOT_BLANK(sa.column("client_name")), name="ck_oauth_grants_client_name"),
        sa.CheckConstraint(max_length(2048)(sa.column("client_id")), name="ck_oauth_grants_client_id_length"),
        sa.CheckConstraint(
            max_length(200)(sa.column("client_name")), name="ck_oauth_grants_client_name_length"
        ),
        sa.CheckConstraint(max_length(40)(sa.column("id")), name="ck_oauth_grants_id_length"),
        sa.CheckConstraint(
            max_length(40)(sa.column("producer_id")), name="ck_oauth_grants_producer_id_length"
        ),
        sa.CheckConstraint(
            max_length(2048)(sa.column("redirect_uri")), name="ck_oauth_grants_redirect_uri_length"
        ),
        sa.CheckConstraint(max_length(2048)(sa.column("resource")), name="ck_oauth_grants_resource_length"),
        sa.CheckConstraint(max_length(40)(sa.column("user_id")), name="ck_oauth_grants_user_id_length"),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_clients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["producer_id"], ["producers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oauth_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_grants_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_grants_producer_id"), ["producer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("redirect_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Boolean(), nullable=False),
        sa.Column("code_challenge", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(max_length(2048)(sa.column("client_id")), name="ck_oauth_codes_client_id_length"),
        sa.CheckConstraint(
            max_length(128)(sa.column("code_challenge")), name="ck_oauth_codes_code_challenge_length"
        ),
        sa.CheckConstraint(max_length(64)(sa.column("code_hash")), name="ck_oauth_codes_code_hash_length"),
        sa.CheckConstraint(max_length(40)(sa.column("grant_id")), name="ck_oauth_codes_grant_id_length"),
        sa.CheckConstraint(
            max_length(2048)(sa.column("redirect_uri")), name="ck_oauth_codes_redirect_uri_length"
        ),
        sa.CheckConstraint(
            BOOLEAN(sa.column("redirect_uri_explicit")), name="ck_oauth_codes_redirect_uri_explicit"
        ),
        sa.ForeignKeyConstraint(["grant_id"], ["oauth_grants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("oauth_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_codes_grant_id"), ["grant_id"], unique=False)

    op.create_table(
        "oauth_tokens",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(one_of(("access", "refresh"))(sa.column("kind")), name="ck_oauth_tokens_kind"),
        sa.CheckConstraint(max_length(40)(sa.column("grant_id")), name="ck_oauth_tokens_grant_id_length"),
        sa.CheckConstraint(max_length(10)(sa.column("kind")), name="ck_oauth_tokens_kind_length"),
        sa.CheckConstraint(max_length(64)(sa.column("token_hash")), name="ck_oauth_tokens_token_hash_length"),
        sa.ForeignKeyConstraint(["grant_id"], ["oauth_grants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_tokens_grant_id"), ["grant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_tokens_grant_id"))

    op.drop_table("oauth_tokens")
    with op.batch_alter_table("oauth_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_codes_grant_id"))

    op.drop_table("oauth_codes")
    with op.batch_alter_table("oauth_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_grants_producer_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_grants_client_id"))

    op.drop_table("oauth_grants")
    op.drop_table("oauth_clients")
