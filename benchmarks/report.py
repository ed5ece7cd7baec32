"""Targets, and the Markdown table of one run."""

from __future__ import annotations

from benchmarks.load import NOOP, WRITES
from benchmarks.notes import NOTES

__all__ = ["evaluate", "markdown", "workers_table", "workers_targets"]

OVERHEAD_LIMITS = {"in_process": 3.0, "http": 1.5, "stdio": 1.5}
"""Latency of a call over the no-op's, same transport (median over median)."""
STATEMENT_LIMITS = {"update_progress": 5, "create_thread": 5}
"""SQL statements per call, authentication included; any other operation benchmarked is a read."""
READ_STATEMENTS = 2
CPU_LIMITS = {"read": 1.5, "write": 2.5}
"""Server CPU per call under load over the bare server's no-op."""
RPS_SHARES = {"read": 0.6, "write": 0.3}
"""Requests per second under load as a share of the bare server's no-op (at least)."""
WORKERS_RATIOS = {"read": 1.3, "write": 1.0}
"""Requests per second with `--workers 2` over one worker's (at least), on the project's 2-core
machine, where `wrk` takes part of a core: reads run in parallel; SQLite writes take turns."""
GROWTH_LIMIT = 2.0
COLD_LIMIT = 1.3
RSS_LIMIT_MB = 200.0
INSIGHT_LIMIT_MS = 100.0
"""Median of each insight operation at the full size (section 8), per engine."""


def _target(
    target_id: str, what: str, value: float | None, limit: float, *, lower_is_better: bool = True
) -> dict:
    met = value is not None and (value <= limit if lower_is_better else value >= limit)
    return {
        "id": target_id,
        "what": what,
        "value": value,
        "limit": limit,
        "met": met,
        "note": None if met else NOTES.get(target_id, "cause not profiled yet"),
    }


def evaluate(results: dict) -> list[dict]:
    targets = []
    for transport, limit in OVERHEAD_LIMITS.items():
        for name, row in results["overhead"][transport].items():
            if name.startswith("noop"):
                continue
            targets.append(
                _target(
                    f"overhead.{transport}.{name}",
                    f"overhead {name} ({transport})",
                    row["ratio_median"],
                    limit,
                )
            )
    for name, count in results["statements"].items():
        targets.append(
            _target(
                f"statements.{name}",
                f"SQL statements of {name}",
                count,
                STATEMENT_LIMITS.get(name, READ_STATEMENTS),
            )
        )
    for name, row in results["load"].get("rows", {}).items():
        if name == NOOP:
            continue
        kind = "write" if name in WRITES else "read"
        targets.append(
            _target(
                f"load.cpu.{name}",
                f"server CPU per call under load, {name}",
                row["cpu_ratio"],
                CPU_LIMITS[kind],
            )
        )
        targets.append(
            _target(
                f"load.rps.{name}",
                f"requests/s under load, {name}, share of the no-op's",
                row["rps_share"],
                RPS_SHARES[kind],
                lower_is_better=False,
            )
        )
    targets += workers_targets(results.get("load_workers", {}))
    if "rows" in results["load"]:  # a fast failure is no fast call
        failed = sum(row["failures"] for row in results["load"]["rows"].values())
        targets.append(_target("load.failures", "failed calls under load", failed, 0))
    for name, ratio in results["growth"]["ratios"].items():
        targets.append(_target(f"growth.{name}", f"growth {name}", ratio, GROWTH_LIMIT))
    targets.append(_target("cold_start", "cold start ratio", results["cold_start"]["ratio"], COLD_LIMIT))
    for engine, row in results["concurrency"].items():
        if "errors" in row:
            targets.append(
                _target(
                    f"concurrency.{engine}.errors", f"errors under concurrency ({engine})", row["errors"], 0
                )
            )
    targets += _insight_targets(results["insight"])
    largest = str(results["growth"]["sizes"][-1])
    rss = max(
        results["growth"]["per_size"][largest]["peak_rss_mb"],
        *(row["peak_rss_mb"] for row in results["concurrency"].values() if "peak_rss_mb" in row),
    )
    targets.append(
        _target("memory", f"peak server RSS (growth at {largest} and concurrency)", rss, RSS_LIMIT_MB)
    )
    return targets


