"""owner emails unique among owners

Revision ID: 0009
Revises: 0008

Fails, naming the email, where owners already share one (`blohko producers create` let that
happen before): such rows need a person's decision, not a silent change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER = sa.text("role = 'owner'")


def _refuse_shared_owner_emails() -> None:
    shared = op.get_bind().execute(
        sa.text("SELECT email_normalized FROM users WHERE role = 'owner' GROUP BY email_normalized HAVING count(*) > 1")
    ).scalars().all()
    if shared:
        raise RuntimeError(
            "migration 0009 cannot create uq_users_owner_email on users: these emails belong to more than one "
            f"producer owner: {', '.join(sorted(shared))}. Give each owner its own email, then upgrade again."
        )


def upgrade() -> None:
    _refuse_shared_owner_emails()
    op.create_index(
        'uq_users_owner_email', 'users', ['email_normalized'], unique=True, sqlite_where=_OWNER, postgresql_where=_OWNER
    )


def downgrade() -> None:
    op.drop_index('uq_users_owner_email', table_name='users')
