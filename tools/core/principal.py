"""Who calls: the principal every door turns its credentials into. Light on purpose (dataclasses
only): a stdio server authenticates its key before the store and the catalog are loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ANONYMOUS", "OPERATOR", "Identities", "Principal", "PrincipalKind"]

PrincipalKind = Literal["api_key", "session", "operator", "anonymous"]
"""How a caller proved who it is: an API key; the producer's owner signed in (a session); the
operator of the machine (the CLI, local access); or nobody yet (signing in)."""

Identities = Literal["full", "pseudonymous"]
"""What a caller sees of students (`storage.tables.IDENTITIES`): their names, emails, avatars and
bios, or a stable pseudonym in their place (`tools.core.pseudonyms`)."""


@dataclass(frozen=True)
class Principal:
    """Who calls: the producer it acts for (none for the operator, who names one per call, and for
    nobody), what it may do, and how it authenticated. Permission checks, tenancy, rate limits and
    the audit log see only this, so every way in gets them alike."""

    producer_id: str | None
    key_id: str | None
    key_name: str | None
    grants: tuple[str, ...]
    kind: PrincipalKind = "api_key"
    session_id: str | None = None
    user_id: str | None = None
    identities: Identities = "full"
    """Chosen when the key was created or the app connected; `pseudonymous` answers every student
    by a pseudonym and refuses searching by name or email (`tools.core.pseudonyms`)."""

    @property
    def pseudonymous(self) -> bool:
        return self.identities == "pseudonymous"

    @property
    def rate_limit_key(self) -> str | None:
        """What the rate limit counts against: the key, or the session; the operator is not limited."""
        return self.key_id or self.session_id

    @property
    def audit_name(self) -> str | None:
        """The name the audit log shows for this caller."""
        return {"session": "owner session", "operator": "operator (CLI)"}.get(self.kind, self.key_name)


OPERATOR = Principal(producer_id=None, key_id=None, key_name=None, grants=("*",), kind="operator")
ANONYMOUS = Principal(producer_id=None, key_id=None, key_name=None, grants=(), kind="anonymous")
