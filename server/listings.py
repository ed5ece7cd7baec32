"""What a key sees in a `*/list` answer: the one filter for tools, prompts and views.

The SDK hands middleware a list method's result either as its model (`ListToolsResult`, ...) or
as the wire dict, depending on the path the request took; each listing filters both the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["only_listed"]


def only_listed(result: Any, model: type, field: str, key: str, keep: Callable[[Any], bool]) -> Any:
    """`result` (a `model`, or its wire dict) with only the entries of its list `field` whose
    `key` (`name`, `uri`) `keep` accepts; a TypeError for anything else."""
    if isinstance(result, model):
        setattr(result, field, [entry for entry in getattr(result, field) if keep(str(getattr(entry, key)))])
    elif isinstance(result, dict) and isinstance(result.get(field), list):
        result = {**result, field: [entry for entry in result[field] if keep(entry.get(key))]}
    else:
        raise TypeError(f"unexpected {field}/list result {type(result).__name__}")
    return result
