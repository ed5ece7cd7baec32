"""insight indexes: a course's enrollments by last progress change, so
`find_students_needing_attention` of one course walks that course's enrollments only; and the
school report's windows (courses completed, lessons completed, certificates issued, learning
days) read from the window instead of from every row of the producer

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_INDEXES = [
    ("enrollments", "ix_enrollments_course_updated", ["course_id", "updated_at", "id"]),
    ("enrollments", "ix_enrollments_producer_completed", ["producer_id", "completed_at"]),
    ("lesson_progress", "ix_lesson_progress_completed_at", ["completed_at"]),
    ("certificates", "ix_certificates_issued_at", ["issued_at"]),
    ("learning_days", "ix_learning_days_day", ["day"]),
]


def upgrade() -> None:
    for table, name, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