def _insight_targets(insight: dict) -> list[dict]:
    targets = []
    measured = {"sqlite": insight["sqlite"][str(insight["full"])]}
    if "ops" in insight["postgresql"]:
        measured["postgresql"] = insight["postgresql"]
    for engine, run in measured.items():
        for name, row in run["ops"].items():
            targets.append(
                _target(
                    f"insight.{engine}.{name}",
                    f"{name} median ms ({engine}, {_size(run['students'])} students, "
                    f"{_size(run['enrollments'])} enrollments in its course)",
                    row["median_ms"],
                    INSIGHT_LIMIT_MS,
                )
            )
    for name, ratio in insight["ratios"].items():
        targets.append(
            _target(
                f"insight.growth.{name}",
                f"growth {name} (SQLite, {_size(insight['full'])}/{_size(insight['small'])} students)",
                ratio,
                GROWTH_LIMIT,
            )
        )
    return targets


def workers_targets(measured: dict) -> list[dict]:
    """`--workers 2` over one worker, per operation; and no failed call with either count."""
    if "rows" not in measured:
        return []
    top = str(measured["counts"][-1])
    targets = [
        _target(
            f"load.workers.{name}",
            f"requests/s with --workers {top} over one worker's, {name}",
            by_count[top]["ratio"],
            WORKERS_RATIOS["write" if name in WRITES else "read"],
            lower_is_better=False,
        )
        for name, by_count in measured["rows"].items()
    ]
    failed = sum(row["failures"] for by_count in measured["rows"].values() for row in by_count.values())
    return [*targets, _target("load.workers.failures", "failed calls under load with workers", failed, 0)]


def workers_table(measured: dict, targets: dict[str, dict]) -> list[str]:
    """Section 7's `--workers` row: each operation's requests/s with each worker count, and the ratio."""
    out = ["", "#### `--workers`: the same load on `blohko serve --http --workers N`", ""]
    if "skipped" in measured:
        return [*out, f"Skipped: {measured['skipped']}."]
    counts = [str(count) for count in measured["counts"]]
    out += [
        (
            f"{measured['connections']} connections, {measured['seconds']:g} s each; one server per count, side by "
            f"side on the same SQLite file, loaded in turn {measured['rounds']} times (the median round is shown, "
            f"every round's requests/s is in latest.json); CPU counts the supervisor and its workers. "
            f"Targets: {counts[-1]} workers reach "
            f"{WORKERS_RATIOS['read']:g}x one worker's requests/s for reads, {WORKERS_RATIOS['write']:g}x for writes."
        ),
        "",
        "| operation | "
        + " | ".join(f"{count} worker{'s' if count != '1' else ''}: requests/s" for count in counts)
        + f" | ratio | CPU ms / call ({' / '.join(counts)}) | failed | target |",
        "|---|" + "---|" * len(counts) + "---|---|---|---|",
    ]
    for name, by_count in measured["rows"].items():
        rates = " | ".join(f"{by_count[count]['rps']:.0f}" for count in counts)
        cpu = " / ".join(_n(by_count[count]["cpu_ms_per_call"]) for count in counts)
        failed = sum(row["failures"] for row in by_count.values())
        target = targets.get(f"load.workers.{name}")
        mark = _mark(target) if target else ""
        out.append(f"| {name} | {rates} | {_n(by_count[counts[-1]]['ratio'])} | {cpu} | {failed} | {mark} |")
    return out


def _mark(target: dict) -> str:
    return "met" if target["met"] else "**MISSED**"


def _n(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _size(n: int) -> str:
    return (
        f"{n // 1_000_000}M"
        if n >= 1_000_000 and n % 1_000_000 == 0
        else (f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))
    )


