"""How users install Blohko: the MCP Bundle (manifest.json, checked and packed by the `mcpb` CLI,
then launched as a desktop host would) and the MCP registry entry (server.json).

server.json is validated against tests/schemas/server.schema.2025-12-11.json: the registry's
published schema (https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json),
which this machine cannot download; the copy comes from the PyPI package mcp-registry-sdk 0.1.0
(MIT), file mcpreg/_spec/server.schema.snapshot.json, unchanged.

The manifest's tool list is generated from the catalog (`scripts/regenerate`,
`tests/server/test_generated_files.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
import zipfile

import pytest
from jsonschema import Draft7Validator
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from server.cli import _parser
from server.settings import Settings
from storage.engine import default_database_url
from tests.support.node_tools import ROOT
from tools.registry import TOOLS

MANIFEST = ROOT / "manifest.json"
REGISTRY_ENTRY = ROOT / "server.json"
REGISTRY_SCHEMA = ROOT / "tests" / "schemas" / "server.schema.2025-12-11.json"


def _load(path) -> dict:
    return json.loads(path.read_text())


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- the MCP Bundle -------------------------------------------------------------------


def test_manifest_passes_mcpb_validate(node_tools):
    done = node_tools.npx("mcpb", "validate", MANIFEST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes!" in done.stdout


def test_manifest_lists_the_tools_and_says_they_are_generated():
    manifest = _load(MANIFEST)
    assert [tool["name"] for tool in manifest["tools"]] == [op.name for op in TOOLS]
    assert manifest["tools_generated"] is True  # the key decides which of them a user sees


def test_manifest_launches_blohko_serve_with_uv_and_the_users_settings():
    manifest = _load(MANIFEST)
    assert manifest["manifest_version"] == "0.3" and manifest["version"] == _pyproject()["project"]["version"]
    server = manifest["server"]
    assert server["type"] == "python"
    assert server["mcp_config"]["command"] == "uv"
    assert server["mcp_config"]["args"] == [
        "run",
        "--directory",
        "${__dirname}",
        "--no-dev",
        "blohko",
        "serve",
    ]
    assert server["mcp_config"]["env"] == {
        "BLOHKO_API_KEY": "${user_config.api_key}",
        "BLOHKO_DATABASE_URL": "${user_config.database_url}",
    }
    api_key, database_url = manifest["user_config"]["api_key"], manifest["user_config"]["database_url"]
    assert api_key["sensitive"] is True and api_key["required"] is True
    assert database_url["required"] is False and "default" not in database_url


def test_an_empty_database_url_means_the_default_store(monkeypatch):
    """A bundle whose optional database URL is left blank launches with BLOHKO_DATABASE_URL=""."""
    monkeypatch.setenv("BLOHKO_DATABASE_URL", "")
    monkeypatch.setenv("BLOHKO_API_KEY", "")
    settings = Settings()
    assert settings.database_url == default_database_url() and settings.api_key is None


def _resolve(value: str, variables: dict[str, str]) -> str:
    for name, replacement in variables.items():
        value = value.replace("${" + name + "}", replacement)
    return value


async def test_mcpb_pack_makes_a_bundle_that_serves_as_a_desktop_host_launches_it(
    node_tools, tmp_path, database_url, tenant_factory
):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    bundle = tmp_path / "blohko.mcpb"
    packed = node_tools.npx("mcpb", "pack", ROOT, bundle)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    unpacked = tmp_path / "installed"
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        archive.extractall(unpacked)
    assert {"manifest.json", "pyproject.toml", "uv.lock", "server/cli.py", "tools/registry.py"} <= names
    assert not {name for name in names if name.startswith(("tests/", ".venv/", "node_modules/", ".git/"))}

    tenant = await tenant_factory(permissions=["students:read"])
    variables = {
        "__dirname": str(unpacked),
        "user_config.api_key": tenant.key,
        "user_config.database_url": database_url,
    }
    config = _load(unpacked / "manifest.json")["server"]["mcp_config"]
    # The host's environment (uv may need its proxy or certificate settings to fetch the build
    # backend) plus what the bundle sets; never this test run's virtual environment.
    host_env = {
        name: value for name, value in os.environ.items() if not name.startswith(("BLOHKO_", "VIRTUAL_ENV"))
    }
    launch = StdioServerParameters(
        command=uv,
        args=[_resolve(arg, variables) for arg in config["args"]],
        env={**host_env, **{name: _resolve(value, variables) for name, value in config["env"].items()}},
    )
    async with Client(launch) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        whoami = (await client.call_tool("whoami", {})).structured_content
    assert names == {
        "whoami",
        "parse_video",
        "list_students",
        "get_student",
        "export_student",
        "get_school_report",
    }
    assert whoami["producer"]["id"] == tenant.producer_id


# --- the MCP registry entry ------------------------------------------------------------


def test_server_json_is_valid_against_the_registry_schema():
    schema = _load(REGISTRY_SCHEMA)
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, error.path))}: {error.message}"
        for error in validator.iter_errors(_load(REGISTRY_ENTRY))
    ]
    assert errors == []
    assert schema["$id"] == _load(REGISTRY_ENTRY)["$schema"]


def test_server_json_runs_the_pypi_package_with_uvx_and_the_same_settings_as_the_bundle():
    entry, project = _load(REGISTRY_ENTRY), _pyproject()["project"]
    (package,) = entry["packages"]
    assert entry["version"] == package["version"] == project["version"]
    assert (package["registryType"], package["identifier"], package["runtimeHint"]) == (
        "pypi",
        project["name"],
        "uvx",
    )
    # `uvx blohko-mcp serve`: uvx runs the package's command of the same name.
    assert project["scripts"][package["identifier"]] == project["scripts"]["blohko"]
    arguments = [argument["value"] for argument in package["packageArguments"]]
    assert _parser().parse_args(arguments).command == "serve"
    variables = {variable["name"]: variable for variable in package["environmentVariables"]}
    assert variables.keys() == _load(MANIFEST)["server"]["mcp_config"]["env"].keys()
    assert variables["BLOHKO_API_KEY"]["isSecret"] and variables["BLOHKO_API_KEY"]["isRequired"]
    assert not variables["BLOHKO_DATABASE_URL"]["isRequired"]


def test_readme_claims_the_registry_name_for_pypi():
    """The registry checks a PyPI package's ownership by this line in its description (the README)."""
    assert f"mcp-name: {_load(REGISTRY_ENTRY)['name']}" in (ROOT / "README.md").read_text()
