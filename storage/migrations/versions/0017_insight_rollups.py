"""insight rollups: the counts the insight operations read, kept by triggers in the transaction of
every write that changes them

Revision ID: 0017
Revises: 0016

Why triggers: a rollup must move with every insert, update and delete of what it counts, and
deletes reach those rows through cascades (a course's enrollments, a thread's comments) that no
Python code sees. A trigger sees them all, on both engines, in the same transaction.

One description, two dialects: each trigger is a list of statements written once with
`{day(x)}`-style placeholders; SQLite runs them as a trigger body, PostgreSQL as a PL/pgSQL
function. Increments are upserts whose keys are read from the parent row, so nothing is inserted
for a parent being deleted; decrements are plain UPDATEs. A cascade deletes a child after its
parent on both engines, so a child's trigger that needs its parent finds none and does nothing:
whatever it would have undone is undone by the parent's own triggers (an enrollment's certificate)
or by the parent's rollups cascading away (a deleted course's days).

The tables are filled from the rows already there before the triggers exist.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# ---- the dialects ------------------------------------------------------------------------------

_SQLITE = {
    "day": "date({})",
    "int": "({})",
    "seconds": "CAST(round((julianday({1}) - julianday({0})) * 86400) AS INTEGER)",
    "differs": "({} IS NOT {})",
    "no_day": "'0001-01-01'",
}
_POSTGRESQL = {
    "day": "(({}) AT TIME ZONE 'UTC')::date",
    "int": "({})::int",
    "seconds": "round(extract(epoch FROM ({1}) - ({0})))::bigint",
    "differs": "({} IS DISTINCT FROM {})",
    "no_day": "DATE '0001-01-01'",
}


class _Sql:
    """Renders the placeholders of one dialect: `{d.day(NEW.created_at)}` and the like."""

    def __init__(self, forms: dict[str, str]) -> None:
        self._forms = forms

    def day(self, value: str) -> str:
        return self._forms["day"].format(value)

    def int(self, condition: str) -> str:
        return self._forms["int"].format(condition)

    def seconds(self, start: str, end: str) -> str:
        return self._forms["seconds"].format(start, end)

    def differs(self, a: str, b: str) -> str:
        return self._forms["differs"].format(a, b)

    @property
    def no_day(self) -> str:
        return self._forms["no_day"]


def _add(table: str, keys: dict[str, str], deltas: dict[str, str], source: str = "") -> str:
    """Add `deltas` to the row of `keys`, making it when missing. `source` (FROM ... WHERE ...)
    supplies the keys from a parent row, so no row is made when the parent is gone."""
    columns = [*keys, *deltas]
    where = source or ""
    if "WHERE" not in where:  # SQLite reads INSERT ... SELECT ... ON CONFLICT only after a WHERE
        where += " WHERE true"
    updates = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in deltas)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {', '.join([*keys.values(), *deltas.values()])} {where} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


_PARENTS = {
    "course_days": [("courses", "course_id")],
    "course_activity": [("courses", "course_id")],
    "lesson_totals": [("lessons", "lesson_id")],
    "school_days": [("producers", "producer_id")],
    "learning_gaps": [("producers", "producer_id")],
    "community_days": [("communities", "community_id")],
    "community_posters": [("communities", "community_id"), ("users", "user_id")],
}
"""The parents each rollup is keyed by, whose delete cascades to it."""


def _subtract(table: str, keys: dict[str, str], deltas: dict[str, str], condition: str = "true") -> str:
    """Take `deltas` from the row of `keys`; nothing when it is gone, or its parent is: a rollup of
    a parent being deleted goes with it, and PostgreSQL checks the foreign key of a row its own
    transaction wrote on every update (the parent's cascade would refuse the change)."""
    sets = ", ".join(f"{name} = {name} - ({value})" for name, value in deltas.items())
    matches = " AND ".join(f"{name} = {value}" for name, value in keys.items())
    parents = "".join(
        f" AND EXISTS (SELECT 1 FROM {parent} WHERE id = {table}.{key})" for parent, key in _PARENTS[table]
    )
    return f"UPDATE {table} SET {sets} WHERE {matches} AND {condition}{parents}"


@dataclass(frozen=True)
class _Trigger:
    name: str
    table: str
    timing: str  # BEFORE | AFTER
    event: str  # INSERT | UPDATE | DELETE
    statements: list[str]
    when: str | None = None


def _triggers(d: _Sql, dialect: str) -> list[_Trigger]:
    course_of_progress = (
        "COALESCE((SELECT course_id FROM lessons WHERE id = OLD.lesson_id), "
        "(SELECT course_id FROM enrollments WHERE id = OLD.enrollment_id))"
    )

    producer_of_progress = (
        "COALESCE((SELECT c.producer_id FROM lessons l JOIN courses c ON c.id = l.course_id "
        "WHERE l.id = OLD.lesson_id), (SELECT producer_id FROM enrollments WHERE id = OLD.enrollment_id))"
    )

    def progress_completed_at(row: str, sign: str, condition: str = "true") -> list[str]:
        """A lesson completed on its progress row's `completed_at` day: its course's and school's."""
        day = d.day(f"{row}.completed_at")
        if sign == "+":
            source = (
                f"FROM lessons l JOIN courses c ON c.id = l.course_id "
                f"WHERE l.id = {row}.lesson_id AND {row}.completed_at IS NOT NULL AND {condition}"
            )
            return [
                _add(
                    "course_days",
                    {"course_id": "l.course_id", "day": day},
                    {"lessons_completed": "1"},
                    source,
                ),
                _add(
                    "school_days",
                    {"producer_id": "c.producer_id", "day": day},
                    {"lessons_completed": "1"},
                    source,
                ),
            ]
        return [
            _subtract(
                "course_days",
                {"course_id": course_of_progress, "day": day},
                {"lessons_completed": "1"},
                condition,
            ),
            _subtract(
                "school_days",
                {"producer_id": producer_of_progress, "day": day},
                {"lessons_completed": "1"},
                condition,
            ),
        ]

    def enrollment_days(row: str, sign: str) -> list[str]:
        """An enrollment's own days: when made, and when completed with how long it took."""
        made = {"course_id": f"{row}.course_id", "day": d.day(f"{row}.enrolled_at")}
        done = {"course_id": f"{row}.course_id", "day": d.day(f"{row}.completed_at")}
        took = {
            "courses_completed": "1",
            "completion_seconds": d.seconds(f"{row}.enrolled_at", f"{row}.completed_at"),
        }
        school_made = {"producer_id": f"{row}.producer_id", "day": d.day(f"{row}.enrolled_at")}
        school_done = {"producer_id": f"{row}.producer_id", "day": d.day(f"{row}.completed_at")}
        completed = f"{row}.completed_at IS NOT NULL"
        if sign == "+":
            course = f"FROM courses c WHERE c.id = {row}.course_id"
            return [
                _add("course_days", made, {"enrollments": "1"}, course),
                _add("course_days", done, took, f"{course} AND {completed}"),
                _add("school_days", school_made, {"enrollments": "1"}, course),
                _add("school_days", school_done, {"courses_completed": "1"}, f"{course} AND {completed}"),
            ]
        return [
            _subtract("course_days", made, {"enrollments": "1"}),
            _subtract("course_days", done, took, completed),
            _subtract("school_days", school_made, {"enrollments": "1"}),
            _subtract("school_days", school_done, {"courses_completed": "1"}, completed),
        ]

    def activity(row: str, sign: str) -> str:
        """An enrollment in the course's activity: its last active day, started, lessons completed."""
        keys = {
            "course_id": f"{row}.course_id",
            "day": d.day(f"{row}.updated_at"),
            "started": d.int(f"{row}.lessons_started > 0"),
            "lessons_completed": f"{row}.lessons_completed",
        }
        if sign == "+":
            return _add(
                "course_activity", keys, {"enrollments": "1"}, f"FROM courses c WHERE c.id = {row}.course_id"
            )
        return _subtract("course_activity", keys, {"enrollments": "1"})

    def certificate_course(row: str) -> str:
        return f"(SELECT course_id FROM enrollments WHERE id = {row}.enrollment_id)"

    def certificate_producer(row: str) -> str:
        return f"(SELECT producer_id FROM enrollments WHERE id = {row}.enrollment_id)"

    def issued_of(enrollment: str) -> str:
        return f"(SELECT {d.day('issued_at')} FROM certificates WHERE enrollment_id = {enrollment}.id)"

    def community_producer(community: str) -> str:
        return f"(SELECT producer_id FROM communities WHERE id = {community})"

    def gap(student: str, day: str, previous: str, sign: str) -> str:
        """One learning day of `student` on `day` after their previous on `previous` (NULL: none)."""
        keys = {
            "producer_id": "u.producer_id",
            "day": day,
            "previous_day": f"COALESCE({previous}, {d.no_day})",
        }
        if sign == "+":
            return _add(
                "learning_gaps",
                keys,
                {"learners": "1"},
                f"FROM users u JOIN producers p ON p.id = u.producer_id WHERE u.id = {student}",
            )
        keys["producer_id"] = f"(SELECT producer_id FROM users WHERE id = {student})"
        return _subtract("learning_gaps", keys, {"learners": "1"})

    def before(row: str) -> str:
        return f"(SELECT max(day) FROM learning_days WHERE student_id = {row}.student_id AND day < {row}.day)"

    def after(row: str) -> str:
        return f"(SELECT min(day) FROM learning_days WHERE student_id = {row}.student_id AND day > {row}.day)"

    def comment_community(row: str) -> str:
        return f"(SELECT community_id FROM threads WHERE id = {row}.thread_id)"

    completed_day_moved = d.differs(d.day("OLD.completed_at"), d.day("NEW.completed_at"))
    progress_changed = " OR ".join(
        [
            d.differs("OLD.completed", "NEW.completed"),
            d.differs("OLD.watched_seconds", "NEW.watched_seconds"),
            d.differs("OLD.completed_at", "NEW.completed_at"),
        ]
    )
    activity_changed = " OR ".join(
        [
            d.differs("OLD.course_id", "NEW.course_id"),
            d.differs(d.day("OLD.updated_at"), d.day("NEW.updated_at")),
            d.differs("OLD.lessons_started > 0", "NEW.lessons_started > 0"),
            d.differs("OLD.lessons_completed", "NEW.lessons_completed"),
        ]
    )
    days_changed = " OR ".join(
        [
            d.differs("OLD.course_id", "NEW.course_id"),
            d.differs("OLD.enrolled_at", "NEW.enrolled_at"),
            d.differs("OLD.completed_at", "NEW.completed_at"),
        ]
    )
    triggers = [
        # -- lesson progress: its enrollment's counts, its lesson's totals, its course's day
        _Trigger(
            "rollup_progress_insert",
            "lesson_progress",
            "AFTER",
            "INSERT",
            [
                (
                    "UPDATE enrollments SET lessons_started = lessons_started + 1, "
                    f"lessons_completed = lessons_completed + {d.int('NEW.completed')} WHERE id = NEW.enrollment_id"
                ),
                _add(
                    "lesson_totals",
                    {"lesson_id": "NEW.lesson_id"},
                    {
                        "started": "1",
                        "completed": d.int("NEW.completed"),
                        "watched_seconds": "NEW.watched_seconds",
                    },
                ),
                *progress_completed_at("NEW", "+"),
            ],
        ),
        _Trigger(
            "rollup_progress_update",
            "lesson_progress",
            "AFTER",
            "UPDATE",
            [
                (
                    f"UPDATE enrollments SET lessons_completed = lessons_completed + {d.int('NEW.completed')} "
                    f"- {d.int('OLD.completed')} WHERE id = NEW.enrollment_id AND {d.differs('OLD.completed', 'NEW.completed')}"
                ),
                (
                    f"UPDATE lesson_totals SET completed = completed + {d.int('NEW.completed')} - {d.int('OLD.completed')}, "
                    "watched_seconds = watched_seconds + NEW.watched_seconds - OLD.watched_seconds "
                    "WHERE lesson_id = NEW.lesson_id"
                ),
                *progress_completed_at("OLD", "-", completed_day_moved),
                *progress_completed_at("NEW", "+", completed_day_moved),
            ],
            when=progress_changed,
        ),
        _Trigger(
            "rollup_progress_delete",
            "lesson_progress",
            "AFTER",
            "DELETE",
            [
                (
                    "UPDATE enrollments SET lessons_started = lessons_started - 1, "
                    f"lessons_completed = lessons_completed - {d.int('OLD.completed')} WHERE id = OLD.enrollment_id"
                ),
                _subtract(
                    "lesson_totals",
                    {"lesson_id": "OLD.lesson_id"},
                    {
                        "started": "1",
                        "completed": d.int("OLD.completed"),
                        "watched_seconds": "OLD.watched_seconds",
                    },
                ),
                *progress_completed_at("OLD", "-"),
            ],
        ),
        # -- enrollments: their course's days and activity
        _Trigger(
            "rollup_enrollment_insert",
            "enrollments",
            "AFTER",
            "INSERT",
            [*enrollment_days("NEW", "+"), activity("NEW", "+")],
        ),
        _Trigger(
            "rollup_enrollment_days",
            "enrollments",
            "AFTER",
            "UPDATE",
            [*enrollment_days("OLD", "-"), *enrollment_days("NEW", "+")],
            when=days_changed,
        ),
        _Trigger(
            "rollup_enrollment_activity",
            "enrollments",
            "AFTER",
            "UPDATE",
            [activity("OLD", "-"), activity("NEW", "+")],
            when=activity_changed,
        ),
        _Trigger(
            # Its certificate is deleted by the cascade after it, when its course can no longer be found.
            "rollup_enrollment_certificate",
            "enrollments",
            "BEFORE",
            "DELETE",
            [
                _subtract(
                    "course_days",
                    {"course_id": "OLD.course_id", "day": issued_of("OLD")},
                    {"certificates": "1"},
                ),
                _subtract(
                    "school_days",
                    {"producer_id": "OLD.producer_id", "day": issued_of("OLD")},
                    {"certificates": "1"},
                ),
            ],
        ),
        _Trigger(
            "rollup_enrollment_delete",
            "enrollments",
            "AFTER",
            "DELETE",
            [*enrollment_days("OLD", "-"), activity("OLD", "-")],
        ),
        _Trigger(
            # Its enrollments go first, while their progress's lessons can be placed in its school.
            "rollup_course_enrollments",
            "courses",
            "BEFORE",
            "DELETE",
            ["DELETE FROM enrollments WHERE course_id = OLD.id"],
        ),
        # -- certificates: their course's day
        _Trigger(
            "rollup_certificate_insert",
            "certificates",
            "AFTER",
            "INSERT",
            [
                _add(
                    "course_days",
                    {"course_id": "e.course_id", "day": d.day("NEW.issued_at")},
                    {"certificates": "1"},
                    "FROM enrollments e WHERE e.id = NEW.enrollment_id",
                ),
                _add(
                    "school_days",
                    {"producer_id": "e.producer_id", "day": d.day("NEW.issued_at")},
                    {"certificates": "1"},
                    "FROM enrollments e WHERE e.id = NEW.enrollment_id",
                ),
            ],
        ),
        _Trigger(
            "rollup_certificate_delete",
            "certificates",
            "AFTER",
            "DELETE",
            [
                _subtract(
                    "course_days",
                    {"course_id": certificate_course("OLD"), "day": d.day("OLD.issued_at")},
                    {"certificates": "1"},
                ),
                _subtract(
                    "school_days",
                    {"producer_id": certificate_producer("OLD"), "day": d.day("OLD.issued_at")},
                    {"certificates": "1"},
                ),
            ],
        ),
        # -- students: the school's days; their learning days go first, while they can be found
        _Trigger(
            "rollup_student_insert",
            "users",
            "AFTER",
            "INSERT",
            [
                _add(
                    "school_days",
                    {"producer_id": "NEW.producer_id", "day": d.day("NEW.created_at")},
                    {"new_students": "1"},
                    "FROM producers p WHERE p.id = NEW.producer_id",
                )
            ],
            when="NEW.role = 'student'",
        ),
        _Trigger(
            "rollup_user_learning_days",
            "users",
            "BEFORE",
            "DELETE",
            ["DELETE FROM learning_days WHERE student_id = OLD.id"],
        ),
        _Trigger(
            "rollup_student_delete",
            "users",
            "AFTER",
            "DELETE",
            [
                _subtract(
                    "school_days",
                    {"producer_id": "OLD.producer_id", "day": d.day("OLD.created_at")},
                    {"new_students": "1"},
                )
            ],
            when="OLD.role = 'student'",
        ),
        # -- learning days: the gaps between a student's days (a day inserted or deleted between
        #    two others splits or joins a gap). Row by row on SQLite, whose row triggers run as
        #    each row changes; PostgreSQL runs AFTER row triggers at the end of the statement, when
        #    every row of a many-row insert or delete is already there or gone, so it recounts the
        #    students' gaps per statement instead (`_POSTGRESQL_LEARNING_DAYS`).
        _Trigger(
            "rollup_learning_day_insert",
            "learning_days",
            "AFTER",
            "INSERT",
            [
                gap("NEW.student_id", "NEW.day", before("NEW"), "+"),
                gap("NEW.student_id", after("NEW"), before("NEW"), "-"),
                _add(
                    "learning_gaps",
                    {"producer_id": "u.producer_id", "day": after("NEW"), "previous_day": "NEW.day"},
                    {"learners": "1"},
                    f"FROM users u JOIN producers p ON p.id = u.producer_id WHERE u.id = NEW.student_id AND {after('NEW')} IS NOT NULL",
                ),
            ],
        ),
        _Trigger(
            "rollup_learning_day_delete",
            "learning_days",
            "AFTER",
            "DELETE",
            [
                gap("OLD.student_id", "OLD.day", before("OLD"), "-"),
                _subtract(
                    "learning_gaps",
                    {
                        "producer_id": "(SELECT producer_id FROM users WHERE id = OLD.student_id)",
                        "day": after("OLD"),
                        "previous_day": "OLD.day",
                    },
                    {"learners": "1"},
                ),
                _add(
                    "learning_gaps",
                    {
                        "producer_id": "u.producer_id",
                        "day": after("OLD"),
                        "previous_day": f"COALESCE({before('OLD')}, {d.no_day})",
                    },
                    {"learners": "1"},
                    f"FROM users u JOIN producers p ON p.id = u.producer_id WHERE u.id = OLD.student_id AND {after('OLD')} IS NOT NULL",
                ),
            ],
        ),
        # -- communities: members, threads, comments, posters, unanswered threads
        _Trigger(
            "rollup_member_insert",
            "community_members",
            "AFTER",
            "INSERT",
            [
                _add(
                    "community_days",
                    {"community_id": "NEW.community_id", "day": d.day("NEW.joined_at")},
                    {"new_members": "1"},
                    "FROM communities c WHERE c.id = NEW.community_id",
                )
            ],
        ),
        _Trigger(
            "rollup_member_delete",
            "community_members",
            "AFTER",
            "DELETE",
            [
                _subtract(
                    "community_days",
                    {"community_id": "OLD.community_id", "day": d.day("OLD.joined_at")},
                    {"new_members": "1"},
                )
            ],
        ),
        _Trigger(
            "rollup_thread_insert",
            "threads",
            "AFTER",
            "INSERT",
            [
                _add(
                    "community_days",
                    {"community_id": "NEW.community_id", "day": d.day("NEW.created_at")},
                    {"threads": "1"},
                    "FROM communities c WHERE c.id = NEW.community_id",
                ),
                _add(
                    "community_posters",
                    {"community_id": "NEW.community_id", "user_id": "NEW.author_id"},
                    {"threads": "1", "posts": "1"},
                    "FROM communities c WHERE c.id = NEW.community_id",
                ),
                _add(
                    "school_days",
                    {"producer_id": "c.producer_id", "day": d.day("NEW.created_at")},
                    {"threads": "1"},
                    "FROM communities c WHERE c.id = NEW.community_id",
                ),
                (
                    "INSERT INTO unanswered_threads (thread_id, community_id, created_at) "
                    "VALUES (NEW.id, NEW.community_id, NEW.created_at)"
                ),
            ],
        ),
        _Trigger(
            # Its threads go first, while their school can be found through it.
            "rollup_community_threads",
            "communities",
            "BEFORE",
            "DELETE",
            ["DELETE FROM threads WHERE community_id = OLD.id"],
        ),
        _Trigger(
            # Its comments go first, while their community can be found through it.
            "rollup_thread_comments",
            "threads",
            "BEFORE",
            "DELETE",
            ["DELETE FROM comments WHERE thread_id = OLD.id"],
        ),
        _Trigger(
            "rollup_thread_delete",
            "threads",
            "AFTER",
            "DELETE",
            [
                _subtract(
                    "community_days",
                    {"community_id": "OLD.community_id", "day": d.day("OLD.created_at")},
                    {"threads": "1"},
                ),
                _subtract(
                    "community_posters",
                    {"community_id": "OLD.community_id", "user_id": "OLD.author_id"},
                    {"threads": "1", "posts": "1"},
                ),
                _subtract(
                    "school_days",
                    {"producer_id": community_producer("OLD.community_id"), "day": d.day("OLD.created_at")},
                    {"threads": "1"},
                ),
            ],
        ),
        _Trigger(
            "rollup_comment_insert",
            "comments",
            "AFTER",
            "INSERT",
            [
                _add(
                    "community_days",
                    {"community_id": "t.community_id", "day": d.day("NEW.created_at")},
                    {"comments": "1"},
                    "FROM threads t WHERE t.id = NEW.thread_id",
                ),
                _add(
                    "community_posters",
                    {"community_id": "t.community_id", "user_id": "NEW.author_id"},
                    {"comments": "1", "posts": "1"},
                    "FROM threads t WHERE t.id = NEW.thread_id",
                ),
                _add(
                    "school_days",
                    {"producer_id": "c.producer_id", "day": d.day("NEW.created_at")},
                    {"comments": "1"},
                    "FROM threads t JOIN communities c ON c.id = t.community_id WHERE t.id = NEW.thread_id",
                ),
                (
                    "DELETE FROM unanswered_threads WHERE thread_id = NEW.thread_id "
                    "AND NEW.author_id <> (SELECT author_id FROM threads WHERE id = NEW.thread_id)"
                ),
            ],
        ),
        _Trigger(
            "rollup_comment_delete",
            "comments",
            "AFTER",
            "DELETE",
            [
                _subtract(
                    "community_days",
                    {"community_id": comment_community("OLD"), "day": d.day("OLD.created_at")},
                    {"comments": "1"},
                ),
                _subtract(
                    "community_posters",
                    {"community_id": comment_community("OLD"), "user_id": "OLD.author_id"},
                    {"comments": "1", "posts": "1"},
                ),
                _subtract(
                    "school_days",
                    {
                        "producer_id": community_producer(comment_community("OLD")),
                        "day": d.day("OLD.created_at"),
                    },
                    {"comments": "1"},
                ),
                (
                    "INSERT INTO unanswered_threads (thread_id, community_id, created_at) "
                    "SELECT t.id, t.community_id, t.created_at FROM threads t "
                    "JOIN communities m ON m.id = t.community_id "  # none for a community being deleted
                    "WHERE t.id = OLD.thread_id AND t.author_id <> OLD.author_id AND NOT EXISTS "
                    "(SELECT 1 FROM comments c WHERE c.thread_id = t.id AND c.author_id <> t.author_id) "
                    "ON CONFLICT (thread_id) DO NOTHING"
                ),
            ],
        ),
    ]
    return [trigger for trigger in triggers if dialect == "sqlite" or trigger.table != "learning_days"]


def _gaps_of_students(days: str) -> str:
    """Each (producer, day, previous day) of the learning days `days` (a query of student_id, day)
    holds, with how many times: the gaps a set of students' days make."""
    return (
        "SELECT u.producer_id, g.day, COALESCE(g.previous_day, DATE '0001-01-01') AS previous_day, "
        "count(*) AS learners FROM (SELECT student_id, day, "
        f"lag(day) OVER (PARTITION BY student_id ORDER BY day) AS previous_day FROM ({days}) d) g "
        "JOIN users u ON u.id = g.student_id "
        "JOIN producers p ON p.id = u.producer_id GROUP BY 1, 2, 3"  # none for a school being deleted
    )


def _postgresql_learning_days() -> list[tuple[str, str]]:
    """(name, function body) of the statement triggers keeping `learning_gaps` on PostgreSQL: the
    gaps of every student the statement touched, as they are now minus as they were."""
    touched = "SELECT DISTINCT student_id FROM changed"
    now = f"SELECT student_id, day FROM learning_days WHERE student_id IN ({touched})"
    before_insert = f"{now} AND (student_id, day) NOT IN (SELECT student_id, day FROM changed)"
    before_delete = f"{now} UNION ALL SELECT student_id, day FROM changed"

    def recount(before: str) -> str:
        difference = (
            f"SELECT producer_id, day, previous_day, sum(learners) AS learners FROM ("
            f"{_gaps_of_students(now)} UNION ALL "
            f"SELECT producer_id, day, previous_day, -learners FROM ({_gaps_of_students(before)}) b"
            ") x GROUP BY 1, 2, 3 HAVING sum(learners) <> 0"
        )
        return (
            "INSERT INTO learning_gaps (producer_id, day, previous_day, learners) "
            f"SELECT producer_id, day, previous_day, learners FROM ({difference}) y "
            "ON CONFLICT (producer_id, day, previous_day) "
            "DO UPDATE SET learners = learning_gaps.learners + excluded.learners"
        )

    return [
        ("rollup_learning_days_insert", recount(before_insert)),
        ("rollup_learning_days_delete", recount(before_delete)),
    ]


def _create_postgresql_learning_days() -> list[str]:
    statements = []
    for name, body in _postgresql_learning_days():
        event, table = ("INSERT", "NEW") if name.endswith("insert") else ("DELETE", "OLD")
        statements += [
            (
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n  {body};\n  RETURN NULL;\nEND\n$$"
            ),
            (
                f"CREATE TRIGGER {name} AFTER {event} ON learning_days REFERENCING {table} TABLE AS changed "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            ),
        ]
    return statements


# ---- filling them from the rows already there --------------------------------------------------


def _backfill(d: _Sql) -> list[str]:
    return [
        (
            "UPDATE enrollments SET "
            "lessons_started = (SELECT count(*) FROM lesson_progress p WHERE p.enrollment_id = enrollments.id), "
            "lessons_completed = (SELECT count(*) FROM lesson_progress p "
            "WHERE p.enrollment_id = enrollments.id AND p.completed) "
            "WHERE EXISTS (SELECT 1 FROM lesson_progress p WHERE p.enrollment_id = enrollments.id)"
        ),
        (
            "INSERT INTO course_days (course_id, day, enrollments, lessons_completed, courses_completed, "
            "completion_seconds, certificates) "
            "SELECT course_id, day, sum(e), sum(l), sum(c), sum(s), sum(z) FROM ("
            f"SELECT course_id, {d.day('enrolled_at')} AS day, 1 AS e, 0 AS l, 0 AS c, 0 AS s, 0 AS z FROM enrollments "
            f"UNION ALL SELECT course_id, {d.day('completed_at')}, 0, 0, 1, "
            f"{d.seconds('enrolled_at', 'completed_at')}, 0 FROM enrollments WHERE completed_at IS NOT NULL "
            f"UNION ALL SELECT l.course_id, {d.day('p.completed_at')}, 0, 1, 0, 0, 0 FROM lesson_progress p "
            "JOIN lessons l ON l.id = p.lesson_id WHERE p.completed_at IS NOT NULL "
            f"UNION ALL SELECT e.course_id, {d.day('c.issued_at')}, 0, 0, 0, 0, 1 FROM certificates c "
            "JOIN enrollments e ON e.id = c.enrollment_id"
            ") x GROUP BY course_id, day"
        ),
        (
            "INSERT INTO course_activity (course_id, day, started, lessons_completed, enrollments) "
            f"SELECT course_id, {d.day('updated_at')}, {d.int('lessons_started > 0')}, lessons_completed, count(*) "
            f"FROM enrollments GROUP BY course_id, {d.day('updated_at')}, {d.int('lessons_started > 0')}, lessons_completed"
        ),
        (
            "INSERT INTO lesson_totals (lesson_id, started, completed, watched_seconds) "
            f"SELECT lesson_id, count(*), sum({d.int('completed')}), sum(watched_seconds) "
            "FROM lesson_progress GROUP BY lesson_id"
        ),
        (
            "INSERT INTO school_days (producer_id, day, new_students, enrollments, lessons_completed, "
            "courses_completed, certificates, threads, comments) "
            "SELECT producer_id, day, sum(n), sum(e), sum(l), sum(c), sum(z), sum(t), sum(m) FROM ("
            f"SELECT producer_id, {d.day('created_at')} AS day, 1 AS n, 0 AS e, 0 AS l, 0 AS c, 0 AS z, "
            "0 AS t, 0 AS m FROM users WHERE role = 'student' "
            f"UNION ALL SELECT producer_id, {d.day('enrolled_at')}, 0, 1, 0, 0, 0, 0, 0 FROM enrollments "
            f"UNION ALL SELECT c.producer_id, {d.day('p.completed_at')}, 0, 0, 1, 0, 0, 0, 0 "
            "FROM lesson_progress p JOIN lessons l ON l.id = p.lesson_id JOIN courses c ON c.id = l.course_id "
            "WHERE p.completed_at IS NOT NULL "
            f"UNION ALL SELECT producer_id, {d.day('completed_at')}, 0, 0, 0, 1, 0, 0, 0 FROM enrollments "
            "WHERE completed_at IS NOT NULL "
            f"UNION ALL SELECT e.producer_id, {d.day('c.issued_at')}, 0, 0, 0, 0, 1, 0, 0 FROM certificates c "
            "JOIN enrollments e ON e.id = c.enrollment_id "
            f"UNION ALL SELECT m.producer_id, {d.day('t.created_at')}, 0, 0, 0, 0, 0, 1, 0 FROM threads t "
            "JOIN communities m ON m.id = t.community_id "
            f"UNION ALL SELECT m.producer_id, {d.day('c.created_at')}, 0, 0, 0, 0, 0, 0, 1 FROM comments c "
            "JOIN threads t ON t.id = c.thread_id JOIN communities m ON m.id = t.community_id"
            ") x GROUP BY producer_id, day"
        ),
        (
            "INSERT INTO learning_gaps (producer_id, day, previous_day, learners) "
            f"SELECT u.producer_id, g.day, COALESCE(g.previous_day, {d.no_day}), count(*) FROM ("
            "SELECT student_id, day, lag(day) OVER (PARTITION BY student_id ORDER BY day) AS previous_day "
            "FROM learning_days) g JOIN users u ON u.id = g.student_id "
            f"GROUP BY u.producer_id, g.day, COALESCE(g.previous_day, {d.no_day})"
        ),
        (
            "INSERT INTO community_days (community_id, day, new_members, threads, comments) "
            "SELECT community_id, day, sum(m), sum(t), sum(c) FROM ("
            f"SELECT community_id, {d.day('joined_at')} AS day, 1 AS m, 0 AS t, 0 AS c FROM community_members "
            f"UNION ALL SELECT community_id, {d.day('created_at')}, 0, 1, 0 FROM threads "
            f"UNION ALL SELECT t.community_id, {d.day('c.created_at')}, 0, 0, 1 FROM comments c "
            "JOIN threads t ON t.id = c.thread_id"
            ") x GROUP BY community_id, day"
        ),
        (
            "INSERT INTO community_posters (community_id, user_id, threads, comments, posts) "
            "SELECT community_id, user_id, sum(t), sum(c), count(*) FROM ("
            "SELECT community_id, author_id AS user_id, 1 AS t, 0 AS c FROM threads "
            "UNION ALL SELECT t.community_id, c.author_id, 0, 1 FROM comments c JOIN threads t ON t.id = c.thread_id"
            ") x GROUP BY community_id, user_id"
        ),
        (
            "INSERT INTO unanswered_threads (thread_id, community_id, created_at) "
            "SELECT t.id, t.community_id, t.created_at FROM threads t WHERE NOT EXISTS "
            "(SELECT 1 FROM comments c WHERE c.thread_id = t.id AND c.author_id <> t.author_id)"
        ),
    ]


# ---- the migration -----------------------------------------------------------------------------


def _key(name: str, target: str, *, primary: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.String(length=40),
        sa.ForeignKey(target, ondelete="CASCADE"),
        nullable=False,
        primary_key=primary,
    )


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)


