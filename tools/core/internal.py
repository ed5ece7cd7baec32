"""The store's one way in besides `tools.core.runner.run_operation`: the reads and writes that are
not an operation a client calls, under the runner's rules.

Outside the runner and this module no module of `server/` or `tools/` opens a store session
(`test_one_way_in.py` checks it). What runs here, and why it is not an operation of the catalog:

- **Security events**, audited: an OAuth code exchanged and a refresh token rotated (tokens
  issued), a grant revoked by its client or because a used code or rotated refresh token came
  back, a sign-in (and a failed one), a password change (and a wrong current password). Each is
  one transaction (`writing`) whose audit record (`audit_security_event`) commits with it, under
  the producer it concerns, as the runner audits a write. They are not operations because no
  principal calls them: the OAuth token endpoint authenticates a client, not a key, and answers in
  OAuth's own errors (`invalid_grant`); sign-in and the password change are operations
  (`login`, `change_password`) that must hash a password between two transactions, so they run
  through the runner with `own_transactions` and take their transactions here.
- **Lookups on the way to a decision**, not audited (a read changes nothing, and the runner audits
  no read): a session token or an OAuth code, refresh token or access token looked up, a client's
  registration read, the delivery worker's look for due deliveries (`reading`).
- **Bookkeeping**, never audited: a credential's last use (`writing_if_free`, taken only when the
  writer is free) must never hold a request up nor fill the audit log with every call. The
  delivery worker's polls, leases and recorded attempts are the server's own work, many a minute,
  and the event a delivery carries was audited with the write that made it; a lease and an
  attempt take their turn in the write queue (`writing`), since a skipped lease would hold its
  delivery until the next poll. A client registration and the fetched copy of a client ID
  metadata document belong to no producer yet, so there is no audit log to write them to (a
  registration is logged).
- **Rate limits**: `login` and `change_password` pass the runner's rate limit before their
  handlers run, like every operation (a sign-in's caller is anonymous, uncounted there: the login
  throttle bounds it per account and address). The other paths have no principal for that limit
  to count, and each has its own bound: Dynamic Client Registration the registration throttle, a
  code and a refresh token one use each, a lookup the request that carries the credential.

Every path keeps the runner's transaction and error rules: one transaction per write, committed
whole or not at all; the store's exceptions (`storage.errors`) translated as the runner translates
them (`store_errors_translated`: a constraint is `Conflict`, a busy or locked store `Busy`);
bookkeeping's failures are logged where they are recorded and fail no request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime

from storage.db import Db
from storage.engine import Store
from storage.errors import ConstraintViolation, Locked, StoreBusy, translated
from tools.core.audit import record_audit_event
from tools.core.errors import Busy, Conflict
from tools.core.principal import Principal

__all__ = [
    "audit_security_event",
    "reading",
    "store_errors_translated",
    "writing",
    "writing_if_free",
]

logger = logging.getLogger("blohko.operations")


@contextmanager
def store_errors_translated(kind: str, name: str) -> Iterator[None]:
    """The store's exceptions raised in the block as the caller reads them: a constraint the
    caller's own checks could not see is `Conflict`, a busy or locked store is `Busy` (the
    transaction rolled back whole). `kind` and `name` (`operation create_course`) name the work in
    the log. Any other exception passes unchanged."""
    try:
        with translated():  # the store's exceptions, never SQLAlchemy's, from here on
            yield
    except ConstraintViolation:
        logger.info("%s %s hit a constraint", kind, name, exc_info=True)
        raise Conflict("The change conflicts with existing data; reload and try again") from None
    except StoreBusy as busy:
        logger.warning("%s %s refused: %s", kind, name, busy.reason)
        raise Busy(busy.retry_after) from None
    except Locked:
        # Another process (a CLI command, a second server on the same file) held SQLite's lock
        # past the busy timeout.
        logger.warning("%s %s: the database stayed locked past the busy timeout", kind, name)
        raise Busy(retry_after=1) from None


@asynccontextmanager
async def reading(store: Store, what: str) -> AsyncIterator[Db]:
    """Reads for `what` (its name in the log), as an operation's (`Store.reading`)."""
    with store_errors_translated("internal", what):
        async with store.reading() as db:
            yield db


@asynccontextmanager
async def writing(store: Store, what: str) -> AsyncIterator[Db]:
    """One write transaction for `what` (on SQLite after its turn in the write queue), as an
    operation's: it commits when the block ends, or rolls back whole when the block raises."""
    with store_errors_translated("internal", what):
        async with store.writing() as db:
            yield db


async def audit_security_event(
    db: Db,
    *,
    name: str,
    producer_id: str,
    principal: Principal | None,
    ids: dict[str, str],
    at: datetime,
    outcome: str = "ok",
) -> None:
    """Audit the security event `name` in `db`'s transaction, under `producer_id`; by
    `principal` (a connected app, the signed-in owner), or by no key (a person signing in)."""
    if principal is None:
        principal = Principal(
            producer_id=producer_id, key_id=None, key_name=None, grants=(), kind="anonymous"
        )
    await record_audit_event(
        db,
        principal=principal,
        producer_id=producer_id,
        operation_name=name,
        ids=ids,
        outcome=outcome,
        at=at,
    )


@asynccontextmanager
async def writing_if_free(store: Store) -> AsyncIterator[Db | None]:
    """One bookkeeping write transaction if the writer is free now, else None: nothing waits for
    it. The store's exceptions leave as they are (`storage.errors`): bookkeeping logs a failure
    and fails no request, so there is no caller to translate them for."""
    async with store.writing_if_free() as db:
        yield db
