"""Why a target is missed: the cause found by profiling and the fix, shown in the table when it is.

Keyed by target id (see `benchmarks.report.evaluate`). A missed target without a note is shown as
missed with "cause not profiled yet"; a note never hides a miss (it is shown only when missed).
Profiles: pyinstrument over 300 in-process calls of each operation (`uv run pyinstrument ...`).
"""

_QUERIES = {
    "get_student": "3 SQL round trips (key, user, learning days)",
    "get_course": "4 SQL round trips (key, course, sections, lessons) and 15 lesson models",
    "update_progress": "about 14 statements in one BEGIN IMMEDIATE transaction (achievement counts, "
    "streak, certificate check, progress totals, audit event) and a commit",
    "create_thread": "5 statements (key, community, author, insert, audit) and a commit",
}
_CAUSE = (
    "Profile (pyinstrument, 300 calls): the time is {what}; each statement is a SQLAlchemy ORM "
    "async execute handed to aiosqlite's worker thread, about 1 ms here, more than the whole "
    "no-op call (the key lookup stays per request so a revoked key stops at once). "
    "Fix: fewer round trips (the key check joined into the operation's first query, one "
    "statement per read, the achievement counts in one query), Core instead of ORM on hot paths."
)

NOTES: dict[str, str] = {}
for _name, _what in _QUERIES.items():
    for _transport in ("in_process", "http"):
        NOTES[f"overhead.{_transport}.{_name}"] = _CAUSE.format(what=_what)

NOTES["concurrency.sqlite.errors"] = (
    "Seen once in three full runs on a loaded machine (3 internal errors in about 1,500 calls, all "
    "writes; p95 2.4 s), 0 in the others. Suspected cause: a write waiting longer than SQLite's "
    "10 s busy timeout behind BEGIN IMMEDIATE while the event loop is saturated by 50 clients; "
    "the run now records the server's error lines (server_error_lines in latest.json) to confirm. "
    "Fix: bound concurrent write transactions in the process (a semaphore before BEGIN IMMEDIATE) "
    "so writers queue in Python instead of timing out in SQLite."
)

NOTES["cold_start"] = (
    "Profile (python -X importtime, serve path): the SDK import that a bare server also pays is "
    "about 0.9 s; blohko serve adds SQLAlchemy with its asyncio extension (about 0.9 s), "
    "pydantic-settings (0.17 s) and the 50-operation catalog with its models and tables, then opens "
    "the database and authenticates the key before answering. Alembic is no longer imported to "
    "check the schema (plain SQL on alembic_version; it was about 1 s of the start). "
    "Fix: keep SQLAlchemy off the path to the first tools/list (check the key and the schema "
    "revision with the stdlib sqlite3 module, import the store on the first tools/call) and build "
    "the tool schemas from a list precomputed at build time instead of importing every operation."
)
