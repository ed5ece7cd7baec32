"""Why a target is missed: the cause found by profiling and the next step, shown in the table when it is.

Keyed by target id (see `benchmarks.report.evaluate`). A missed target without a note is shown as
missed with "cause not profiled yet"; a note never hides a miss (it is shown only when missed).
Profiles: py-spy (`py-spy record --gil`) on `blohko serve --http` under the load of section 7, and
cProfile over 300 in-process calls; numbers from the project's 2-core machine.
"""

_WRITE_PATH = (
    "Profile (cProfile over 300 in-process calls, py-spy under load): the SQL is few statements now "
    "(update_progress: 4 with authentication when nothing changes) and runs inline on SQLite, with "
    "the side effects read in one statement and plain prepared writes; the rest is SQLAlchemy's "
    "machinery around each statement: the async session's begin and commit, each execute through "
    "the session, the connection, the compiled cache and the result, and a greenlet switch per "
    "await (for update_progress about 70% of the operation's own time; SQLite's work under 10%). "
    "Next step: writes on the driver's own connection like the reads (`storage.fast`): one "
    "transaction per operation on an `aiosqlite`/`asyncpg` connection with prepared statements, "
    "the ORM session only for the writes that still add models."
)
_GET_COURSE = (
    "Profile: the read is one statement; the time is the answer: pydantic validation of the course "
    "detail with its 15 lessons (each with video metadata) and the SDK serializing it twice (text "
    "content and structuredContent), about 3x the payload of get_student. "
    "Next step: build the curriculum's output from the row values without a model per lesson and "
    "serialize it once."
)
_CAUSES = {"get_course": _GET_COURSE, "update_progress": _WRITE_PATH, "create_thread": _WRITE_PATH}

NOTES: dict[str, str] = {}
for _name, _cause in _CAUSES.items():
    for _transport in ("in_process", "http", "stdio"):
        NOTES[f"overhead.{_transport}.{_name}"] = _cause
    NOTES[f"load.cpu.{_name}"] = _cause
    NOTES[f"load.rps.{_name}"] = _cause

_SDK_SHARE = (
    "Profile (py-spy --gil under load): the operation itself (authentication from the kept key, "
    "one statement inline on SQLite, the result model) is about 10% of the call; the rest is the "
    "SDK's streamable HTTP path that the no-op pays too, plus this call's larger JSON answer "
    "serialized twice (text content and structuredContent; the no-op answers 2 bytes). "
    "Next step: no read session for operations that read only on the fast path (about 35 us a "
    "call), and the result's JSON encoded once instead of as a model dump and a text dump."
)
for _name in ("whoami", "get_student"):
    for _kind in ("cpu", "rps"):
        NOTES[f"load.{_kind}.{_name}"] = _SDK_SHARE
    for _transport in ("in_process", "http", "stdio"):
        NOTES[f"overhead.{_transport}.{_name}"] = _SDK_SHARE

NOTES["statements.create_thread"] = (
    "8 statements on SQLite, 7 on PostgreSQL: authentication, BEGIN IMMEDIATE, the community with "
    "the author and membership (one), the thread, the audit record, and its event: the producer's "
    "sequence counter, the webhook endpoints, the event row. "
    "Next step: keep each producer's webhook endpoints per process under a revision like the "
    "credentials (one statement less), and on PostgreSQL write the audit record and the event in "
    "one statement (a data-modifying CTE)."
)

NOTES["concurrency.sqlite.errors"] = NOTES["concurrency.postgresql.errors"] = (
    "Seen in 2 of about 10 full runs, 1-3 errors in 1,500-9,000 calls. The last: one httpx "
    "ReadError (the connection closed under the request), no error line in the server's log, the "
    "slowest call 2.3 s; 3 reruns of the section gave 0. Suspected: the client reusing a keep-alive "
    "connection at the moment uvicorn closed it as idle (both expired idle connections after 5 s). "
    "The client's idle connections now expire after 2 s; if it is seen again, the next step is to "
    "log each failed request's connection age."
)

NOTES["cold_start"] = (
    "Profile (python -X importtime, serve path): the SDK import that a bare server also pays is "
    "about 1 s; blohko serve adds SQLAlchemy with its asyncio extension (0.4-0.9 s), the 56-operation "
    "catalog with its models and tables (about 0.9 s) and pydantic-settings, then opens the database "
    "and authenticates the key before answering. "
    "Next step (issue 19, step 5): answer initialize and tools/list from a precomputed tool list, "
    "check the key with the standard library's sqlite3, and load SQLAlchemy and the catalog on the "
    "first call."
)
