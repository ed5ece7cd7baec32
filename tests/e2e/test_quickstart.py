"""The README's quickstart, from a clean environment: its first command serves the demo with only
what serving needs (no pytest, Playwright or schemathesis: they are the `dev` group, 88 packages
against 45), and the test command (`scripts/test`) still installs everything the suite needs.

Both run `uv` into an environment of their own (`UV_PROJECT_ENVIRONMENT`) offline, from the uv
cache that the suite's own `uv sync` filled: nothing is downloaded."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from server.demo_school import DEMO_STUDENT_COUNT
from tests.support.processes import Server, free_port, wait_ready
from tests.support.text import match_in

ROOT = Path(__file__).resolve().parents[2]

QUICKSTART_SERVE = "uv run --no-dev blohko demo"
"""The quickstart's first command after installing uv (README.md, "Quickstart"):
`python3 -m pip install -q uv && uv run --no-dev blohko demo`."""

DEV_ONLY = {
    "pytest",
    "pytest-xdist",
    "playwright",
    "schemathesis",
    "hypothesis",
    "pyinstrument",
    "openapi-python-client",
}
"""Test tooling that nothing serving needs."""


def _uv() -> str:
    found = shutil.which("uv")
    assert found, "uv is not on PATH: the README's commands install it (python3 -m pip install uv)"
    return found


def _uv_env(environment: Path, **extra: str) -> dict[str, str]:
    """An environment for `uv` that syncs into `environment`, offline (the cache has every package),
    with none of this run's uv, virtual environment or Blohko settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV", "BLOHKO_"))}
    return {
        **env,
        "UV_PROJECT_ENVIRONMENT": str(environment),
        "UV_OFFLINE": "1",
        "UV_PYTHON": _base_python(),
        **extra,
    }


def _base_python() -> str:
    """This interpreter's version, so the new environment is made with the same Python offline."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _installed(environment: Path) -> set[str]:
    listed = subprocess.run(
        [_uv(), "pip", "list", "--format", "freeze", "--python", str(environment / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=_uv_env(environment),
    )
    return {
        re.split(r"[=@ ]", line, maxsplit=1)[0].lower() for line in listed.stdout.splitlines() if line.strip()
    }


def test_the_quickstart_serves_the_demo_without_installing_the_test_tooling(tmp_path):
    lock_before = (ROOT / "uv.lock").read_bytes()
    environment = tmp_path / "quickstart-env"
    port = free_port()
    env = _uv_env(
        environment,
        BLOHKO_DATABASE_URL=f"sqlite:///{tmp_path / 'blohko.db'}",
        BLOHKO_PORT=str(port),
    )
    log = tmp_path / "quickstart.log"
    with log.open("w") as output:
        # Its own session: `uv run` and the `blohko` it starts are stopped together.
        process = subprocess.Popen(
            shlex.split(QUICKSTART_SERVE),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log), timeout=300)
            key = match_in(r"blk_[A-Za-z0-9_-]{43}", log.read_text()).group()
            students = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/students",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert (
                students.status_code == 200 and students.json()["pagination"]["total"] == DEMO_STUDENT_COUNT
            )
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    installed = _installed(environment)
    assert "blohko-mcp" in installed and "uvicorn" in installed
    assert installed & DEV_ONLY == set()
    for module in ("pytest", "playwright", "schemathesis"):
        found = subprocess.run(
            [str(environment / "bin" / "python"), "-c", f"import {module}"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert found.returncode != 0, f"{module} is importable in the quickstart's environment"
    assert (ROOT / "uv.lock").read_bytes() == lock_before  # the quickstart re-locks nothing


def test_the_test_command_installs_everything_the_suite_needs(tmp_path):
    """`scripts/test` syncs with the `dev` group: the line it runs, into an environment of its own."""
    sync = next(
        line.strip()
        for line in (ROOT / "scripts" / "test").read_text().splitlines()
        if line.startswith("uv sync")
    )
    environment = tmp_path / "test-env"
    subprocess.run(
        shlex.split(sync), cwd=ROOT, env=_uv_env(environment), check=True, capture_output=True, timeout=600
    )
    assert _installed(environment) >= DEV_ONLY


def test_the_readme_quickstart_is_the_command_tested_here():
    """The two commands under "Quickstart" are the ones these tests run: a README edit that changes
    them without this file fails here."""
    readme = (ROOT / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart") : readme.index("## Connect a client")]
    commands = re.findall(r"```sh\n(.*?)\n```", quickstart, re.DOTALL)
    assert commands[0] == f"python3 -m pip install -q uv && {QUICKSTART_SERVE}"
    assert commands[1] == "python3 -m pip install --quiet uv && scripts/test"
