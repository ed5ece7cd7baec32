"""Why a target is missed: the cause found by profiling and the fix, shown in the table when it is.

Keyed by target id (see `benchmarks.report.evaluate`). A missed target without a note is shown as
missed with "cause not profiled yet"; a note never hides a miss (it is shown only when missed).
Profiles: pyinstrument over 300 in-process calls of each operation (`uv run pyinstrument ...`).
"""

_ROUND_TRIPS = (
    "Profile: the time is SQL round trips, each a SQLAlchemy ORM async-session execute handed to "
    "aiosqlite's worker thread (about 1 ms apiece on this machine, more than the whole no-op call), "
    "plus one API-key lookup per call (kept per request so a revoked key stops at once). "
)
_FIX = (
    "Fix: fewer round trips (one statement per read where the data allows: the key check joined "
    "into the operation's first query; Core instead of ORM on hot paths; a dedicated sqlite3 "
    "connection thread instead of a thread hop per statement). A ratio of 1.5 against a no-op is "
    "below the cost of one indexed query through aiosqlite, so in-process it stays out of reach "
    "without an in-memory cache of keys and rows, which the instant-revocation rule forbids."
)
_QUERIES = {
    "get_student": "get_student makes 3 queries (key, user, learning days). ",
    "get_course": "get_course makes 4 queries (key, course, sections, lessons) and builds 15 lesson models. ",
    "update_progress": (
        "update_progress makes about 14 statements in one BEGIN IMMEDIATE transaction (key, lock, "
        "enrollment, lesson check, progress row, learning day, three achievement counts, streak, "
        "inserts, progress totals, audit event) and fsyncs a commit. "
    ),
    "create_thread": "create_thread makes 5 statements (key, community, author, insert, audit) and commits. ",
}

NOTES: dict[str, str] = {}
for _name, _what in _QUERIES.items():
    for _transport in ("in_process", "http"):
        NOTES[f"overhead.{_transport}.{_name}"] = _what + _ROUND_TRIPS + _FIX

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
