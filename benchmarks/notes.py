"""Why a target is missed: the cause found by profiling and the next step, shown in the table when it is.

Keyed by target id (see `benchmarks.report.evaluate`). A missed target without a note is shown as
missed with "cause not profiled yet"; a note never hides a miss (it is shown only when missed).
Profiles: py-spy (`py-spy record --gil`) on `blohko serve --http` under the load of section 7, and
cProfile over 300 in-process calls; numbers from the project's 2-core machine.
"""

_WRITE_PATH = (
    "Profile (cProfile over 300 in-process calls, time per call on the project's 2-core machine): "
    "the operation runs without an ORM session on the store's writer connection, its statements "
    "compiled once (storage.statements); the server's CPU per call is about 0.9 ms (update_progress) and "
    "1.1 ms (create_thread) against 0.37 ms for the no-op, and under load both meet their targets. "
    "What is left of the latency: the commit (the WAL's write, about 0.13 ms at the median, plus an "
    "automatic checkpoint about every 60 writes that waits about 15 ms on the disk), validation "
    "of the input and the result, the audit record and the event (2-4 more statements), and the "
    "SDK's own dispatch that the no-op pays too. "
    "The event's sequence and whether any webhook endpoint is enabled now come in one statement "
    "(one statement less for a producer without webhooks). "
    "Next step: checkpoints in a background thread instead of inside a write's commit."
)
_GET_COURSE = (
    "Profile (cProfile and timeit, in process): our part is about 0.45 ms: the read (one statement, "
    "15 rows of 37 columns, about 0.2 ms), the curriculum validated in one call (0.08 ms) and its "
    "JSON: the structuredContent dumped once and the text written from that dict (0.08 ms, was 0.11 "
    "ms when the text was dumped from the model again). The rest is the size of the answer, "
    "which the no-op (2 bytes) does not pay: the SDK validates and dumps the 8.7 KB result again "
    "(structuredContent walked as untyped JSON, about 0.09 ms), encodes the 17.9 KB message, and its "
    "client decodes and validates it (0.15-0.25 ms more); over stdio that is both ends of the pipe. "
    "Under load it meets its targets in some runs and not others (1.40-1.87, same code). Next step: a smaller answer (the reference fixes its "
    "fields), or typed structured content in the SDK."
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
    "SDK's streamable HTTP path that the no-op pays too, plus this call's larger JSON answer, which "
    "the SDK validates and dumps again (the no-op answers 2 bytes). "
    "Next step: typed structured content in the SDK."
)
for _name in ("whoami", "get_student"):
    for _kind in ("cpu", "rps"):
        NOTES[f"load.{_kind}.{_name}"] = _SDK_SHARE
    for _transport in ("in_process", "http", "stdio"):
        NOTES[f"overhead.{_transport}.{_name}"] = _SDK_SHARE

NOTES["statements.create_thread"] = (
    "7 statements on SQLite, 6 on PostgreSQL (8 and 7 before the webhook endpoints' read went into "
    "the counter's upsert): authentication, BEGIN IMMEDIATE, the community with the author and "
    "membership (one), the thread, the audit record, and its event: the producer's sequence "
    "counter, whose upsert also says whether any webhook endpoint is enabled (a producer without "
    "one reads none; with one, its endpoints and their deliveries are two more), and the event row. "
    "Each is a compiled statement inline on the writer's own connection (0.02-0.06 ms each on "
    "SQLite), so they are not what costs. Next step: on PostgreSQL the audit record and the event in "
    "one statement (a data-modifying CTE); 5 would need the thread, the audit record and the event "
    "in fewer statements on SQLite too, which has no statement that writes two tables."
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
    "Next step: answer initialize and tools/list from a precomputed tool list, "
    "check the key with the standard library's sqlite3, and load SQLAlchemy and the catalog on the "
    "first call."
)

NOTES["load.workers.get_student"] = (
    "Reads run in parallel in the workers, each on a listening socket of its own (SO_REUSEPORT; on one "
    "shared socket one worker took all of wrk's connections); what is left to share is the machine: "
    "on 2 cores wrk takes part of one, and other work on the machine the rest. Measured while other "
    "sessions loaded the project's machine (load average 2.5-8): 1.11-1.41x, moving from run to run "
    "by more than any change; 1.88x once it had eased (docs/benchmarks.md, Workers). "
    "Next step: measure on a quiet machine."
)
NOTES["load.workers.update_progress"] = (
    "SQLite has one writer for the file: the workers' transactions take turns (storage/write_turns.py, "
    "a file lock that wakes the next writer at once, kept by a worker for its own queued writes up to "
    "5 ms), so only the work outside the transaction runs in parallel, and a write costs more CPU with "
    "2 workers (1.5-1.9 ms against 1.0-1.2 ms). Measured 1.16-1.6x on a quiet machine since a worker "
    "keeps its turn (0.9-1.05x before), less while other work shares its 2 cores. Next step: profile "
    "the second worker's extra user time per write; PostgreSQL for write-heavy schools."
)
