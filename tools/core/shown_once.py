"""Credentials an answer shows once: found by their `ShownOnce` mark, never kept for a replay.

A create run under an idempotency key keeps its answer for a day (`tools.core.runner`,
`storage.idempotency`), so that a retry gets the same answer back. A credential in that answer (a
webhook's signing secret, a generated password) must not sit in clear in the store for that day,
nor be handed out again to whoever replays the key: the kept answer has null in its place and a
`secretNote` saying it was shown only in the first answer, and when (`SecretResult`). The fields
are found by their `tools.core.fields.ShownOnce` mark, on any model at any depth, so any future
answer that carries a secret is treated alike once its field is marked `Secret`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel

from tools.core.fields import ShownOnce
from tools.core.models import SecretResult, format_utc

__all__ = ["MarkedField", "check_replayable", "held_models", "shown_once_fields", "without_secrets"]

_EVERY_ITEM = "[]"
"""A path step into every item of a list."""


@dataclass(frozen=True)
class MarkedField:
    """A field marked `ShownOnce`: where it is in an answer (wire names; `[]` every item of a list)."""

    path: tuple[str, ...]
    nullable: bool
    """A replay can answer null in its place."""

    @property
    def wire_path(self) -> str:
        return ".".join(self.path).replace(".[]", "[]")


@cache
def shown_once_fields(model: type[BaseModel]) -> tuple[MarkedField, ...]:
    """Every field of `model` and of the models it holds, at any depth, marked `ShownOnce`."""
    return tuple(_marked_fields(model, (), frozenset()))


def _marked_fields(
    model: type[BaseModel], path: tuple[str, ...], seen: frozenset[type]
) -> Iterator[MarkedField]:
    if model in seen:  # a model that holds itself (a comment's replies) is walked once
        return
    for name, field in model.model_fields.items():
        here = (*path, field.alias or name)
        if any(isinstance(item, ShownOnce) for item in field.metadata) or _is_marked(field.annotation):
            yield MarkedField(here, nullable=_accepts_none(field.annotation))
        for step, inner in held_models(field.annotation):
            yield from _marked_fields(inner, (*here, *step), seen | {model})


def _is_marked(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return any(isinstance(item, ShownOnce) for item in annotation.__metadata__) or _is_marked(
            typing.get_args(annotation)[0]
        )
    if _is_union(annotation):
        return any(_is_marked(member) for member in typing.get_args(annotation))
    return False


def _accepts_none(annotation: Any) -> bool:
    return (
        annotation is None
        or annotation is type(None)
        or (_is_union(annotation) and type(None) in typing.get_args(annotation))
    )


def _is_union(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union


def held_models(annotation: Any) -> Iterator[tuple[tuple[str, ...], type[BaseModel]]]:
    """The models a field's value holds, each with the path steps from the field to it."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield (), annotation
    elif typing.get_origin(annotation) is Annotated or _is_union(annotation):
        for member in (
            typing.get_args(annotation)[:1]
            if typing.get_origin(annotation) is Annotated
            else typing.get_args(annotation)
        ):
            yield from held_models(member)
    elif typing.get_origin(annotation) in (list, tuple, set, frozenset):
        for member in typing.get_args(annotation):
            for step, inner in held_models(member):
                yield (_EVERY_ITEM, *step), inner


def check_replayable(name: str, model: type[BaseModel]) -> None:
    """TypeError unless a replay of `model` can leave its credentials out: each marked field takes
    null, and the model says where they were shown (`SecretResult`)."""
    marked = shown_once_fields(model)
    if not marked:
        return
    if not issubclass(model, SecretResult):
        raise TypeError(
            f"{name}: its answer carries a secret shown once and is replayed under an idempotency key: "
            f"{model.__name__} must be a SecretResult, whose secretNote says where it was shown"
        )
    fixed = [field.wire_path for field in marked if not field.nullable]
    if fixed:
        raise TypeError(f"{name}: a replay answers null for {', '.join(fixed)}: declare them Secret | None")


def without_secrets(model: type[BaseModel], answer: dict[str, Any], *, shown_at: datetime) -> dict[str, Any]:
    """`answer` (a `model` as JSON) with null for each credential it shows, and a `secretNote`
    saying they were shown only in the first answer, at `shown_at`; `answer` itself when it
    shows none (none marked, or each null: a student registered with a password of its own)."""
    marked = shown_once_fields(model)
    kept = _nulled(answer, [field.path for field in marked])
    if kept == answer:
        return answer
    note = (
        f"The secret was shown only in the first answer, at {format_utc(shown_at)}; "
        "this replay under the same idempotency key leaves it out (null)."
    )
    return {**kept, SecretResult.NOTE: note}


def _nulled(value: Any, paths: list[tuple[str, ...]]) -> Any:
    """A copy of `value` with null at each of `paths` that holds a value."""
    if not paths:
        return value
    if isinstance(value, list):
        inner = [path[1:] for path in paths if path[0] == _EVERY_ITEM]
        return [_nulled(item, inner) for item in value]
    if not isinstance(value, dict):
        return value
    copy = dict(value)
    for key in {path[0] for path in paths}:
        if key not in copy or copy[key] is None:
            continue
        rest = [path[1:] for path in paths if path[0] == key]
        copy[key] = None if () in rest else _nulled(copy[key], [path for path in rest if path])
    return copy
