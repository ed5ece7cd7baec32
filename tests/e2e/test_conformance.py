"""The MCP conformance suite (npm `@modelcontextprotocol/conformance`, on Node 22) against a real
`blohko serve --http`: every server scenario that applies to a server of this kind passes.

The suite's client cannot send a header, and `/mcp` needs `Authorization: Bearer`: it talks to
the server through tests/node/bearer_proxy.mjs, a loopback proxy that adds a real API key and
forwards everything else untouched (the Host and Origin headers included, so the DNS-rebinding
scenario still reaches the server's own protection). The server is unchanged and checks the key
on every request.

The scenarios that do not apply are listed in docs/testing.md with the reason; a suite upgrade that
brings a new scenario fails `test_every_scenario_of_the_suite_is_run_or_explained` until it is
run here or explained there.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.support.node_tools import DRIVERS, ROOT
from tests.support.processes import cli_producer_and_key, http_server, migrated_env

APPLICABLE = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "completion-complete",
    "dns-rebinding-protection",
)


@pytest.fixture(scope="module")
def proxied_url(node_tools, tmp_path_factory):
    """`/mcp` of a real HTTP server, through the bearer proxy."""
    env = migrated_env(tmp_path_factory.mktemp("conformance"))
    _, key = cli_producer_and_key(env, "*")
    with http_server(env, tmp_path_factory.mktemp("logs") / "http.log") as server:
        proxy = subprocess.Popen(
            [str(node_tools.node), str(DRIVERS / "bearer_proxy.mjs"), server.url, key],
            env=node_tools.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proxy.stdout is not None  # stdout=PIPE
        try:
            yield json.loads(proxy.stdout.readline())["url"] + "/mcp"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            proxy.stdout.close()


@pytest.mark.parametrize("scenario", APPLICABLE)
def test_conformance_scenario_passes(node_tools, proxied_url, scenario, tmp_path):
    done = node_tools.npx(
        "conformance", "server", "--url", proxied_url, "--scenario", scenario, "-o", tmp_path
    )
    checks = [check for path in tmp_path.glob("*/checks.json") for check in json.loads(path.read_text())]
    report = f"{done.stdout}\n{done.stderr}"
    verdicts = {check["id"]: check["status"] for check in checks if check["status"] != "INFO"}
    assert done.returncode == 0, report
    assert verdicts and set(verdicts.values()) == {"SUCCESS"}, f"{verdicts}\n{report}"


def _suite_scenarios(node_tools) -> set[str]:
    listed = node_tools.npx("conformance", "list", "--server")
    assert listed.returncode == 0, listed.stderr
    return set(re.findall(r"^  - ([a-z0-9-]+)", listed.stdout, re.MULTILINE))


TESTING_DOC = ROOT / "docs" / "testing.md"


def _documented_not_applicable() -> dict[str, str]:
    text = TESTING_DOC.read_text()
    section = text.split("do not apply", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z0-9-]+)` \| (.+?) \|$", section, re.MULTILINE))


def test_every_scenario_of_the_suite_is_run_or_explained(node_tools):
    explained = _documented_not_applicable()
    assert all(len(reason) > 20 for reason in explained.values())
    assert not explained.keys() & set(APPLICABLE)
    assert _suite_scenarios(node_tools) == set(APPLICABLE) | explained.keys()


def test_the_testing_doc_names_the_scenarios_that_run():
    text = TESTING_DOC.read_text()
    for scenario in APPLICABLE:
        assert f"`{scenario}`" in text.split("do not apply", 1)[0], scenario
