"""The login throttle: failed sign-ins counted per account and per client address.

At most `per_account` failures for one email and `per_address` from one client address in any
`window` (default 5 and 50 in 15 minutes); past either, a sign-in is refused as `rate_limited`
(429 with `Retry-After`) before its password is hashed, so a brute-force or flooding attempt
costs the server a database read, not an argon2 hash. Unknown emails are counted like known
ones, so the throttle does not tell which accounts exist. Failures live in the database
(`login_failures`), so the count holds across server processes and restarts.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage import login_failures as login_failures_storage
from storage.db import Db
from tools.core.errors import RateLimited

__all__ = ["LoginThrottle"]


def _bucket(kind: str, value: str) -> str:
    # Hashed: the table names neither the email nor the address.
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


@dataclass(frozen=True)
class LoginThrottle:
    per_account: int = 5
    per_address: int = 50
    window: timedelta = timedelta(minutes=15)

    def _limits(self, email_normalized: str, address: str | None) -> dict[str, int]:
        limits = {_bucket("account", email_normalized): self.per_account}
        if address:
            limits[_bucket("address", address)] = self.per_address
        return limits

    async def admit(self, db: Db, *, email_normalized: str, address: str | None, now: datetime) -> list[str]:
        """Admit one sign-in attempt, counted as a failure until `succeeded` says otherwise; or
        `RateLimited` with the seconds until an attempt may be made again, if a budget is spent.

        Counting the attempt before its password is checked (in the caller's write transaction,
        with the check) means concurrent attempts cannot all pass the check while their hashes
        wait their turn: the budget holds however many arrive at once.
        """
        limits = self._limits(email_normalized, address)
        await login_failures_storage.lock_buckets(db, buckets=limits)
        wait = 0.0
        for bucket, limit in limits.items():
            times = await login_failures_storage.failure_times(db, bucket=bucket, since=now - self.window)
            if len(times) >= limit:
                # The count falls under the limit when the failure `limit` places from the newest expires.
                frees_at = times[len(times) - limit] + self.window
                wait = max(wait, (frees_at - now).total_seconds(), 1)
        if wait > 0:
            seconds = math.ceil(wait)
            raise RateLimited(
                seconds,
                message=f"Too many failed sign-ins for this account or from this address; retry in {seconds} seconds",
            )
        return await login_failures_storage.record_failure(
            db, buckets=limits, at=now, forget_before=now - self.window
        )

    async def succeeded(self, db: Db, *, email_normalized: str, attempt: list[str]) -> None:
        """The attempt was right: it is no failure, and the account's count starts again. The
        address keeps its other failures, so one good account does not reset an address's budget."""
        await login_failures_storage.clear_failures(
            db, bucket=_bucket("account", email_normalized), ids=attempt
        )
