"""The ORM session storage functions read and write through: SQLAlchemy's, awaitable on both engines.

On PostgreSQL it is SQLAlchemy's `AsyncSession` on the asyncpg engine. On SQLite it is SQLAlchemy's
ordinary (blocking) `orm.Session` on the store's `sqlite3` connections, its calls made inline on the
event loop's thread (`storage.sqlite.InlineConnection`: a call waits in a worker thread only while
another process holds the lock). SQLAlchemy's asyncio extension runs only over an async driver, and
an async SQLite driver sends every call through a thread of its own; SQLite answers in
microseconds, so the hop would cost more than the work.

Both are behind one class, `Session`, with the few methods storage functions use; `flush()`
raises `storage.errors` exceptions (a duplicate is a `ConstraintViolation` naming its constraint),
so no caller handles SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import orm
from sqlalchemy.engine import Dialect, Result, ScalarResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import translated
from storage.sqlite import InlineConnection

__all__ = ["Session"]

T = TypeVar("T")
Rows = Result[*tuple[Any, ...]]
"""A statement's result, rows of any columns."""


class Session:
    """An ORM session (see the module's docstring). Made by the store (`Db.session`), never directly."""

    dialect: Dialect

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Rows:
        raise NotImplementedError

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> ScalarResult[Any]:
        raise NotImplementedError

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def get(self, entity: type[T], ident: Any, **kwargs: Any) -> T | None:
        raise NotImplementedError

    def add(self, instance: object) -> None:
        raise NotImplementedError

    def add_all(self, instances: Iterable[object]) -> None:
        raise NotImplementedError

    async def delete(self, instance: object) -> None:
        raise NotImplementedError

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    async def refresh(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        raise NotImplementedError

    @property
    def has_pending(self) -> bool:
        """Whether objects were added, changed or deleted since the last flush."""
        raise NotImplementedError

    async def begin(self) -> None:
        """Begin the session's transaction now (it would begin on first use)."""
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def rollback(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class InlineSession(Session):
    """SQLite: a blocking `orm.Session` whose calls run inline on `connection` (its engine's one
    connection), or wait in a worker thread while another process holds the lock."""

    def __init__(self, session: orm.Session, connection: InlineConnection, dialect: Dialect) -> None:
        self._session = session
        self._call = connection.call
        self.dialect = dialect

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Rows:
        return await self._call(self._session.execute, statement, params, **kwargs)

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> ScalarResult[Any]:
        return await self._call(self._session.scalars, statement, params, **kwargs)

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        return await self._call(self._session.scalar, statement, params, **kwargs)

    async def get(self, entity: type[T], ident: Any, **kwargs: Any) -> T | None:
        return await self._call(self._session.get, entity, ident, **kwargs)

    def add(self, instance: object) -> None:
        self._session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        self._session.add_all(instances)

    async def delete(self, instance: object) -> None:
        await self._call(self._session.delete, instance)

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        with translated():
            await self._call(self._session.flush, objects)

    async def refresh(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        await self._call(self._session.refresh, instance, attribute_names)

    @property
    def has_pending(self) -> bool:
        session = self._session
        return bool(session.new or session.dirty or session.deleted)

    async def begin(self) -> None:
        await self._call(self._session.connection)

    async def commit(self) -> None:
        with translated():
            await self._call(self._session.commit)

    async def rollback(self) -> None:
        await self._call(self._session.rollback)

    async def close(self) -> None:
        await self._call(self._session.close)


class AsyncEngineSession(Session):
    """PostgreSQL: SQLAlchemy's `AsyncSession` on the asyncpg engine."""

    def __init__(self, session: AsyncSession, dialect: Dialect) -> None:
        self._session = session
        self.dialect = dialect

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Rows:
        return await self._session.execute(statement, params, **kwargs)

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> ScalarResult[Any]:
        return await self._session.scalars(statement, params, **kwargs)

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        return await self._session.scalar(statement, params, **kwargs)

    async def get(self, entity: type[T], ident: Any, **kwargs: Any) -> T | None:
        return await self._session.get(entity, ident, **kwargs)

    def add(self, instance: object) -> None:
        self._session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        self._session.add_all(instances)

    async def delete(self, instance: object) -> None:
        await self._session.delete(instance)

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        with translated():
            await self._session.flush(objects)

    async def refresh(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        await self._session.refresh(instance, attribute_names)

    @property
    def has_pending(self) -> bool:
        session = self._session
        return bool(session.new or session.dirty or session.deleted)

    async def begin(self) -> None:
        await self._session.connection()

    async def commit(self) -> None:
        with translated():
            await self._session.commit()

    async def rollback(self) -> None:
        await self._session.rollback()

    async def close(self) -> None:
        await self._session.close()
