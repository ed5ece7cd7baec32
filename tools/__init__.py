"""The operation catalog: every operation declared once, served over MCP and REST alike."""
