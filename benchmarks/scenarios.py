"""The measurements: overhead vs the SDK floor, growth, cold start, concurrency, memory, context size."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import LATEST_PROTOCOL_VERSION, TextContent

from benchmarks import loader
from benchmarks.bare_server import create_bare_server
from benchmarks.processes import BARE_SERVER, BLOHKO, bare_http_server, http_server, server_env
from benchmarks.stats import Timing, summarize
from server.mcp_app import Runtime, create_mcp_server
from server.runtime import settle_heap
from storage.engine import Store

TimedCall = Callable[[int], Awaitable[object]]
"""One timed call: given its number, it makes the request (what it returns is not looked at)."""

__all__ = [
    "INSIGHT_OPERATIONS",
    "PERMISSIONS",
    "Size",
    "cold_start",
    "concurrency",
    "context_sizes",
    "growth",
    "insight",
    "overhead",
]

PERMISSIONS = [
    "*",
    "courses:*",
    "courses:read",
    "courses:write",
    "students:*",
    "students:read",
    "students:write",
    "enrollments:*",
    "enrollments:read",
    "enrollments:write",
    "communities:*",
    "communities:read",
    "communities:write",
]


@dataclass(frozen=True)
class Size:
    name: str
    overhead_calls: int
    growth_sizes: tuple[int, ...]
    growth_calls: int
    cold_runs: int
    concurrency_seconds: float
    concurrency_clients: int
    concurrency_students: int
    base_students: int
    wrk_seconds: float
    worker_rounds: int
    """Times each worker count of section 7's `--workers` row is loaded, in turn with the others."""
    insight_calls: int
    insight_postgres_students: int
    """Students in the PostgreSQL database of section 8 (its large course has a tenth as many enrollments)."""


SIZES = {
    # A smoke run (the test suite runs it once): every section, a few calls each.
    "tiny": Size(
        "tiny",
        overhead_calls=20,
        growth_sizes=(200, 400, 800),
        growth_calls=10,
        cold_runs=1,
        concurrency_seconds=1,
        concurrency_clients=10,
        concurrency_students=200,
        base_students=200,
        wrk_seconds=1,
        worker_rounds=1,
        insight_calls=4,
        insight_postgres_students=800,
    ),
    "full": Size(
        "full",
        overhead_calls=400,
        growth_sizes=(10_000, 100_000, 1_000_000),
        growth_calls=200,
        cold_runs=7,
        concurrency_seconds=30,
        concurrency_clients=50,
        concurrency_students=10_000,
        base_students=1_000,
        wrk_seconds=8,
        worker_rounds=3,
        insight_calls=20,
        insight_postgres_students=1_000_000,
    ),
}


class CallFailed(Exception):
    pass


# --- clients ------------------------------------------------------------------------------------


class HttpMcp:
    """Stateless streamable-HTTP JSON-RPC calls, the same way for Blohko and for the bare server."""

    def __init__(self, http: httpx.AsyncClient, url: str, key: str | None = None) -> None:
        self.http = http
        self.url = f"{url}/mcp"
        # No MCP-Protocol-Version header: the server then assumes the version every stateless
        # client can speak, which needs no per-request `_meta`.
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self._id = 0

    async def request(self, method: str, params: dict[str, Any]) -> httpx.Response:
        self._id += 1
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        return await self.http.post(self.url, json=body, headers=self.headers)

    async def call(self, name: str, arguments: dict[str, Any]) -> dict:
        response = await self.request("tools/call", {"name": name, "arguments": arguments})
        if response.status_code != 200:
            raise CallFailed(f"{name}: HTTP {response.status_code} {response.text[:200]}")
        payload = response.json()
        if "error" in payload or payload["result"].get("isError"):
            raise CallFailed(f"{name}: {json.dumps(payload)[:300]}")
        return payload["result"]


async def _sdk_call(client: Client, name: str, arguments: dict[str, Any]) -> None:
    result = await client.call_tool(name, arguments)
    if result.is_error:
        first = result.content[0]
        detail = first.text if isinstance(first, TextContent) else repr(first)
        raise CallFailed(f"{name}: {detail[:300]}")


# --- the operations -----------------------------------------------------------------------------


def _overhead_arguments(tenant: loader.BenchTenant, students: int) -> dict[str, Callable[[int], dict]]:
    courses = students // loader.STUDENTS_PER_COURSE
    return (
        {
            "get_student": lambda i: {"studentId": loader.student_id((i * 7919) % students)},
            "get_course": lambda i: {"courseId": loader.OVERHEAD_COURSE_ID},
            "update_progress": lambda i: _progress_arguments((i * 7919) % students, i),
            "create_thread": lambda i: {
                "communityId": loader.COMMUNITY_ID,
                "title": f"Bench thread {i}",
                "content": "Measured.",
                "userId": tenant.owner_user_id,
            },
        }
        if courses
        else {}
    )


