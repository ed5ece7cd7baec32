"""What an operation sees: who is calling, its database session, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.ids import utcnow

__all__ = ["Clock", "OperationContext", "Principal"]

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Principal:
    """An authenticated API key: the producer it acts for and what it may do."""

    producer_id: str
    key_id: str
    key_name: str
    grants: tuple[str, ...]


@dataclass
class OperationContext:
    """Handed to every operation handler. All reads and writes go through `session`."""

    session: AsyncSession
    principal: Principal
    clock: Clock = field(default=utcnow)

    @property
    def producer_id(self) -> str:
        return self.principal.producer_id

    def now(self) -> datetime:
        return self.clock()
