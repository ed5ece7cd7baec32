"""The operation framework: how an operation is declared (catalog), run (runner), refused
(errors, permissions, rate limits), recorded (audit), and what it sees (context, models, fields).
Nothing here knows a domain."""
