"""The benchmark command keeps working: one tiny run, every section written (no pass/fail on ratios)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tools.registry import TOOLS

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_command_runs_at_tiny_size_and_writes_every_section(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--size",
            "tiny",
            "--out",
            str(tmp_path),
            "--postgres-url",
            "none",
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    table = (tmp_path / "latest.md").read_text()
    for key in (
        "overhead",
        "statements",
        "growth",
        "cold_start",
        "concurrency",
        "load",
        "context",
        "insight",
        "targets",
        "machine",
    ):
        assert key in results
    assert set(results["overhead"]) == {"in_process", "http", "stdio"}
    assert results["statements"]["get_student"] >= 1
    # wrk comes from Debian's packages (.ci/run installs it): the load section ran, every call succeeded.
    assert set(results["load"]["rows"]) == {
        "noop (bare MCPServer)",
        "whoami",
        "get_student",
        "get_course",
        "update_progress",
        "create_thread",
    }, results["load"]
    assert all(row["failures"] == 0 and row["requests"] > 0 for row in results["load"]["rows"].values())
    # Section 7's --workers row: a read and a write with 1 and 2 workers, every call succeeded.
    workers = results["load_workers"]
    assert workers["counts"] == [1, 2] and set(workers["rows"]) == {"get_student", "update_progress"}, workers
    for by_count in workers["rows"].values():
        assert set(by_count) == {"1", "2"} and by_count["1"]["ratio"] == 1
        assert all(
            row["failures"] == 0 and row["requests"] > 0 and row["ratio"] > 0 for row in by_count.values()
        )
    assert {"load.workers.get_student", "load.workers.update_progress"} <= {
        t["id"] for t in results["targets"]
    }
    assert results["concurrency"]["sqlite"]["errors"] == 0, results["concurrency"]["sqlite"]["error_samples"]
    assert results["context"]["*"]["tools"] == len(TOOLS)
    # Section 8: the four insight operations, timed on SQLite at the small and the full size.
    insight = results["insight"]
    for students in (insight["small"], insight["full"]):
        run = insight["sqlite"][str(students)]
        assert set(run["ops"]) == {
            "get_course_insights",
            "find_students_needing_attention",
            "get_community_insights",
            "get_school_report",
        }
        assert run["enrollments"] == students // 10
        assert all(row["median_ms"] > 0 and row["statements"] >= 1 for row in run["ops"].values())
    assert "skipped" in insight["postgresql"]  # --postgres-url none
    assert set(insight["ratios"]) == set(insight["sqlite"][str(insight["full"])]["ops"])
    assert any(target["id"].startswith("insight.growth.") for target in results["targets"])
    for heading in (
        "### 1. Overhead",
        "### 2. Growth",
        "### 3. Cold start",
        "### 4. Concurrency",
        "### 6. Context size",
        "### 7. Under load",
        "#### `--workers`",
        "### 8. Insight",
        "### Targets",
    ):
        assert heading in table
