"""The fast path for hot reads: statements compiled once, run on the driver's own connection.

Through SQLAlchemy a point read costs far more CPU than the database's work: the ORM session,
the Core connection, the pool checkout and `aiosqlite`'s thread hops each add to it. Reads every
call makes (the credential check) and the hottest point reads run here instead:

- a `PreparedQuery` is a SQLAlchemy Core `select()` with named `bindparam`s, built once at
  import; it is compiled on first use per dialect, with the type processors SQLAlchemy itself
  would apply (datetimes on SQLite, JSON), so rows come back exactly as through the ORM;
- `FastReader` runs it on a connection it keeps outside SQLAlchemy's pool: on PostgreSQL an
  `asyncpg` pool; on SQLite one `sqlite3` connection, called inline on the event loop's thread
  (a hop to a driver thread and back costs more CPU than a read of a few rows by key). In WAL
  mode a reader does not wait for the writer; in the rare case SQLite says the database is
  locked (a checkpoint or a recovery in another process), the read waits for it in a worker
  thread instead, as `storage.sqlite_inline` does for the store's own connections.

Only single statements run here, so there is no transaction to keep: each read is atomic and
sees what was committed, by any connection or process, before it started. Writes run the same
`PreparedQuery`s in their own transaction (`storage.direct`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import Delete, Insert, Select, Update
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.types import TypeEngine
from sqlmodel.sql.sqltypes import UTCDateTime

from storage.defaults import SQLITE_BUSY_TIMEOUT_MS
from storage.errors import StoreBusy, is_locked
from storage.sqlite_inline import waiting

__all__ = ["FastReader", "Picker", "PreparedQuery", "driver_arguments", "sqlite_database"]


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
"""Some columns of a raw row, processed, as a dict (`FastReader.picker`)."""


class PreparedQuery(Generic[StatementT]):
    """A statement built once and compiled once per dialect: a read that `FastReader` runs with
    the call's parameters, or any statement a write transaction runs on its own connection
    (`storage.direct`)."""

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
            raise ValueError("a fast-path query cannot take an expanding IN parameter")
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
                raise ValueError(
                    f"every column of a fast-path query needs a name (a label): {self.statement}"
                )
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


async def _decode_json(connection: Any) -> None:
    # SQLAlchemy's asyncpg dialect decodes JSON with a codec set on each connection (its JSON type
    # has no result processor); a connection of our own needs the same codecs.
    import json

    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def sqlite_database(url: URL) -> str:
    """The database an SQLite URL names: its file's path (`sqlite+aiosqlite:///path/to/blohko.db`)."""
    if url.database is None:
        raise ValueError(f"the SQLite URL {url} names no database file")
    return url.database


class _SqliteReads:
    """One `sqlite3` connection shared by every read of the process: inline, or in a worker thread
    while SQLite says the database is locked. While one read waits there, the others wait behind it
    in threads too: inline they would block the event loop on the connection's mutex."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._waiting = 0

    async def rows(self, sql: str, arguments: list[Any]) -> list[Any]:
        read = partial(_fetch_all, self.connection, sql, arguments)
        if not self._waiting:
            try:
                return read()
            except sqlite3.OperationalError as error:
                if not is_locked(error):
                    raise
        self._waiting += 1
        try:
            return await asyncio.to_thread(waiting, self.connection, SQLITE_BUSY_TIMEOUT_MS, read)
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                raise
            raise StoreBusy("a read waited for the database lock too long", retry_after=1) from None
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        self.connection.close()


def _fetch_all(connection: sqlite3.Connection, sql: str, arguments: list[Any]) -> list[Any]:
    return connection.execute(sql, arguments).fetchall()


class FastReader:
    """Runs `PreparedQuery`s on a connection of its own. Opened lazily on first use, closed with the store."""

    def __init__(self, url: str, dialect: Dialect) -> None:
        self._url = make_url(url)
        self._dialect = dialect
        self._sqlite = self._url.get_backend_name() == "sqlite"
        self._connection: Any = None
        self._opening = asyncio.Lock()
        self._listeners: list[Callable[[str], None]] = []

    def listen(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener` with the SQL of every statement run here, until the returned function
        is called (the statement-count tests, beside SQLAlchemy's `before_cursor_execute`)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def announce(self, sql: str) -> None:
        """Tell the listeners a statement runs: one run here, or by a write transaction on its own
        connection (`storage.direct`)."""
        for listener in self._listeners:
            listener(sql)

    async def one(self, query: PreparedQuery, **params: Any) -> dict[str, Any] | None:
        """The first row of `query` as a dict of its column keys, or None."""
        rows = await self.all(query, **params)
        return rows[0] if rows else None

    async def all(self, query: PreparedQuery, **params: Any) -> list[dict[str, Any]]:
        every_column = query.picker(self._dialect, None)
        return [every_column(row) for row in await self.raw(query, **params)]

    async def raw(self, query: PreparedQuery, **params: Any) -> list[Any]:
        """The rows of `query` as the driver returns them, unprocessed: for a statement whose rows
        repeat columns (a join), which `picker` then takes out only where they are needed."""
        compiled = query.compiled(self._dialect)
        values = driver_arguments(compiled, params)
        connection = self._connection or await self._open()
        self.announce(compiled.sql)
        if self._sqlite:
            return await connection.rows(compiled.sql, values)
        return await connection.fetch(compiled.sql, *values)

    def picker(self, query: PreparedQuery, columns: tuple[tuple[str, str], ...]) -> Picker:
        """What takes `columns` ((label, key), ...) of a raw row of `query` out, processed as `all` would."""
        return query.picker(self._dialect, columns)

    async def _open(self) -> Any:
        async with self._opening:
            if self._connection is None:
                self._connection = await (self._open_sqlite() if self._sqlite else self._open_postgres())
            return self._connection

    async def _open_sqlite(self) -> Any:
        # isolation_level None: no implicit transactions, each read sees the latest commit.
        connection = sqlite3.connect(
            sqlite_database(self._url), timeout=0, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA query_only=ON")  # a reader: nothing here may write
        return _SqliteReads(connection)

    async def _open_postgres(self) -> Any:
        import asyncpg

        dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        # Small: each statement holds a connection only for its own round trip.
        return await asyncpg.create_pool(dsn, min_size=1, max_size=5, init=_decode_json)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
