"""The store: SQLModel tables, the async engine and session factory, migrations.

Imports nothing from `tools/` or `server/`: data flows transport -> operation -> store.
"""
