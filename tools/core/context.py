"""What an operation sees: who is calling, the store and its transaction, the clock and the server's settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from storage.direct import Transaction
from storage.engine import Session, Store
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


@dataclass(frozen=True)
class Services:
    """Server settings some operations need: how long a session lasts, the login throttle, the
    MCP endpoint OAuth grants access to (None: OAuth is off)."""

    session_ttl: timedelta = DEFAULT_SESSION_TTL
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    oauth_resource: str | None = None
    event_retention: timedelta = DEFAULT_EVENT_RETENTION
    webhooks_allow_loopback: bool = False
    deliveries_queued: Signal = field(default_factory=Signal)
    """Notified after a commit that queued webhook deliveries: wakes this process's worker."""


@dataclass
class OperationContext:
    """Handed to every operation handler: who calls, the store, the clock, the server's settings,
    and the transaction the runner opened for it.

    Reads and writes go through `session`. A `fast_write` goes through `transaction` instead,
    which on SQLite is a `storage.direct.Transaction` that only `storage.direct`'s statements run
    on. An operation that manages its own transactions (`Operation.own_transactions`: sign-in,
    which must not hold the writer while a password hashes) opens them on `store`, and a
    `fast_read` reads through `store.fast`: the runner opens nothing for either.
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
    _transaction: Session | Transaction | None = field(default=None, init=False, repr=False)

    def run_in(self, transaction: Session | Transaction) -> None:
        """The runner hands the handler the session or transaction it opened."""
        self._transaction = transaction

    @property
    def session(self) -> Session:
        """The operation's ORM session. An operation declared `own_transactions` or `fast_read`
        has none, and a `fast_write` goes through `transaction`."""
        transaction = self._transaction
        if isinstance(transaction, Session):
            return transaction
        raise RuntimeError(
            "no ORM session: the operation is declared own_transactions, fast_read or fast_write"
            " (which uses ctx.transaction)"
        )

    @property
    def transaction(self) -> Session | Transaction:
        """A `fast_write`'s transaction: a `storage.direct.Transaction` on SQLite, else a session
        (PostgreSQL, or a retry under an idempotency key); what `storage.direct`'s functions take."""
        transaction = self._transaction
        if transaction is None:
            raise RuntimeError("this operation runs in no transaction the runner opened")
        return transaction

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