def _progress_arguments(student: int, i: int) -> dict:
    course = student // loader.STUDENTS_PER_COURSE
    lesson = loader.lesson_id(course, i % loader.SECTIONS_PER_COURSE, (i // 2) % loader.LESSONS_PER_SECTION)
    return {
        "enrollmentId": loader.enrollment_id(student),
        "lessonId": lesson,
        "completed": i % 3 == 0,
        "watchedSeconds": i % 600,
    }


def _growth_arguments(students: int, rng: random.Random) -> dict[str, Callable[[int], dict]]:
    courses = students // loader.STUDENTS_PER_COURSE
    return {
        "list_students (name search)": lambda i: {"search": loader.SEARCH_TERM},
        "list_courses": lambda i: {},
        # A bot's incremental sync: the 20 students changed last, oldest change first.
        "list_students (updatedAfter)": lambda i: {
            "updatedAfter": (loader.EPOCH + timedelta(seconds=students - 21)).isoformat()
        },
        "get_enrollment": lambda i: {"enrollmentId": loader.enrollment_id(rng.randrange(students))},
        "update_progress": lambda i: _progress_arguments(rng.randrange(students), i),
        "get_thread": lambda i: {
            "communityId": loader.COMMUNITY_ID,
            "threadId": loader.thread_id(rng.randrange(courses)),
        },
    }


def _tool(label: str) -> str:
    return label.split(" ")[0]


async def _interleaved(calls: dict[str, TimedCall], total: int, rounds: int = 4) -> dict[str, Timing]:
    """Time each call `total` times, in `rounds` interleaved rounds so drift hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    per_round = max(1, total // rounds)
    counter = 0
    for call in calls.values():  # warm-up
        for _ in range(3):
            await call(counter)
            counter += 1
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(per_round):
                start = time.perf_counter()
                await call(counter)
                samples[name].append(time.perf_counter() - start)
                counter += 1
    return {name: summarize(values) for name, values in samples.items()}


def _ratios(timings: dict[str, Timing], floor: str) -> dict[str, dict]:
    base = timings[floor]
    return {
        name: {
            **timing.as_dict(),
            "ratio_median": timing.median_ms / base.median_ms,
            "ratio_p95": timing.p95_ms / base.p95_ms,
        }
        for name, timing in timings.items()
    }


# --- 1. overhead ----------------------------------------------------------------------------------


async def overhead(store: Store, tenant: loader.BenchTenant, size: Size, workdir: Path) -> dict:
    arguments = _overhead_arguments(tenant, size.base_students)
    results: dict[str, Any] = {}

    bare = create_bare_server()
    blohko = create_mcp_server(Runtime(store=store), api_key=tenant.key)
    settle_heap()  # as a server process does once loaded (`blohko serve`)
    async with Client(bare) as bare_client, Client(blohko) as client:
        calls: dict[str, TimedCall] = {"noop (bare MCPServer)": lambda i: _sdk_call(bare_client, "noop", {})}
        for name, make in arguments.items():
            calls[name] = lambda i, name=name, make=make: _sdk_call(client, name, make(i))
        results["in_process"] = _ratios(
            await _interleaved(calls, size.overhead_calls), "noop (bare MCPServer)"
        )
        results["statements"] = {}
        for name, make in arguments.items():  # one more call each, its key already verified and kept
            with store.statements_seen() as seen:
                await _sdk_call(client, name, make(size.overhead_calls + 1))
            results["statements"][name] = len(seen)

    env = server_env(store.url)
    with (
        bare_http_server(workdir / "bare-http.log") as bare_server,
        http_server(env, workdir / "blohko-http.log") as server,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            bare_mcp = HttpMcp(http, bare_server.url)
            mcp = HttpMcp(http, server.url, tenant.key)
            calls = {"noop (bare MCPServer)": lambda i: bare_mcp.call("noop", {})}
            for name, make in arguments.items():
                calls[name] = lambda i, name=name, make=make: mcp.call(name, make(i))
            results["http"] = _ratios(await _interleaved(calls, size.overhead_calls), "noop (bare MCPServer)")
            results["context"] = await context_sizes(store, tenant, http, server.url)

    # Over stdio, as a desktop client runs a local server: each a real process the SDK's client spawns.
    bare_stdio = StdioServerParameters(command=sys.executable, args=[BARE_SERVER])
    blohko_stdio = StdioServerParameters(
        command=BLOHKO, args=["serve"], env=server_env(store.url, BLOHKO_API_KEY=tenant.key)
    )
    async with Client(bare_stdio) as bare_client, Client(blohko_stdio) as client:
        calls = {"noop (bare MCPServer)": lambda i: _sdk_call(bare_client, "noop", {})}
        for name, make in arguments.items():
            calls[name] = lambda i, name=name, make=make: _sdk_call(client, name, make(i))
        results["stdio"] = _ratios(await _interleaved(calls, size.overhead_calls), "noop (bare MCPServer)")
    return results


# --- 6. context size ------------------------------------------------------------------------------


async def context_sizes(store: Store, tenant: loader.BenchTenant, http: httpx.AsyncClient, url: str) -> dict:
    """Bytes of the `tools/list` response body over HTTP, per key permission."""
    sizes = {}
    for permission in PERMISSIONS:
        key = await loader.add_key(store, tenant, [permission])
        response = await HttpMcp(http, url, key).request("tools/list", {})
        response.raise_for_status()
        sizes[permission] = {"bytes": len(response.content), "tools": len(response.json()["result"]["tools"])}
    return sizes


# --- 2. growth --------------------------------------------------------------------------------------


async def growth(store: Store, tenant: loader.BenchTenant, size: Size, workdir: Path) -> dict:
    rng = random.Random(10)
    loaded = 0
    per_size: dict[int, dict] = {}
    for students in size.growth_sizes:
        started = time.perf_counter()
        await loader.load_students(store, tenant, loaded, students)
        load_seconds = time.perf_counter() - started
        loaded = students
        arguments = _growth_arguments(students, rng)
        client_server = create_mcp_server(Runtime(store=store), api_key=tenant.key)
        async with Client(client_server) as client:
            calls: dict[str, TimedCall] = {
                label: (lambda i, label=label, make=make: _sdk_call(client, _tool(label), make(i)))
                for label, make in arguments.items()
            }
            timings = await _interleaved(calls, size.growth_calls, rounds=2)
        rss = None
        if students == size.growth_sizes[-1]:  # memory matters at the largest size
            rss = await _server_rss_under(
                store,
                tenant,
                arguments,
                workdir / f"growth-{students}.log",
                calls=max(5, size.growth_calls // 4),
            )
        per_size[students] = {
            "load_seconds": load_seconds,
            "peak_rss_mb": rss,
            "ops": {label: timing.as_dict() for label, timing in timings.items()},
        }
    smallest, largest = size.growth_sizes[0], size.growth_sizes[-1]
    ratios = {
        label: per_size[largest]["ops"][label]["median_ms"] / per_size[smallest]["ops"][label]["median_ms"]
        for label in per_size[largest]["ops"]
    }
    return {
        "sizes": list(size.growth_sizes),
        "per_size": {str(k): v for k, v in per_size.items()},
        "ratios": ratios,
    }


async def _server_rss_under(
    store: Store, tenant: loader.BenchTenant, arguments: dict, log: Path, *, calls: int
) -> float:
    """Peak RSS of a `blohko serve --http` process that served `calls` of each operation."""
    with http_server(server_env(store.url), log) as server:
        async with httpx.AsyncClient(timeout=60) as http:
            mcp = HttpMcp(http, server.url, tenant.key)
            for i in range(calls):
                for label, make in arguments.items():
                    await mcp.call(_tool(label), make(i))
        return server.peak_rss_mb()


# --- 3. cold start ----------------------------------------------------------------------------------


def _first_tools_list(command: list[str], env: dict[str, str] | None) -> float:
    """Seconds from launching `command` (an MCP server over stdio) to the answer of its first tools/list."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write((json.dumps(messages[0]) + "\n").encode())
            process.stdin.flush()
            _read_response(process, 1, stderr)
            for message in messages[1:]:
                process.stdin.write((json.dumps(message) + "\n").encode())
            process.stdin.flush()
            response = _read_response(process, 2, stderr)
            elapsed = time.perf_counter() - start
            if not response.get("result", {}).get("tools"):
                raise CallFailed(f"tools/list failed: {response}")
            return elapsed
        finally:
            if process.stdin:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_response(process: subprocess.Popen, request_id: int, stderr) -> dict:
    assert process.stdout is not None, "the server is started with stdout=PIPE"
    while True:
        line = process.stdout.readline()
        if not line:
            stderr.seek(0)
            raise CallFailed(f"server closed stdout: {stderr.read().decode()[-2000:]}")
        message = json.loads(line)
        if message.get("id") == request_id:
            return message


async def cold_start(store: Store, tenant: loader.BenchTenant, size: Size) -> dict:
    env = server_env(store.url, BLOHKO_API_KEY=tenant.key)
    blohko, bare = [], []
    for _ in range(size.cold_runs):  # interleaved: drift hits both alike
        blohko.append(await asyncio.to_thread(_first_tools_list, [BLOHKO, "serve"], env))
        bare.append(await asyncio.to_thread(_first_tools_list, [sys.executable, BARE_SERVER], None))
    blohko_timing, bare_timing = summarize(blohko), summarize(bare)
    return {
        "blohko": blohko_timing.as_dict(),
        "bare": bare_timing.as_dict(),
        "ratio": blohko_timing.median_ms / bare_timing.median_ms,
    }


# --- 4. concurrency ---------------------------------------------------------------------------------


_MIX = [
    ("get_student", 3),
    ("get_course", 2),
    ("list_courses", 1),
    ("get_enrollment", 1),
    ("update_progress", 2),
    ("create_thread", 1),
]
_WRITES = {"update_progress", "create_thread"}


async def concurrency(
    store: Store, tenant: loader.BenchTenant, size: Size, workdir: Path, label: str
) -> dict:
    """`clients` concurrent HTTP clients mixing reads (70%) and writes (30%) for a fixed time."""
    students = size.concurrency_students
    arguments = {
        **_overhead_arguments(tenant, students),
        "list_courses": lambda i: {},
        "get_enrollment": lambda i: {"enrollmentId": loader.enrollment_id((i * 7919) % students)},
    }
    names = [name for name, weight in _MIX for _ in range(weight)]
    latencies: list[float] = []
    errors: list[str] = []
    with http_server(server_env(store.url), workdir / f"concurrency-{label}.log") as server:
        # Idle connections expire on the client first: with both at uvicorn's 5 s, a request could
        # go out on a connection the server was closing that instant (a ReadError, no server error).
        limits = httpx.Limits(
            max_connections=size.concurrency_clients,
            max_keepalive_connections=size.concurrency_clients,
            keepalive_expiry=2,
        )
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            deadline = time.perf_counter() + size.concurrency_seconds

            async def client(number: int) -> None:
                mcp = HttpMcp(http, server.url, tenant.key)
                rng = random.Random(number)
                i = number * 1_000_003
                while time.perf_counter() < deadline:
                    name = rng.choice(names)
                    i += 1
                    start = time.perf_counter()
                    try:
                        await mcp.call(name, arguments[name](i))
                    except (CallFailed, httpx.HTTPError) as exc:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    latencies.append(time.perf_counter() - start)

            started = time.perf_counter()
            await asyncio.gather(*(client(n) for n in range(size.concurrency_clients)))
            elapsed = time.perf_counter() - started
        rss = server.peak_rss_mb()
    timing = summarize(latencies)
    log = (workdir / f"concurrency-{label}.log").read_text(errors="replace").splitlines()
    server_errors = [line for line in log if "Error" in line and not line.startswith(" ")][:5]
    return {
        "clients": size.concurrency_clients,
        "seconds": elapsed,
        "requests": len(latencies),
        "throughput_rps": len(latencies) / elapsed,
        "errors": len(errors),
        "error_samples": errors[:5],
        "server_error_lines": server_errors,
        "max_ms": max(latencies, default=0) * 1000,
        "median_ms": timing.median_ms,
        "p95_ms": timing.p95_ms,
        "peak_rss_mb": rss,
        "write_share": sum(w for n, w in _MIX if n in _WRITES) / sum(w for _, w in _MIX),
    }


# --- 8. insight -------------------------------------------------------------------------------------

INSIGHT_OPERATIONS: dict[str, dict[str, Any]] = {
    "get_course_insights": {"courseId": loader.INSIGHT_COURSE_ID},
    "find_students_needing_attention": {"courseId": loader.INSIGHT_COURSE_ID},
    "get_community_insights": {"communityId": loader.INSIGHT_COMMUNITY_ID},
    "get_school_report": {},
}
"""Section 8's calls: the large course, the insight community, the whole school (default windows)."""


async def insight(store: Store, tenant: loader.BenchTenant, size: Size, students: int) -> dict:
    """Load the large course (a tenth as many enrollments as `students`, which must be loaded) and
    the insight community, then time the four insight operations in process and count their SQL
    statements."""
    enrollments = loader.insight_enrollments(students)
    started = time.perf_counter()
    await loader.load_insight_course(
        store, tenant, students=students, start=0, stop=enrollments, now=datetime.now(UTC)
    )
    load_seconds = time.perf_counter() - started
    client_server = create_mcp_server(Runtime(store=store), api_key=tenant.key)
    async with Client(client_server) as client:
        calls: dict[str, TimedCall] = {
            name: (lambda i, name=name, arguments=arguments: _sdk_call(client, name, arguments))
            for name, arguments in INSIGHT_OPERATIONS.items()
        }
        timings = await _interleaved(calls, size.insight_calls, rounds=2)
        statements = {}
        for name, arguments in INSIGHT_OPERATIONS.items():
            with store.statements_seen() as seen:
                await _sdk_call(client, name, arguments)
            statements[name] = len(seen)
    return {
        "students": students,
        "enrollments": enrollments,
        "load_seconds": load_seconds,
        "ops": {
            name: {**timing.as_dict(), "statements": statements[name]} for name, timing in timings.items()
        },
    }