def markdown(results: dict) -> str:
    targets = {t["id"]: t for t in results["targets"]}
    m = results["machine"]
    out = [
        (
            f"Size `{results['size']}`, run {results['started']} in {results['duration_s']:.0f} s on "
            f"{m['cpus']} CPU ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
            f"SQLite {m['sqlite']}{', ' + results['postgresql'] if results.get('postgresql') else ''}. "
            "Times in ms (median / p95); ratios divide medians measured in this run. "
            "Servers run with `BLOHKO_RATE_LIMIT_PER_MINUTE=0`."
        ),
        "",
    ]

    out += [
        "### 1. Overhead vs the SDK floor (no-op tool on a bare `MCPServer`, same transport)",
        "",
        "| operation | in-process | ratio | HTTP | ratio | stdio | ratio | targets <= 3 / 1.5 / 1.5 | SQL statements |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    overhead = results["overhead"]
    for name in overhead["in_process"]:
        cells = []
        for transport in OVERHEAD_LIMITS:
            row = overhead[transport][name]
            ratio = "1" if name.startswith("noop") else _n(row["ratio_median"])
            cells.append(f"{_n(row['median_ms'])} / {_n(row['p95_ms'])} | {ratio}")
        if name.startswith("noop"):
            out.append(f"| {name} | {' | '.join(cells)} | | |")
            continue
        marks = ", ".join(_mark(targets[f"overhead.{transport}.{name}"]) for transport in OVERHEAD_LIMITS)
        statements = targets[f"statements.{name}"]
        out.append(
            f"| {name} | {' | '.join(cells)} | {marks} | {statements['value']} "
            f"(<= {statements['limit']}: {_mark(statements)}) |"
        )

    growth = results["growth"]
    sizes = growth["sizes"]
    ratio_label = f"{_size(sizes[-1])}/{_size(sizes[0])}"
    out += [
        "",
        f"### 2. Growth (SQLite, in-process; students {', '.join(_size(s) for s in sizes)})",
        "",
        f"| operation | {' | '.join(_size(s) for s in sizes)} | {ratio_label} | target <= 2 |",
        f"|---|{'---|' * len(sizes)}---|---|",
    ]
    for name, ratio in growth["ratios"].items():
        cells = [
            f"{_n(growth['per_size'][str(s)]['ops'][name]['median_ms'])} / "
            f"{_n(growth['per_size'][str(s)]['ops'][name]['p95_ms'])}"
            for s in sizes
        ]
        out.append(f"| {name} | {' | '.join(cells)} | {_n(ratio)} | {_mark(targets[f'growth.{name}'])} |")
    loads = ", ".join(f"{_size(s)}: {growth['per_size'][str(s)]['load_seconds']:.0f} s" for s in sizes)
    rss = growth["per_size"][str(sizes[-1])]["peak_rss_mb"]
    out += [
        "",
        (
            f"Bulk load (cumulative steps): {loads}. Peak RSS of `blohko serve --http` serving these "
            f"operations at {_size(sizes[-1])} students: {rss:.0f} MB."
        ),
    ]

    cold = results["cold_start"]
    out += [
        "",
        "### 3. Cold start (launch over stdio to the first `tools/list` answer)",
        "",
        "| server | median / p95 ms | ratio | target <= 1.3 |",
        "|---|---|---|---|",
        f"| bare `MCPServer`, one tool | {_n(cold['bare']['median_ms'], 0)} / {_n(cold['bare']['p95_ms'], 0)} | 1 | |",
        (
            f"| `blohko serve` | {_n(cold['blohko']['median_ms'], 0)} / {_n(cold['blohko']['p95_ms'], 0)} | "
            f"{_n(cold['ratio'])} | {_mark(targets['cold_start'])} |"
        ),
    ]

    out += [
        "",
        "### 4. Concurrency (HTTP, 70% reads / 30% writes) and 5. memory",
        "",
        "| engine | clients | seconds | requests/s | errors | median / p95 ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine, row in results["concurrency"].items():
        if "skipped" in row:
            out.append(f"| {engine} | skipped: {row['skipped']} | | | | | |")
            continue
        mark = _mark(targets[f"concurrency.{engine}.errors"])
        out.append(
            f"| {engine} | {row['clients']} | {row['seconds']:.0f} | {row['throughput_rps']:.0f} | "
            f"{row['errors']} ({mark}) | {_n(row['median_ms'], 1)} / {_n(row['p95_ms'], 1)} | "
            f"{row['peak_rss_mb']:.0f} |"
        )
    mem = targets["memory"]
    out += [
        "",
        f"Peak server RSS over growth and concurrency: {mem['value']:.0f} MB (target < 200 MB: {_mark(mem)}).",
    ]

    out += [
        "",
        "### 6. Context size (`tools/list` response bytes over HTTP, per key permission)",
        "",
        "| permission | tools | bytes |",
        "|---|---|---|",
    ]
    for permission, row in results["context"].items():
        out.append(f"| `{permission}` | {row['tools']} | {row['bytes']:,} |")

    load = results["load"]
    out += ["", "### 7. Under load (`wrk`, HTTP, one operation at a time; server CPU from /proc)", ""]
    if "skipped" in load:
        out.append(f"Skipped: {load['skipped']}.")
    else:
        out += [
            (
                f"{load['connections']} connections, {load['seconds']:g} s each. Targets: CPU per call <= 1.5x the "
                "no-op's for reads, 2.5x for writes; requests/s >= 60% of the no-op's for reads, 30% for writes."
            ),
            "",
            "| operation | requests/s | share | CPU ms / call | ratio | median / p99 ms | failed | targets |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in load["rows"].items():
            marks = (
                ""
                if name == NOOP
                else f"{_mark(targets[f'load.cpu.{name}'])}, {_mark(targets[f'load.rps.{name}'])}"
            )
            out.append(
                f"| {name} | {row['rps']:.0f} | {_n(row['rps_share'])} | {_n(row['cpu_ms_per_call'])} | "
                f"{_n(row['cpu_ratio'])} | {_n(row['median_ms'], 1)} / {_n(row['p99_ms'], 1)} | "
                f"{row['failures']} | {marks} |"
            )

    if "load_workers" in results:
        out += workers_table(results["load_workers"], targets)

    out += _insight_table(results["insight"], targets)

    missed = [t for t in results["targets"] if not t["met"]]
    out += ["", f"### Targets: {len(results['targets']) - len(missed)} met, {len(missed)} missed", ""]
    for target in missed:
        value = "n/a" if target["value"] is None else _n(target["value"])
        out.append(f"- **MISSED** {target['what']}: {value} (limit {target['limit']}). {target['note']}")
    if not missed:
        out.append("Every target is met.")
    return "\n".join(out) + "\n"


def _insight_table(insight: dict, targets: dict[str, dict]) -> list[str]:
    small, full = insight["small"], insight["full"]
    runs = {f"SQLite {_size(small)}": insight["sqlite"][str(small)]}
    runs[f"SQLite {_size(full)}"] = insight["sqlite"][str(full)]
    postgres = insight["postgresql"]
    if "ops" in postgres:
        runs[f"PostgreSQL {_size(postgres['students'])}"] = postgres
    shape = ", ".join(
        f"{label}: {_size(run['enrollments'])} enrollments, loaded in {run['load_seconds']:.0f} s"
        for label, run in runs.items()
    )
    out = [
        "",
        "### 8. Insight (in-process; one large course, a tenth as many enrollments as students)",
        "",
        (
            f"Students: {shape}. Targets: median < {INSIGHT_LIMIT_MS:g} ms at the full size on each "
            f"engine, growth {_size(full)}/{_size(small)} (SQLite) <= {GROWTH_LIMIT:g}."
        ),
        "",
        (
            f"| operation | {' | '.join(runs)} | {_size(full)}/{_size(small)} | "
            f"targets (< 100 ms per full-size engine; <= 2) | SQL statements |"
        ),
        f"|---|{'---|' * len(runs)}---|---|---|",
    ]
    for name, ratio in insight["ratios"].items():
        cells = [
            f"{_n(run['ops'][name]['median_ms'])} / {_n(run['ops'][name]['p95_ms'])}" for run in runs.values()
        ]
        engines = ["sqlite", "postgresql"] if "ops" in postgres else ["sqlite"]
        marks = ", ".join(
            _mark(targets[target])
            for target in [*(f"insight.{engine}.{name}" for engine in engines), f"insight.growth.{name}"]
        )
        statements = {run["ops"][name]["statements"] for run in runs.values()}
        out.append(
            f"| {name} | {' | '.join(cells)} | {_n(ratio)} | {marks} | "
            f"{' / '.join(str(count) for count in sorted(statements))} |"
        )
    if "skipped" in postgres:
        out += ["", f"PostgreSQL skipped: {postgres['skipped']}."]
    return out
