"""Finding what a page or a log says."""

from __future__ import annotations

import re


def match_in(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """`pattern`'s first match in `text`; fails the test, showing the text, when there is none."""
    found = re.search(pattern, text, flags)
    assert found is not None, f"{pattern!r} is not in:\n{text[:2000]}"
    return found
