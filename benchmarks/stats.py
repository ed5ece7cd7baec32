"""Timing summaries: median and p95 of many calls, in milliseconds."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

__all__ = ["Timing", "summarize"]


@dataclass(frozen=True)
class Timing:
    calls: int
    median_ms: float
    p95_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples_s: list[float]) -> Timing:
    ordered = sorted(samples_s)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return Timing(calls=len(ordered), median_ms=statistics.median(ordered) * 1000, p95_ms=p95 * 1000)
