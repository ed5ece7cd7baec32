"""A clock the test moves, for the code that takes one (`tools.core.context.Clock`: the runner,
authentication, the rate limiter, the delivery worker): time passes when the test says so, never
on the real clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from storage.ids import utcnow

# A Monday morning: the tests of streaks and learning days count days from it.
MONDAY_MORNING = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)


@dataclass
class Clock:
    """Stands still at `now` until `advance` (or an assignment to `now`) moves it."""

    now: datetime = field(default_factory=lambda: MONDAY_MORNING)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    @classmethod
    def at_present(cls) -> Clock:
        """Stopped at the real present: for rows the test makes outside the clock's reach (keys,
        sessions made by the fixtures) that must not look made in the future."""
        return cls(utcnow())
