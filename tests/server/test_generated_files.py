"""The files generated from the catalog (`server/generated_files.py`) are current: the suite only
checks them, and `scripts/regenerate` rewrites them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from server.generated_files import GENERATED_FILES, REGENERATE_COMMAND, REPOSITORY, stale_files


def _copy_generated_files(root: Path) -> None:
    for generated in GENERATED_FILES:
        copy = root / generated.path
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / generated.path, copy)


def test_every_generated_file_is_current():
    stale = stale_files()
    assert stale == [], (
        f"generated files differ from the catalog: {', '.join(stale)}; run {REGENERATE_COMMAND}"
    )


def _edit_published_description(text: str) -> str:
    published = json.loads(text)
    published["tools"][0]["description"] += " Edited by hand."
    return json.dumps(published, indent=1, ensure_ascii=False) + "\n"


def _edit_manifest_tool(text: str) -> str:
    manifest = json.loads(text)
    manifest["tools"][-1]["name"] = "hand_made_tool"
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def _edit_readme_table(text: str) -> str:
    edited = text.replace("| `whoami`, ", "| ", 1)
    assert edited != text
    return edited


def _edit_docs_table(text: str) -> str:
    edited = text.replace("| read-only |", "| writes |", 1)
    assert edited != text
    return edited


def _edit_prompts_table(text: str) -> str:
    edited = text.replace("`launch_course` |", "`launch_a_course` |", 1)
    assert edited != text
    return edited


def _edit_readme_size(text: str) -> str:
    start = text.index(" bytes** for ")
    digit = text[start - 1]
    return text[: start - 1] + str((int(digit) + 1) % 10) + text[start:]


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        ("server/published_tools.json", _edit_published_description),
        ("manifest.json", _edit_manifest_tool),
        ("README.md", _edit_readme_table),
        ("README.md", _edit_readme_size),
        ("docs/tools.md", _edit_docs_table),
        ("docs/prompts.md", _edit_prompts_table),
    ],
)
def test_a_generated_file_edited_by_hand_is_reported_stale(
    tmp_path: Path, path: str, edit: Callable[[str], str]
):
    _copy_generated_files(tmp_path)
    assert stale_files(tmp_path) == []

    edited = tmp_path / path
    edited.write_text(edit(edited.read_text(encoding="utf-8")), encoding="utf-8")
    assert stale_files(tmp_path) == [path]


@pytest.mark.parametrize("path", ["README.md", "docs/tools.md"])
def test_a_file_without_its_tools_table_markers_is_an_error_naming_them(tmp_path: Path, path: str):
    _copy_generated_files(tmp_path)
    edited = tmp_path / path
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("<!-- /tools-table -->", ""), encoding="utf-8"
    )
    with pytest.raises(ValueError, match=f"{path} lost its .*tools-table"):
        stale_files(tmp_path)


def test_docs_prompts_without_its_table_markers_is_an_error_naming_them(tmp_path: Path):
    _copy_generated_files(tmp_path)
    edited = tmp_path / "docs/prompts.md"
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("<!-- /prompts-table -->", ""), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="docs/prompts.md lost its .*prompts-table"):
        stale_files(tmp_path)
