"""Logging to stderr: stdout belongs to the stdio transport."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs would carry query strings; requests are logged by our own code where needed.
    logging.getLogger("uvicorn.access").disabled = True
    # Per-request chatter (stateless HTTP opens and closes a transport per request; migrations
    # announce every plugin) drowns the lines that matter.
    for noisy in ("mcp.server.streamable_http", "mcp.server.streamable_http_manager", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
