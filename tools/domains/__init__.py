"""The domain operations, one module per domain, each operation declared once with `@operation`."""
