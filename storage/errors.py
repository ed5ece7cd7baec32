"""What the store raises when the database refuses or fails a statement, so that callers above
`storage/` never handle a SQLAlchemy or driver exception themselves.

    StorageError
     ├── ConstraintViolation     a constraint refused the write (unique, foreign key, check), named when the database says
     ├── StoreBusy               no turn to write in time: the write queue is full or the wait too long (SQLite)
     └── DatabaseFailed          the database failed the statement (connection, disk, schema)
          └── Locked             SQLite's lock stayed held past the busy timeout (by another process)

None of them leaves anything written: the transaction they end rolls back whole. `translated()`
turns SQLAlchemy's exceptions into these. The store's sessions (`storage.session.Session`) raise
them from `flush()`, so an operation can tell a duplicate it expects; `Store.reading()`,
`writing()` and `writing_if_free()` raise them from anything in their block (a commit's, a
statement's); and the operation runner wraps each operation in `translated()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError, OperationalError

__all__ = [
    "ConstraintViolation",
    "DatabaseFailed",
    "Locked",
    "StorageError",
    "StoreBusy",
    "is_locked",
    "translated",
    "translated_sqlite",
    "violated_constraint",
]


class StorageError(Exception):
    """The store refused or failed a statement; nothing of the transaction was written."""


class ConstraintViolation(StorageError):
    """A constraint refused the write: a duplicate of a unique value, a row that another
    transaction removed meanwhile (foreign key), a value a check refuses."""

    def __init__(self, constraint: str | None) -> None:
        super().__init__(f"the write violates {constraint or 'a constraint'}")
        self.constraint = constraint
        """The constraint's or unique index's name; None where the database does not tell
        (an unnamed one, a foreign key on SQLite)."""


class StoreBusy(StorageError):
    """The store could not take a write in time (the write queue is full or the wait too long).

    Nothing was written; the same write may be retried after `retry_after` seconds.
    """

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class DatabaseFailed(StorageError):
    """The database failed the statement for a reason of its own (connection, disk, schema)."""


class Locked(DatabaseFailed):
    """Another process (a CLI command, a second server on the same file) held SQLite's lock past
    the busy timeout. Retrying later may succeed."""


def is_locked(error: BaseException) -> bool:
    """Whether SQLite refused a call because another connection holds the lock it needs."""
    message = str(error)
    return "database is locked" in message or "database table is locked" in message


@contextmanager
def translated() -> Iterator[None]:
    """Raise a `StorageError` in place of SQLAlchemy's integrity and operational errors raised in
    the block (the original stays as its `__cause__`, for the log)."""
    try:
        yield
    except IntegrityError as error:
        raise ConstraintViolation(violated_constraint(error)) from error
    except OperationalError as error:
        if error.orig is not None and is_locked(error.orig):
            raise Locked(str(error.orig)) from error
        raise DatabaseFailed(str(error.orig)) from error


@contextmanager
def translated_sqlite() -> Iterator[None]:
    """`translated()` for statements run on a `sqlite3` connection itself (`storage.db`'s compiled statements)."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise ConstraintViolation(_sqlite_constraint(str(error))) from error
    except sqlite3.OperationalError as error:
        if is_locked(error):
            raise Locked(str(error)) from error
        raise DatabaseFailed(str(error)) from error


_SQLITE_CHECK = "CHECK constraint failed: "
_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint or unique index that refused a write, or None where the
    database does not tell (an unnamed one, a foreign key on SQLite).

    PostgreSQL names it; SQLite names a CHECK but lists a unique index's columns
    (`UNIQUE constraint failed: users.email_normalized`), which name it within its table."""
    cause = error.orig.__cause__ if error.orig is not None else None
    named = getattr(cause, "constraint_name", None)  # asyncpg's error, under SQLAlchemy's adapter
    if named:
        return named
    return _sqlite_constraint(str(error.orig))


def _sqlite_constraint(message: str) -> str | None:
    """The constraint SQLite's refusal `message` names (see `violated_constraint`)."""
    if message.startswith(_SQLITE_CHECK):
        return message.removeprefix(_SQLITE_CHECK)
    if not message.startswith(_SQLITE_UNIQUE):
        return None
    from storage.tables import metadata  # here: the engine imports this module, and needs no tables

    qualified = [name.split(".", 1) for name in message.removeprefix(_SQLITE_UNIQUE).split(", ")]
    table = metadata.tables.get(qualified[0][0])
    if table is None:
        return None
    columns = {column for _, column in qualified}
    uniques = [index for index in table.indexes if index.unique]
    uniques += [constraint for constraint in table.constraints if isinstance(constraint, UniqueConstraint)]
    for unique in uniques:
        if {c.name for c in unique.columns} == columns:
            return unique.name if isinstance(unique.name, str) else None  # an unnamed one
    return None
