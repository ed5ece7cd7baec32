"""What a stdio server reads before its store is loaded, with the standard library's `sqlite3`.

`blohko serve` over stdio checks the schema and its key before it answers anything, and checks
the key again on every `tools/list`. On an SQLite file it does so here, without SQLAlchemy, so
its first answer does not wait for the database layer to import (cold start); the store is
loaded afterwards (`server.deferred_runtime`). Rows come back as the store's own readers return
them (`storage.credentials`): aware UTC datetimes, the permissions as a list.

Any URL but a plain SQLite file (PostgreSQL, in-memory, query options) returns None from
`sqlite_file`: those take the full path.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.defaults import SQLITE_BUSY_TIMEOUT_MS

__all__ = ["StartupReader", "sqlite_file"]

_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///", "sqlite+aiosqlite:///")

_API_KEY = (
    "SELECT id, producer_id, name, permissions, expires_at, revoked_at, last_used_at, identities "
    "FROM api_keys WHERE key_hash = ?"
)
_TIMES = ("expires_at", "revoked_at", "last_used_at")


def sqlite_file(url: str) -> Path | None:
    """The file a plain SQLite URL names (`sqlite:///path`), or None for anything else."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            path = url[len(prefix) :]
            # An empty path or :memory: is no file; `?` carries options and `%` escapes that
            # SQLAlchemy would interpret: the full path reads those.
            if path and path != ":memory:" and not any(mark in path for mark in "?%#"):
                return Path(path)
    return None


def _utc(value: str | None) -> datetime | None:
    """A timestamp as SQLAlchemy stores it on SQLite (`2026-05-01 09:00:00.000000`, UTC)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment.astimezone(UTC)


class StartupReader:
    """Reads of one SQLite file on a connection of its own; every read sees what was committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # isolation_level=None: no transaction is left open between reads (WAL snapshots).
            self._connection = sqlite3.connect(
                self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
        return self._connection

    def schema_revision(self) -> str | None:
        """The Alembic revision the file is at (None: no file yet, or never migrated)."""
        if not self.path.exists():
            return None
        connection = self._connect()
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if has_table is None:
            return None
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        return rows[0][0] if rows else None

    def api_key(self, secret_hash: str) -> dict[str, Any] | None:
        """The API key whose secret hashes to `secret_hash` (revoked or expired included), or
        None: the columns and values `storage.credentials.CredentialCache.api_key` returns."""
        cursor = self._connect().execute(_API_KEY, (secret_hash,))
        found = cursor.fetchall()  # to the end: no statement left open holds a read snapshot
        if not found:
            return None
        row = dict(zip((column[0] for column in cursor.description), found[0], strict=True))
        row["permissions"] = json.loads(row["permissions"])
        for name in _TIMES:
            row[name] = _utc(row[name])
        return row

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
