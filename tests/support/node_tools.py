"""The Node tools the suite runs against Blohko (package.json: the MCPB CLI, the TypeScript SDK,
the Inspector CLI, the conformance suite, and Node 22 itself as the `node` npm package).

`node_modules` is installed from package-lock.json by `npm ci` the first time a test needs it,
and again only when package.json or the lock file changes. Every Node process runs with
`node_modules/.bin` first on PATH, as `npx` does, so `node` there is the locked Node 22.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
DRIVERS = Path(__file__).resolve().parents[1] / "node"
_STAMP = NODE_MODULES / ".blohko-installed"


@dataclass(frozen=True)
class NodeTools:
    node: Path
    env: dict[str, str]

    def run(
        self, *args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120
    ):
        """Run a Node program (a path) or an `npx --no-install` command (a name); never downloads."""
        return subprocess.run(
            [str(arg) for arg in args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def npx(self, *args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
        return self.run("npx", "--no-install", *args, **kwargs)

    def script(self, name: str, *args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
        return self.run(self.node, DRIVERS / name, *args, **kwargs)


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


@contextmanager
def _one_installer() -> Iterator[None]:
    """Test processes of this checkout (xdist workers, the SQLite and PostgreSQL passes) check and
    install node_modules one at a time: two `npm ci` at once would delete each other's files."""
    name = f"blohko-node-tools-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]}.lock"
    with open(Path(tempfile.gettempdir()) / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install_node_tools() -> NodeTools:
    """`npm ci` when node_modules is missing or stale; skips only when Node itself is absent."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node is not installed")
    digest = _lock_digest()
    with _one_installer():
        if not _STAMP.exists() or _STAMP.read_text() != digest:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=ROOT,
                check=False,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
            _STAMP.write_text(digest)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BLOHKO_")}
    env["PATH"] = f"{NODE_MODULES / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NODE_OPTIONS", None)
    tools = NodeTools(node=NODE_MODULES / ".bin" / "node", env=env)
    version = tools.run(tools.node, "--version").stdout.strip()
    assert version.startswith("v22."), (
        f"node_modules/.bin/node is {version!r}, expected Node 22 (npm package node@22)"
    )
    return tools


def json_output(done: subprocess.CompletedProcess[str]) -> dict:
    """The JSON a Node program printed, or a failure that shows what it said."""
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return json.loads(done.stdout)
