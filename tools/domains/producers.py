"""Producers (tenants), created and found by the operator of the machine from the CLI.

A producer comes with its owner user, who signs in with the email and password. Only the
operator makes producers: no API key or session can.
"""

from __future__ import annotations

from pydantic import Field

from storage import accounts as store
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import NotFound
from tools.core.fields import Secret
from tools.core.models import InputModel, OutputModel
from tools.domains.accounts import create_producer, normalize_email

__all__ = ["find_producer", "make_producer"]


class CreateProducerInput(InputModel):
    name: str = Field(max_length=200)
    email: str = Field(max_length=320, description="The owner's email: how the owner signs in; unique among owners.")
    password: str | None = Field(default=None, max_length=1024, description="At least 8 characters; omitted: generated.")


class FindProducerInput(InputModel):
    email: str = Field(max_length=320, description="The owner's email.")


class ProducerSummary(OutputModel):
    id: str
    name: str
    owner_user_id: str
    email: str


class ProducerResult(OutputModel):
    producer: ProducerSummary


class CreatedProducerResult(ProducerResult):
    generated_password: Secret | None = Field(description="The owner's password when it was generated: shown once.")


@operation(
    title="Create producer",
    name="create_producer",
    permission=None,
    http=None,
    kind="write",
    auth=("operator",),
    transports=("cli",),
)
async def make_producer(ctx: OperationContext, data: CreateProducerInput) -> CreatedProducerResult:
    """Create a producer and its owner user; the password is generated (and shown once) when omitted."""
    made = await create_producer(ctx.session, name=data.name, email=data.email, password=data.password, clock=ctx.clock)
    summary = ProducerSummary(id=made.producer.id, name=made.producer.name, owner_user_id=made.owner.id, email=made.owner.email)
    return CreatedProducerResult(producer=summary, generated_password=made.password)


@operation(
    title="Find producer",
    name="find_producer",
    permission=None,
    http=None,
    kind="read",
    auth=("operator",),
    transports=("cli",),
)
async def find_producer(ctx: OperationContext, data: FindProducerInput) -> ProducerResult:
    """The producer whose owner signs in with `email`."""
    owner = await store.get_owner_by_email(ctx.session, email_normalized=normalize_email(data.email))
    producer = await store.get_producer(ctx.session, producer_id=owner.producer_id) if owner else None
    if owner is None or producer is None:
        raise NotFound(f"No producer's owner has the email {data.email}")
    return ProducerResult(
        producer=ProducerSummary(id=producer.id, name=producer.name, owner_user_id=owner.id, email=owner.email)
    )
