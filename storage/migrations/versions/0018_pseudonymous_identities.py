"""pseudonymous identities: whether an API key, an OAuth grant (a connected app) or a webhook
endpoint sees students' names, emails, avatars and bios (`full`, the default and every existing
row) or a stable pseudonym in their place (`pseudonymous`; `tools.core.pseudonyms`)

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("api_keys", "oauth_grants", "webhook_endpoints")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("identities", sa.String(length=20), server_default="full", nullable=False)
            )
            batch_op.create_check_constraint(
                f"ck_{table}_identities", sa.column("identities").in_(["full", "pseudonymous"])
            )
            batch_op.create_check_constraint(
                f"ck_{table}_identities_length", sa.func.length(sa.column("identities")) <= 20
            )


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"ck_{table}_identities_length", type_="check")
            batch_op.drop_constraint(f"ck_{table}_identities", type_="check")
            batch_op.drop_column("identities")
