"""7. Under load: the server's CPU per call and its requests per second, against the bare SDK's no-op.

`wrk` (Debian's package, written in C, so it is not the bottleneck) posts one JSON-RPC `tools/call`
per request over `connections` keep-alive connections for `seconds`, first to the bare `MCPServer`
(`bare_server.py`), then to `blohko serve --http`, one operation at a time, in the same run. The
server's CPU comes from `/proc/<pid>/stat` before and after, so the load generator's own cost does
not count; CPU per call is that divided by the calls served. A Lua hook counts answers that are not
a successful tool result, so a fast error is never mistaken for a fast call.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks import loader
from benchmarks.processes import bare_http_server, http_server, server_env
from storage.engine import Store

__all__ = ["WORKER_OPERATIONS", "WRK", "cpu_seconds", "load", "load_with_workers"]

WRK = shutil.which("wrk")

NOOP = "noop (bare MCPServer)"
READS = ("whoami", "get_student", "get_course")
WRITES = ("update_progress", "create_thread")
WORKER_OPERATIONS = ("get_student", "update_progress")
"""Measured with `--workers 1` and `--workers 2` (the row `--workers`): a read and a write."""
WORKER_COUNTS = (1, 2)

# Counts answers that are not a tool's success (HTTP error, JSON-RPC error, isError result) and
# prints them with the total when the run is done, in a line `_wrk` reads.
_LUA = """
wrk.method = "POST"
wrk.body = %(body)s
%(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failures = 0 end
function response(status, headers, body)
  if status ~= 200 or body:find('"isError":true', 1, true) or body:find('"error":{', 1, true) then
    failures = failures + 1
  end
end
function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  io.write(string.format("BLOHKO requests=%%d failures=%%d p50=%%d p99=%%d\\n", summary.requests, failed,
    latency:percentile(50), latency:percentile(99)))
end
"""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds `pid` has used so far (`/proc/<pid>/stat` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def _script(workdir: Path, name: str, body: dict, headers: dict[str, str]) -> Path:
    path = workdir / f"wrk-{name}.lua"
    header_lines = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    path.write_text(_LUA % {"body": _lua_string(json.dumps(body)), "headers": header_lines})
    return path


def _wrk(url: str, script: Path, *, connections: int, seconds: float) -> dict:
    command = [
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    summary = re.search(r"BLOHKO requests=(\d+) failures=(\d+) p50=(\d+) p99=(\d+)", done.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if summary is None or rate is None:
        raise RuntimeError(f"wrk printed no summary: {done.stdout}\n{done.stderr}")
    requests, failures, p50_us, p99_us = (int(group) for group in summary.groups())
    return {
        "requests": requests,
        "failures": failures,
        "rps": float(rate.group(1)),
        "median_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
    }


def _measured(pids: list[int], url: str, script: Path, *, connections: int, seconds: float) -> dict:
    """One wrk run after a warm-up; the CPU of `pids` (the server's processes) per call."""
    _wrk(
        url, script, connections=connections, seconds=1
    )  # warm-up: connections, caches, JIT-free but lazy imports
    before = sum(cpu_seconds(pid) for pid in pids)
    row = _wrk(url, script, connections=connections, seconds=seconds)
    used = sum(cpu_seconds(pid) for pid in pids) - before
    return {**row, "cpu_ms_per_call": used * 1000 / max(1, row["requests"])}


def _call(name: str, arguments: dict[str, Any]) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def _arguments(tenant: loader.BenchTenant) -> dict[str, dict]:
    return {
        "whoami": {},
        "get_student": {"studentId": loader.student_id(7)},
        "get_course": {"courseId": loader.OVERHEAD_COURSE_ID},
        "update_progress": {
            "enrollmentId": loader.enrollment_id(7),
            "lessonId": loader.lesson_id(0, 1, 2),
            "completed": False,
            "watchedSeconds": 30,
        },
        "create_thread": {
            "communityId": loader.COMMUNITY_ID,
            "title": "Load thread",
            "content": "Measured.",
            "userId": tenant.owner_user_id,
        },
    }


async def load(
    store: Store, tenant: loader.BenchTenant, *, connections: int, seconds: float, workdir: Path
) -> dict:
    """CPU per call and requests/s of each operation and of the bare no-op, with ratios to the no-op."""
    if WRK is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    rows: dict[str, dict] = {}
    with bare_http_server(workdir / "load-bare.log") as bare:
        script = _script(workdir, "noop", _call("noop", {}), headers)
        rows[NOOP] = _measured(
            [bare.process.pid], f"{bare.url}/mcp", script, connections=connections, seconds=seconds
        )
    with http_server(server_env(store.url), workdir / "load-blohko.log") as server:
        keyed = {**headers, "Authorization": f"Bearer {tenant.key}"}
        for name, arguments in _arguments(tenant).items():
            script = _script(workdir, name, _call(name, arguments), keyed)
            rows[name] = _measured(
                [server.process.pid], f"{server.url}/mcp", script, connections=connections, seconds=seconds
            )
    floor = rows[NOOP]
    for row in rows.values():
        row["cpu_ratio"] = row["cpu_ms_per_call"] / floor["cpu_ms_per_call"]
        row["rps_share"] = row["rps"] / floor["rps"]
    return {"connections": connections, "seconds": seconds, "rows": rows}


async def load_with_workers(
    store: Store, tenant: loader.BenchTenant, *, connections: int, seconds: float, rounds: int, workdir: Path
) -> dict:
    """Requests/s of a read and a write (`WORKER_OPERATIONS`) served by `blohko serve --http
    --workers N` for each N of `WORKER_COUNTS`, and each count's ratio to one worker's.

    The servers run side by side on the same database (an idle one costs nothing) and are loaded
    in turn, `rounds` times: a machine whose load drifts (other work on it) shifts every count
    alike, and each count keeps its median round. CPU counts every process of the server (the
    supervisor and its workers)."""
    if WRK is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {tenant.key}",
    }
    arguments = _arguments(tenant)
    measured: dict[str, dict[str, list[dict]]] = {
        name: {str(n): [] for n in WORKER_COUNTS} for name in WORKER_OPERATIONS
    }
    with ExitStack() as servers:
        started = {
            count: servers.enter_context(
                http_server(server_env(store.url), workdir / f"load-workers-{count}.log", workers=count)
            )
            for count in WORKER_COUNTS
        }
        for name in WORKER_OPERATIONS:
            script = _script(workdir, f"{name}-workers", _call(name, arguments[name]), headers)
            for _ in range(rounds):
                for count, server in started.items():
                    pids = [server.process.pid, *server.worker_pids()]
                    measured[name][str(count)].append(
                        _measured(pids, f"{server.url}/mcp", script, connections=connections, seconds=seconds)
                    )
    rows: dict[str, dict[str, dict]] = {}
    for name, by_count in measured.items():
        rows[name] = {}
        for count, runs in by_count.items():
            median = sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]
            rows[name][count] = {
                **median,
                "rounds_rps": [run["rps"] for run in runs],
                "failures": sum(run["failures"] for run in runs),
            }
        one = rows[name][str(WORKER_COUNTS[0])]["rps"]
        for row in rows[name].values():
            row["ratio"] = row["rps"] / one
    return {
        "connections": connections,
        "seconds": seconds,
        "rounds": rounds,
        "counts": list(WORKER_COUNTS),
        "rows": rows,
    }