def _create_tables() -> None:
    op.add_column(
        "enrollments", sa.Column("lessons_started", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column(
        "enrollments",
        sa.Column("lessons_completed", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )

    def day() -> sa.Column:
        return sa.Column("day", sa.Date(), primary_key=True, nullable=False)

    op.create_table(
        "course_days",
        _key("course_id", "courses.id"),
        day(),
        *(
            _count(name)
            for name in (
                "enrollments",
                "lessons_completed",
                "courses_completed",
                "completion_seconds",
                "certificates",
            )
        ),
    )
    op.create_table(
        "course_activity",
        _key("course_id", "courses.id"),
        day(),
        sa.Column("started", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("lessons_completed", sa.Integer(), primary_key=True, nullable=False),
        _count("enrollments"),
    )
    op.create_table(
        "lesson_totals",
        _key("lesson_id", "lessons.id"),
        *(_count(name) for name in ("started", "completed", "watched_seconds")),
    )
    op.create_table(
        "school_days",
        _key("producer_id", "producers.id"),
        day(),
        *(
            _count(name)
            for name in (
                "new_students",
                "enrollments",
                "lessons_completed",
                "courses_completed",
                "certificates",
                "threads",
                "comments",
            )
        ),
    )
    op.create_table(
        "learning_gaps",
        _key("producer_id", "producers.id"),
        day(),
        sa.Column("previous_day", sa.Date(), primary_key=True, nullable=False),
        _count("learners"),
    )
    op.create_table(
        "community_days",
        _key("community_id", "communities.id"),
        day(),
        *(_count(name) for name in ("new_members", "threads", "comments")),
    )
    op.create_table(
        "community_posters",
        _key("community_id", "communities.id"),
        _key("user_id", "users.id"),
        *(_count(name) for name in ("threads", "comments", "posts")),
    )
    op.create_index("ix_community_posters_user_id", "community_posters", ["user_id"])
    op.create_index(
        "ix_community_posters_community_posts", "community_posters", ["community_id", "posts", "user_id"]
    )
    op.create_table(
        "unanswered_threads",
        _key("thread_id", "threads.id"),
        _key("community_id", "communities.id", primary=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_unanswered_threads_community_created",
        "unanswered_threads",
        ["community_id", "created_at", "thread_id"],
    )


_TABLES = [
    "unanswered_threads",
    "community_posters",
    "community_days",
    "learning_gaps",
    "school_days",
    "lesson_totals",
    "course_activity",
    "course_days",
]


def _create_trigger(dialect: str, trigger: _Trigger) -> list[str]:
    if dialect == "sqlite":
        when = f" WHEN {trigger.when}" if trigger.when else ""
        body = "".join(f"{statement};\n" for statement in trigger.statements)
        return [
            (
                f"CREATE TRIGGER {trigger.name} {trigger.timing} {trigger.event} ON {trigger.table} "
                f"FOR EACH ROW{when} BEGIN\n{body}END"
            )
        ]
    row = "OLD" if trigger.event == "DELETE" else "NEW"
    result = "NULL" if trigger.timing == "AFTER" else row
    body = "".join(f"  {statement};\n" for statement in trigger.statements)
    when = f" WHEN ({trigger.when})" if trigger.when else ""
    return [
        (
            f"CREATE FUNCTION {trigger.name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body}  RETURN {result};\nEND\n$$"
        ),
        (
            f"CREATE TRIGGER {trigger.name} {trigger.timing} {trigger.event} ON {trigger.table} "
            f"FOR EACH ROW{when} EXECUTE FUNCTION {trigger.name}()"
        ),
    ]


def _dialect() -> tuple[str, _Sql]:
    name = op.get_bind().dialect.name
    return name, _Sql(_SQLITE if name == "sqlite" else _POSTGRESQL)


def upgrade() -> None:
    name, d = _dialect()
    _create_tables()
    for statement in _backfill(d):
        op.execute(statement)
    for trigger in _triggers(d, name):
        for statement in _create_trigger(name, trigger):
            op.execute(statement)
    if name != "sqlite":
        for statement in _create_postgresql_learning_days():
            op.execute(statement)


def downgrade() -> None:
    name, d = _dialect()
    for trigger in _triggers(d, name):
        op.execute(
            f"DROP TRIGGER IF EXISTS {trigger.name}" + ("" if name == "sqlite" else f" ON {trigger.table}")
        )
        if name != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {trigger.name}()")
    if name != "sqlite":
        for trigger_name, _body in _postgresql_learning_days():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger_name} ON learning_days")
            op.execute(f"DROP FUNCTION IF EXISTS {trigger_name}()")
    for table in _TABLES:
        op.drop_table(table)
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("lessons_completed")
        batch.drop_column("lessons_started")
