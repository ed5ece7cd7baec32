"""Where the HTTP gate leaves what it learned for the MCP server, in the ASGI scope's state (a
module of its own, so the MCP server reads it without importing the HTTP authentication)."""

__all__ = ["PRINCIPAL_STATE_KEY"]

PRINCIPAL_STATE_KEY = "blohko_principal"
"""Where `ApiKeyGate` leaves the authenticated principal in the ASGI scope's state."""
