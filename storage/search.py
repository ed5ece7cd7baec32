"""The indexed name search: what `contains_text` compiles to on each engine, and the objects
the migrations create for it outside the SQLAlchemy metadata.

A case-insensitive substring search is `ILIKE '%text%'` (lower() LIKE lower() on SQLite); an
index narrows the rows it must look at:

- SQLite: `users_name_fts`, an FTS5 external-content table over `users.name` with the `trigram`
  tokenizer (case-insensitive), kept in sync by triggers (migration 0007). For a search of 3 or
  more characters the query first takes the rows whose name holds every trigram of the text
  (a superset: trigram folding covers ASCII case and more), then applies the LIKE to those.
  Shorter searches have no trigram and scan. The table follows `users.rowid`: after a `VACUUM`
  (which may renumber rowids of a table without an INTEGER PRIMARY KEY) rebuild it with
  `INSERT INTO users_name_fts(users_name_fts) VALUES('rebuild')`.
- PostgreSQL: a GIN `pg_trgm` index on `users.name`, which ILIKE uses directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

__all__ = [
    "NAME_FTS_TABLE",
    "NAME_TRIGRAM_INDEX",
    "SQLITE_NAME_FTS_REBUILD",
    "SQLITE_NAME_FTS_TABLE",
    "SQLITE_NAME_FTS_TRIGGERS",
    "NameContains",
    "include_in_schema_comparison",
    "name_index_applies",
]

NAME_FTS_TABLE = "users_name_fts"
NAME_TRIGRAM_INDEX = "ix_users_name_trgm"
_TRIGRAM = 3

# The SQLite objects, as the migrations create them (0007; 0009 re-creates the triggers, which
# go with the `users` table when a migration rebuilds it, and rebuilds the index for its new rowids).
SQLITE_NAME_FTS_TABLE = f"CREATE VIRTUAL TABLE {NAME_FTS_TABLE} USING fts5(name, content='users', content_rowid='rowid', tokenize='trigram')"
SQLITE_NAME_FTS_TRIGGERS = (
    (
        f"CREATE TRIGGER users_name_fts_insert AFTER INSERT ON users BEGIN "
        f"INSERT INTO {NAME_FTS_TABLE}(rowid, name) VALUES (new.rowid, new.name); END"
    ),
    (
        f"CREATE TRIGGER users_name_fts_delete AFTER DELETE ON users BEGIN "
        f"INSERT INTO {NAME_FTS_TABLE}({NAME_FTS_TABLE}, rowid, name) VALUES ('delete', old.rowid, old.name); END"
    ),
    (
        f"CREATE TRIGGER users_name_fts_update AFTER UPDATE OF name ON users BEGIN "
        f"INSERT INTO {NAME_FTS_TABLE}({NAME_FTS_TABLE}, rowid, name) VALUES ('delete', old.rowid, old.name); "
        f"INSERT INTO {NAME_FTS_TABLE}(rowid, name) VALUES (new.rowid, new.name); END"
    ),
)
SQLITE_NAME_FTS_REBUILD = f"INSERT INTO {NAME_FTS_TABLE}({NAME_FTS_TABLE}) VALUES ('rebuild')"


def name_index_applies(text: str) -> bool:
    """Whether a search for `text` can use the name index (it needs one trigram)."""
    return len(text) >= _TRIGRAM


class NameContains(ColumnElement[bool]):
    """`like` (a case-insensitive LIKE on `column`), narrowed by the name index where one applies."""

    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it stands: no "= 1" appended on SQLite
    inherit_cache = False  # carries a plain value; statements holding it are compiled each time

    def __init__(self, column: Any, text: str, like: ColumnElement[bool]) -> None:
        self.column = column
        self.text = text
        self.like_condition = like  # `like` itself would hide ColumnElement.like()


@compiles(NameContains)
def _plain(element: NameContains, compiler, **kw) -> str:
    return compiler.process(element.like_condition, **kw)


@compiles(NameContains, "sqlite")
def _sqlite(element: NameContains, compiler, **kw) -> str:
    like = compiler.process(element.like_condition, **kw)
    if not name_index_applies(element.text) or element.column.table.name != "users":
        return like
    phrase = '"' + element.text.replace('"', '""') + '"'
    match = compiler.process(bindparam("name_fts_phrase", phrase, unique=True), **kw)
    rowid = compiler.process(element.column.table.c.id, **kw).rsplit(".", 1)[0] + ".rowid"
    return (
        f"({rowid} IN (SELECT rowid FROM {NAME_FTS_TABLE} WHERE {NAME_FTS_TABLE} MATCH {match}) AND {like})"
    )


def include_in_schema_comparison(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Alembic `include_name` hook: the search index objects live outside the models' metadata."""
    if type_ == "table" and name and name.startswith(NAME_FTS_TABLE):
        return False
    return not (type_ == "index" and name == NAME_TRIGRAM_INDEX)
