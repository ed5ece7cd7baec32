"""Benchmarks of Blohko MCP: `uv run python -m benchmarks [--size tiny|full] [--out DIR]`."""
