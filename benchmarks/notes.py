"""Why a target is missed: the cause found by profiling and the fix, shown in the table when it is.

Keyed by target id (see `benchmarks.report.TARGETS`). A missed target without a note is shown
as missed with "cause not profiled yet"; a note never hides a miss.
"""

NOTES: dict[str, str] = {}
