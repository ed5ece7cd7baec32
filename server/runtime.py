"""What every request shares: the store, the clock, the rate limiter, and the settings operations
need. Loading it loads the store and the operation framework (SQLAlchemy and all): a stdio
server on an SQLite file does so after it has answered its first `tools/list`
(`server.deferred_runtime`)."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from datetime import timedelta

from server.settings import Settings
from storage.engine import Store
from storage.ids import utcnow
from storage.rate_limits import counter_for
from tools.core.context import Clock, Services
from tools.core.login_throttle import LoginThrottle
from tools.core.passwords import limit_concurrent_hashes
from tools.core.ratelimit import RateLimiter

__all__ = ["Runtime", "settle_heap"]


@dataclass
class Runtime:
    """What every request shares: the store, the clock, the rate limiter, and the settings
    operations need (session lifetime, login throttle)."""

    store: Store
    clock: Clock = utcnow
    rate_limiter: RateLimiter | None = None
    services: Services = field(default_factory=Services)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> Runtime:
        limit = settings.rate_limit_per_minute
        limit_concurrent_hashes(settings.password_hash_concurrency)  # process-wide, like the hashing threads
        throttle = LoginThrottle(
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_address,
            window=timedelta(minutes=settings.login_failure_window_minutes),
        )
        return cls(
            store=store,
            rate_limiter=RateLimiter(limit, counter_for(store)) if limit > 0 else None,
            services=Services(
                session_ttl=timedelta(hours=settings.session_ttl_hours),
                login_throttle=throttle,
                event_retention=timedelta(days=settings.event_retention_days),
                delivery_retention=timedelta(days=settings.delivery_retention_days),
                audit_retention=timedelta(days=settings.audit_retention_days),
                idempotency_ttl=timedelta(hours=settings.idempotency_ttl_hours),
                webhooks_allow_loopback=settings.webhooks_allow_loopback,
            ),
        )


def settle_heap() -> None:
    """Keep what the server loaded at startup out of the garbage collector's full collections.

    A loaded server holds a few hundred thousand long-lived objects (SQLAlchemy's and pydantic's
    machinery, the catalog's schemas) that are never garbage. A full collection walks them all,
    and under load one comes every few dozen calls. Frozen once loaded (`gc.freeze`), they are
    never walked again; what a request makes is collected as usual. Call once, after the runtime
    is loaded."""
    gc.collect()
    gc.freeze()
