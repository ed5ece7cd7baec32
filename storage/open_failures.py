"""What went wrong opening a database, in one line for a person: the command line turns a bad
`BLOHKO_DATABASE_URL` (no server, a wrong role, a file that cannot be made, a driver missing) into
this rather than a traceback, without handling SQLAlchemy's or the drivers' exceptions itself."""

from __future__ import annotations

import socket
import sqlite3

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

__all__ = ["open_failure", "shown_url"]


def shown_url(url: str) -> str:
    """The database URL for a message, its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL SQLAlchemy can parse (ValueError: a port not a number)
        return url  # shown as it came, without a password to hide


def open_failure(error: BaseException) -> str | None:
    """What went wrong opening the database, if `error` is such a failure (None: anything else)."""
    if isinstance(error, DBAPIError):
        error = error.orig or error
    if isinstance(error, ConnectionRefusedError) or (
        isinstance(error, OSError) and "Connect call failed" in str(error)
    ):
        return "the connection was refused: no database server listens at that host and port"
    if isinstance(error, socket.gaierror):
        return f"the host name cannot be resolved ({error.strerror})"
    if isinstance(error, TimeoutError):
        return "the database server did not answer in time"
    if isinstance(error, (OSError, sqlite3.Error, ArgumentError)) or type(error).__module__.startswith(
        ("asyncpg", "sqlalchemy")
    ):
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # asyncpg's errors reach us as "<class 'asyncpg.exceptions.X'>: what the server said".
        return message.split(">: ", 1)[1] if message.startswith("<class ") and ">: " in message else message
    return None
