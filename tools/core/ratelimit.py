"""Rate limiting per API key (and per producer session): at most `per_minute` operations in each fixed minute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tools.core.errors import RateLimited

if TYPE_CHECKING:  # the settings import DEFAULT_PER_MINUTE on a cold start, without the store
    from storage.rate_limits import WindowCounter
    from tools.core.context import Clock, Principal

__all__ = ["DEFAULT_PER_MINUTE", "RateLimiter"]

DEFAULT_PER_MINUTE = 1200
"""Generous: an agent working flat out stays under it; a runaway loop does not."""


@dataclass
class RateLimiter:
    per_minute: int
    counter: WindowCounter

    async def check(self, principal: Principal, clock: Clock) -> None:
        """Count one operation for `principal`'s key (or session); `RateLimited` with the wait when
        over the limit. The operator is not limited; sign-ins have the login throttle instead."""
        subject = principal.rate_limit_key
        if subject is None:
            return
        now = clock()
        window_start = now.replace(second=0, microsecond=0)
        if await self.counter.hit(subject, window_start) > self.per_minute:
            raise RateLimited(retry_after=60 - now.second)  # whole seconds to the next window, 1-60
