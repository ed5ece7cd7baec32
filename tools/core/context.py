"""What an operation sees: who is calling, the store and its transaction, the clock and the server's settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from storage.db import Db
from storage.engine import Store
from storage.ids import utcnow
from tools.core.events import PendingEvent, pending_event
from tools.core.login_throttle import LoginThrottle
from tools.core.principal import ANONYMOUS, OPERATOR, Principal, PrincipalKind

__all__ = [
    "ANONYMOUS",
    "DEFAULT_SESSION_TTL",
    "OPERATOR",
    "Clock",
    "OperationContext",
    "Principal",
    "PrincipalKind",
    "ProgressReporter",
    "Services",
    "Signal",
]

Clock = Callable[[], datetime]
ProgressReporter = Callable[[float, float | None, str | None], Awaitable[None]]
"""(progress, total, message): an MCP request's `report_progress`."""


class Signal:
    """A wake-up call inside one process: operations that queued webhook deliveries `notify()`,
    and the process's delivery worker, subscribed, looks for them at once instead of at its next poll
    (a worker in another process still finds them by polling)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` on every `notify()` until the returned function is called."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify(self) -> None:
        for listener in list(self._listeners):
            listener()


DEFAULT_SESSION_TTL = timedelta(hours=12)
DEFAULT_EVENT_RETENTION = timedelta(days=30)
DEFAULT_DELIVERY_RETENTION = timedelta(days=30)
DEFAULT_AUDIT_RETENTION = timedelta(days=365)
DEFAULT_IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Services:
    """Server settings some operations need: how long a session lasts, the login throttle, the
    MCP endpoint OAuth grants access to (None: OAuth is off)."""

    session_ttl: timedelta = DEFAULT_SESSION_TTL
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    oauth_resource: str | None = None
    event_retention: timedelta = DEFAULT_EVENT_RETENTION
    delivery_retention: timedelta = DEFAULT_DELIVERY_RETENTION
    """Finished webhook deliveries older than this are pruned (with the events' pruning)."""
    audit_retention: timedelta = DEFAULT_AUDIT_RETENTION
    """Audit records older than this are pruned (with the events' pruning)."""
    idempotency_ttl: timedelta = DEFAULT_IDEMPOTENCY_TTL
    """How long a create's result stays replayable under its idempotency key."""
    webhooks_allow_loopback: bool = False
    deliveries_queued: Signal = field(default_factory=Signal)
    """Notified after a commit that queued webhook deliveries: wakes this process's worker."""


@dataclass
class OperationContext:
    """Handed to every operation handler: who calls, the store, the clock, the server's settings,
    and the operation's way to its data.

    A handler reads and writes through `db` (`storage.db.Db`), which the runner opened for it by
    the operation's role: its reads, or its one write transaction. It hands `db` to storage
    functions, which choose between the ORM session and compiled statements. An operation that
    manages its own transactions (`Operation.own_transactions`: sign-in, which must not hold the
    writer while a password hashes) has no `db`: it opens its transactions on `store` through
    `tools.core.internal`.
    """

    principal: Principal
    store: Store
    clock: Clock = field(default=utcnow)
    services: Services = field(default_factory=Services)
    client_address: str | None = None
    emitted: list[PendingEvent] = field(default_factory=list)
    """Events the handler announced beyond those its operation declares (`tools.core.events`)."""
    progress: ProgressReporter | None = None
    """Where `report_progress` goes: the MCP client's progress token, when it gave one."""
    queued_deliveries: int = 0
    """Webhook deliveries the handler queued itself (a test event), beside its events' own."""
    _db: Db | None = field(default=None, init=False, repr=False)

    def run_in(self, db: Db) -> None:
        """The runner hands the handler the reads or the write transaction it opened."""
        self._db = db

    @property
    def db(self) -> Db:
        """The operation's way to its data (an operation declared `own_transactions` has none)."""
        db = self._db
        if db is None:
            raise RuntimeError("no db: the operation is declared own_transactions (see tools.core.internal)")
        return db

    async def report_progress(self, done: int, total: int, message: str | None = None) -> None:
        """Tell the caller how far a long operation has come (MCP progress notifications); a
        caller that asked for none, or a transport without them (REST), hears nothing."""
        if self.progress is not None:
            await self.progress(done, total, message)

    def emit(self, event_type: str, data: BaseModel | dict) -> None:
        """Announce an `event_type` event with `data` (the resource as the API returns it), written
        with the operation's transaction."""
        self.emitted.append(pending_event(event_type, data))

    @property
    def producer_id(self) -> str:
        """The caller's producer: every operation a producer's caller runs is filtered by it."""
        if self.principal.producer_id is None:
            raise RuntimeError("this operation runs for a producer, and the caller names none")
        return self.principal.producer_id

    def now(self) -> datetime:
        return self.clock()
