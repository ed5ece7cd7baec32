"""`python -m benchmarks [--size tiny|full] [--out DIR] [--postgres-url URL|none] [--docs] [--only workers]`.

Writes `latest.md` (the table) and `latest.json` (every number) to DIR (default
`benchmarks/results`); with `--docs`, also the results in `docs/benchmarks.md`. Every database it
makes lives in a temp dir or is a PostgreSQL database of its own, dropped at the end.
`--only workers` measures section 7's `--workers` row alone (a minute at the full size) and prints
it, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import asyncpg
from sqlalchemy.engine import make_url

from benchmarks import loader, scenarios
from benchmarks.load import load, load_with_workers
from benchmarks.machine import machine
from benchmarks.report import evaluate, markdown, workers_table, workers_targets
from storage.engine import open_store
from storage.migrate import upgrade_async

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


@asynccontextmanager
async def _fresh_store(url: str, students: int):
    """A migrated store holding the benchmark tenant, `students` students and the overhead course."""
    await upgrade_async(url)
    async with open_store(url) as store:
        tenant = await loader.create_tenant(store)
        await loader.add_overhead_course(store, tenant)
        if students:
            await loader.load_students(store, tenant, 0, students)
        yield store, tenant


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _postgres_version(admin_url: str) -> str:
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        return "PostgreSQL " + (await connection.fetchval("SHOW server_version")).split()[0]
    finally:
        await connection.close()


async def run(size: scenarios.Size, workdir: Path, postgres_url: str | None) -> dict:
    started = time.perf_counter()
    results: dict = {
        "size": size.name,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }

    _log("overhead, context size and cold start (SQLite)")
    async with _fresh_store(f"sqlite:///{workdir / 'base.db'}", size.base_students) as (
        store,
        tenant,
    ):
        measured = await scenarios.overhead(store, tenant, size, workdir)
        results["context"] = measured.pop("context")
        results["statements"] = measured.pop("statements")
        results["overhead"] = measured
        results["cold_start"] = await scenarios.cold_start(store, tenant, size)
        _log("under load (wrk, SQLite)")
        results["load"] = await load(
            store, tenant, connections=size.concurrency_clients, seconds=size.wrk_seconds, workdir=workdir
        )
        _log("under load with --workers 1 and 2 (wrk, SQLite)")
        results["load_workers"] = await _load_with_workers(store, tenant, size, workdir)

    _log("growth (SQLite)")
    small, full = size.growth_sizes[0], size.growth_sizes[-1]
    insight: dict = {"sqlite": {}, "small": small, "full": full}
    async with _fresh_store(f"sqlite:///{workdir / 'growth.db'}", 0) as (store, tenant):
        results["growth"] = await scenarios.growth(store, tenant, size, workdir)
        _log(f"insight at {full} students (SQLite, the growth database)")
        insight["sqlite"][str(full)] = await scenarios.insight(store, tenant, size, full)
    (workdir / "growth.db").unlink()
    _log(f"insight at {small} students (SQLite)")
    async with _fresh_store(f"sqlite:///{workdir / 'insight.db'}", small) as (store, tenant):
        insight["sqlite"][str(small)] = await scenarios.insight(store, tenant, size, small)
    (workdir / "insight.db").unlink()
    insight["ratios"] = {
        name: row["median_ms"] / insight["sqlite"][str(small)]["ops"][name]["median_ms"]
        for name, row in insight["sqlite"][str(full)]["ops"].items()
    }
    results["insight"] = insight

    results["concurrency"] = {}
    _log("concurrency (SQLite)")
    async with _fresh_store(f"sqlite:///{workdir / 'concurrency.db'}", size.concurrency_students) as (
        store,
        tenant,
    ):
        results["concurrency"]["sqlite"] = await scenarios.concurrency(store, tenant, size, workdir, "sqlite")

    if postgres_url is None:
        results["concurrency"]["postgresql"] = {"skipped": "no PostgreSQL URL given"}
    else:
        try:
            results["postgresql"] = await _postgres_version(postgres_url)
        except (OSError, asyncpg.PostgresError) as exc:
            results["concurrency"]["postgresql"] = {
                "skipped": f"PostgreSQL unreachable ({type(exc).__name__})"
            }
        else:
            _log("concurrency (PostgreSQL)")
            name = f"blohko_bench_{secrets.token_hex(4)}"
            await _postgres(postgres_url, f'CREATE DATABASE "{name}"')
            try:
                url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
                async with _fresh_store(url, size.concurrency_students) as (store, tenant):
                    results["concurrency"]["postgresql"] = await scenarios.concurrency(
                        store, tenant, size, workdir, "postgresql"
                    )
            finally:
                await _postgres(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            students = size.insight_postgres_students
            _log(f"insight at {students} students (PostgreSQL)")
            name = f"blohko_bench_{secrets.token_hex(4)}"
            await _postgres(postgres_url, f'CREATE DATABASE "{name}"')
            try:
                url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
                async with _fresh_store(url, students) as (store, tenant):
                    insight["postgresql"] = await scenarios.insight(store, tenant, size, students)
            finally:
                await _postgres(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if "postgresql" not in insight:
        insight["postgresql"] = results["concurrency"]["postgresql"]  # why it was skipped

    results["duration_s"] = time.perf_counter() - started
    results["targets"] = evaluate(results)
    return results


async def _load_with_workers(store, tenant: loader.BenchTenant, size: scenarios.Size, workdir: Path) -> dict:
    """Section 7's `--workers` row, at `size`."""
    return await load_with_workers(
        store,
        tenant,
        connections=size.concurrency_clients,
        seconds=size.wrk_seconds,
        rounds=size.worker_rounds,
        workdir=workdir,
    )


