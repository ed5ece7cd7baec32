"""Identifiers and timestamps shared by every table."""

import secrets
from datetime import UTC, datetime

__all__ = ["new_id", "utcnow"]


def new_id(prefix: str) -> str:
    """A prefixed random id such as `user_3f9a1c...`: readable in logs, unguessable across tenants."""
    return f"{prefix}_{secrets.token_hex(10)}"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (timestamp columns refuse naive datetimes)."""
    return datetime.now(UTC)
