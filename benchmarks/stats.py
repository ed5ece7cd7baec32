"""Timing helpers: run a call many times, keep median and p95 in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

__all__ = ["Timing", "summarize", "time_async"]


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


async def time_async(call: Callable[[int], Awaitable[object]], *, calls: int, warmup: int = 5) -> Timing:
    """Time `call(i)` for i in range(calls), after `warmup` untimed calls."""
    for i in range(warmup):
        await call(i)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    return summarize(samples)
