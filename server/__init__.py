"""Transports and composition: the CLI, the MCP server, the HTTP app, auth and settings."""