async def run_workers_only(size: scenarios.Size, workdir: Path) -> str:
    """Section 7's `--workers` row alone, on the database section 7 uses; its table."""
    async with _fresh_store(f"sqlite:///{workdir / 'base.db'}", size.base_students) as (store, tenant):
        measured = await _load_with_workers(store, tenant, size, workdir)
    targets = {target["id"]: target for target in workers_targets(measured)}
    lines = workers_table(measured, targets)
    lines += [
        f"- **MISSED** {t['what']}: {_n(t['value'])} (limit {t['limit']})"
        for t in targets.values()
        if not t["met"]
    ]
    return "\n".join(lines).lstrip() + "\n"


def _n(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


_DOCS = Path(__file__).parent.parent / "docs" / "benchmarks.md"
_DOCS_BLOCK = re.compile(r"(<!-- benchmarks -->\n).*?(<!-- /benchmarks -->)", re.DOTALL)


def _update_docs(table: str) -> None:
    text = _DOCS.read_text()
    if not _DOCS_BLOCK.search(text):
        raise SystemExit("docs/benchmarks.md lost its <!-- benchmarks --> markers")
    _DOCS.write_text(_DOCS_BLOCK.sub(lambda m: m.group(1) + table + m.group(2), text, count=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--size", choices=sorted(scenarios.SIZES), default="full")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BLOHKO_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="an admin URL to create (and drop) a benchmark database; 'none' skips PostgreSQL",
    )
    parser.add_argument(
        "--docs", action="store_true", help="replace the results in docs/benchmarks.md with this run's"
    )
    parser.add_argument(
        "--only",
        choices=["workers"],
        help="measure one part alone and print it, writing nothing: workers, section 7's --workers row",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    postgres_url = None if args.postgres_url.lower() == "none" else args.postgres_url
    workdir = Path(tempfile.mkdtemp(prefix="blohko-bench-"))
    if args.only == "workers":
        try:
            sys.stdout.write(anyio.run(run_workers_only, scenarios.SIZES[args.size], workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    try:
        results = anyio.run(run, scenarios.SIZES[args.size], workdir, postgres_url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "latest.md").write_text(table)
    sys.stdout.write(table)
    if args.docs:
        _update_docs(table)
    _log(f"done in {results['duration_s']:.0f} s; wrote {args.out / 'latest.md'} and latest.json")


if __name__ == "__main__":
    main()
