"""Logging to stderr: stdout belongs to the stdio transport."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

# Per-request chatter: stateless HTTP opens and closes a transport per request; migrations
# announce every plugin.
_CHATTY = ("mcp.server.streamable_http", "mcp.server.streamable_http_manager", "alembic")
# Libraries whose verbose output carries SQL parameters or whole requests (passwords, keys,
# emails, whatever an agent pasted into a field): held at WARNING, whatever the configured level.
# (SQLAlchemy logs statements with their parameters at INFO; the MCP SDK logs messages at DEBUG.)
_LEAKY = (
    "asyncpg",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "httpx",
    "httpcore",
    "httpx2",  # the MCP SDK's client, which delivers webhooks: it logs each URL, query string included
    "httpcore2",
    "uvicorn.access",
    "mcp",
    "sse_starlette",
)


class _BlohkoHandler(logging.StreamHandler):
    """The handler `configure_logging` adds (once, however often it is called)."""


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(handler, _BlohkoHandler) for handler in root.handlers):
        handler = _BlohkoHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in _LEAKY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # Access logs carry query strings; requests are logged by our own code where needed.
    logging.getLogger("uvicorn.access").disabled = True
