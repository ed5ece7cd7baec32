"""What an API key's row means: the principal it authenticates, or why it does not.

Light on purpose (the standard library and `tools.core`'s light modules): `authenticate_api_key`
applies it to the row the store's credential cache reads, and a stdio server applies it to the
row `storage.startup` reads with `sqlite3` before the store is loaded (cold start), so both say
the same thing about the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tools.core.errors import Unauthorized
from tools.core.principal import Principal

__all__ = ["KEY_PREFIX", "check_key_shape", "hash_api_key", "principal_of_key_row"]

KEY_PREFIX = "blk_"
_LONGEST_KEY = 200


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_key_shape(key: str | None) -> str:
    """`key` if it could be an API key at all; otherwise `Unauthorized` saying why (never echoing it)."""
    if not key:
        raise Unauthorized("Missing API key: send `Authorization: Bearer blk_...`")
    if not key.startswith(KEY_PREFIX) or len(key) > _LONGEST_KEY:
        raise Unauthorized("Invalid API key")
    return key


def principal_of_key_row(row: Mapping[str, Any] | None, *, now: datetime) -> Principal:
    """The principal of the key whose row (id, producer_id, name, permissions, expires_at,
    revoked_at, identities) is `row`; `Unauthorized` if there is none, or it was revoked or has expired."""
    if row is None:
        raise Unauthorized("Invalid API key")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key has been revoked")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise Unauthorized("This API key has expired")
    return Principal(
        producer_id=row["producer_id"],
        key_id=row["id"],
        key_name=row["name"],
        grants=tuple(row["permissions"]),
        identities=row["identities"],
    )
