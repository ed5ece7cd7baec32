"""The README leads and the docs hold together: the README stays short, every relative link of
the README, CONTRIBUTING and docs/ names a file (and heading) that exists, and docs/architecture.md's
Layout lists every module. The README's generated parts (its tool table and tools/list size) are
`tests/server/test_generated_files.py`'s to check and `scripts/regenerate`'s to write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.node_tools import ROOT

README = ROOT / "README.md"
README_MAX_LINES = 300
"""What a newcomer reads before the first command; the rest belongs in docs/."""


def test_readme_stays_under_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def _relative_links(page: Path) -> list[str]:
    """The targets of `page`'s Markdown links and images that are not URLs (in-page anchors included)."""
    return [
        target for target in _LINK.findall(page.read_text()) if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    ]


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives `page`'s headings: lowercased, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", page.read_text()), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


DOCUMENTS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", DOCUMENTS, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_names_a_file_and_heading_that_exist(page: Path):
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to files or headings that do not exist: {broken}"


def test_the_readme_and_contributing_link_every_docs_page():
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page in (README, ROOT / "CONTRIBUTING.md")
        for target in _relative_links(page)
    }
    unlinked = [page.name for page in (ROOT / "docs").glob("*.md") if page.resolve() not in linked]
    assert not unlinked, f"docs pages neither the README nor CONTRIBUTING links: {unlinked}"


ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGES = ("server", "tools", "storage", "benchmarks")


def _layout_modules() -> set[str]:
    """The module paths the Layout section of docs/architecture.md lists: its tree of `dir/` and
    `module.py` entries, indented two spaces a level."""
    block = ARCHITECTURE.read_text().split("## Layout", 1)[1].split("```", 2)[1]
    folders: list[str] = []
    listed = set()
    for indent, name in re.findall(r"^( *)(\S+)", block, re.MULTILINE):
        level = len(indent) // 2
        if name.endswith("/"):
            folders[level:] = [name]
        elif name.endswith(".py"):
            listed.add("".join(folders[:level]) + name)
    return listed


def test_the_architecture_layout_lists_every_module():
    modules = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "versions" not in path.parts
    }
    listed = _layout_modules()
    assert modules - listed == set(), "modules docs/architecture.md's Layout does not list"
    assert listed - modules == set(), "modules docs/architecture.md's Layout lists that do not exist"
    migrations = {path.stem for path in (ROOT / "storage" / "migrations" / "versions").glob("*.py")}
    layout = ARCHITECTURE.read_text().split("## Layout", 1)[1]
    assert {name for name in migrations if name not in layout} == set()
