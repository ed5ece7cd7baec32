"""Statements built once and compiled once per dialect: `PreparedQuery`.

Through SQLAlchemy a point read costs far more CPU than the database's work: building the
statement, the compiled cache's lookup, the result's machinery. The hot reads (the credential
check, a course, a student) and the hot writes' statements (`update_progress`, `create_thread`,
the audit record, the events) are `PreparedQuery`s instead: a SQLAlchemy Core statement with named
`bindparam`s, built once at import, compiled on first use per dialect with the type processors
SQLAlchemy itself would apply (datetimes on SQLite, JSON), so rows come back exactly as through the
ORM. They run through an operation's `storage.db.Db` (`Db.rows`, `Db.run`...), on the connection
the operation's role gives them (`docs/storage.md`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Delete, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine
from sqlmodel.sql.sqltypes import UTCDateTime

__all__ = ["Picker", "PreparedQuery", "driver_arguments"]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """The bind parameters in the order the driver takes them."""
    defaults: tuple[Any, ...]
    """Each parameter's value in the statement (a literal), used when the call gives none."""
    bind: tuple[Callable[[Any], Any] | None, ...]
    columns: tuple[str, ...]
    result: tuple[Callable[[Any], Any] | None, ...]


StatementT = TypeVar("StatementT", bound=Select | Insert | Update | Delete)
"""What a `PreparedQuery` holds: a select, or an insert, update or delete (with RETURNING or not)."""

Picker = Callable[[Any], dict[str, Any]]
"""Some columns of a raw row, processed, as a dict (`Db.picker`)."""


class PreparedQuery(Generic[StatementT]):
    """A statement built once and compiled once per dialect, run with each call's parameters
    through an operation's `Db`."""

    def __init__(self, statement: StatementT) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._pickers: dict[tuple[str, tuple[tuple[str, str], ...] | None], Picker] = {}

    def picker(self, dialect: Dialect, columns: tuple[tuple[str, str], ...] | None) -> Picker:
        """What takes `columns` ((label in the statement, key in the dict), ...; None: every column
        under its own label) out of a raw row, processed."""
        cached = (dialect.name, columns)
        found = self._pickers.get(cached)
        if found is None:
            compiled = self.compiled(dialect)
            position = {label: index for index, label in enumerate(compiled.columns)}
            wanted = columns if columns is not None else tuple((label, label) for label in compiled.columns)
            taken = [(key, position[label], compiled.result[position[label]]) for label, key in wanted]

            def pick(row: Any) -> dict[str, Any]:
                return {
                    key: process(row[index]) if process is not None and row[index] is not None else row[index]
                    for key, index, process in taken
                }

            found = self._pickers[cached] = pick
        return found

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("a prepared query cannot take an expanding IN parameter")
        required = {name for name, bind in compiled.binds.items() if bind.required}
        if compiled.literal_execute_params:
            # A literal SQLAlchemy renders into the SQL at execution (aggregate_strings'
            # separator) is rendered once, here; the call's parameters stay parameters.
            placeholders = self.statement.params({name: None for name in required})
            compiled = placeholders.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        names = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]
        # A select's columns, or a DML statement's RETURNING columns (none without).
        selected = self.statement.exported_columns
        columns: list[str] = []
        for column in selected:
            if column.key is None:
                raise ValueError(f"every column of a prepared query needs a name (a label): {self.statement}")
            columns.append(column.key)
        return _Compiled(
            sql=compiled.string,
            names=names,
            defaults=tuple(
                _REQUIRED if name in required else bind.effective_value
                for name, bind in zip(names, binds, strict=True)
            ),
            bind=tuple(bind_processor(bind.type, dialect) for bind in binds),
            columns=tuple(columns),
            result=tuple(result_processor(column.type, dialect) for column in selected),
        )


def bind_processor(column_type: TypeEngine, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What turns a parameter into the value the driver takes, as SQLAlchemy would."""
    if dialect.name == "sqlite" and isinstance(column_type, UTCDateTime):
        return sqlite_stored_timestamp
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def sqlite_stored_timestamp(value: datetime) -> str:
    """A timestamp as SQLAlchemy's SQLite DATETIME stores what sqlmodel's `UTCDateTime` hands it
    ("2026-03-16 10:00:00.000000", in UTC without an offset), in two C calls."""
    if value.utcoffset() is None:
        raise ValueError(f"a timestamp without a time zone cannot be stored: {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def result_processor(column_type: TypeEngine, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What turns a column's value as the driver returns it into the value SQLAlchemy would give."""
    if dialect.name == "sqlite" and isinstance(column_type, UTCDateTime):
        return sqlite_utc_datetime
    return column_type.dialect_impl(dialect).result_processor(dialect, None)


def sqlite_utc_datetime(value: str) -> datetime:
    """A timestamp as SQLite stores it ("2026-03-16 10:00:00.000000", UTC without an offset) as
    SQLAlchemy's SQLite DATETIME and sqlmodel's `UTCDateTime` together return it, in one C call
    instead of a regular expression and two Python layers (a curriculum has dozens of them)."""
    try:
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # not the stored form: one with an offset of its own
        return datetime.fromisoformat(value).astimezone(UTC)


_REQUIRED = object()
"""The default of a parameter the call must give (an insert's every column: no column defaults
are applied here, unlike SQLAlchemy's execution)."""


def driver_arguments(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    """`params` as the driver takes them: in the statement's order, each processed for its type."""
    values = []
    for name, default, process in zip(compiled.names, compiled.defaults, compiled.bind, strict=True):
        value = params.get(name, default)
        if value is _REQUIRED:
            raise ValueError(f"the statement needs a value for {name!r}: {compiled.sql}")
        values.append(process(value) if process is not None and value is not None else value)
    return values
