"""Producers (tenants), created, found and listed by the operator of the machine from the CLI.

A producer comes with its owner user, who signs in with the email and password. Only the
operator makes producers: no API key or session can.
"""

from __future__ import annotations

from pydantic import Field

from storage import accounts as accounts_storage
from storage.queries import fetch_page
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import NotFound
from tools.core.fields import Secret
from tools.core.models import InputModel, OutputModel, Page, Pagination
from tools.domains.accounts import create_producer, normalize_email

__all__ = ["find_producer", "list_producers", "make_producer"]


class CreateProducerInput(InputModel):
    name: str = Field(max_length=200)
    email: str = Field(
        max_length=320, description="The owner's email: how the owner signs in; unique among owners."
    )
    password: str | None = Field(
        default=None, max_length=1024, description="At least 8 characters; omitted: generated."
    )


class FindProducerInput(InputModel):
    email: str = Field(max_length=320, description="The owner's email.")


class ListProducersInput(InputModel):
    page: int = Field(default=1, ge=1, le=1_000_000, description="Page number, from 1.")
    limit: int = Field(default=20, ge=1, le=100, description="Results per page, 1-100.")


class ProducerSummary(OutputModel):
    id: str
    name: str
    owner_user_id: str
    email: str


class ProducerResult(OutputModel):
    producer: ProducerSummary


class CreatedProducerResult(ProducerResult):
    generated_password: Secret | None = Field(
        description="The owner's password when it was generated: shown once."
    )


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
    made = await create_producer(
        ctx.db, name=data.name, email=data.email, password=data.password, clock=ctx.clock
    )
    summary = ProducerSummary(
        id=made.producer.id, name=made.producer.name, owner_user_id=made.owner.id, email=made.owner.email
    )
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
    owner = await accounts_storage.get_owner_by_email(ctx.db, email_normalized=normalize_email(data.email))
    producer = await accounts_storage.get_producer(ctx.db, producer_id=owner.producer_id) if owner else None
    if owner is None or producer is None:
        raise NotFound(f"No producer's owner has the email {data.email}")
    return ProducerResult(
        producer=ProducerSummary(
            id=producer.id, name=producer.name, owner_user_id=owner.id, email=owner.email
        )
    )


@operation(
    title="List producers",
    name="list_producers",
    permission=None,
    http=None,
    kind="read",
    auth=("operator",),
    transports=("cli",),
)
async def list_producers(ctx: OperationContext, data: ListProducersInput) -> Page[ProducerSummary]:
    """Every producer on this machine with its owner's email, oldest first. Paginated."""
    offset = (data.page - 1) * data.limit
    owners, total = await fetch_page(
        ctx.db, accounts_storage.owners_by_producer_query(), offset=offset, limit=data.limit
    )
    producers = await accounts_storage.producers_by_id(
        ctx.db, producer_ids=[owner.producer_id for owner in owners]
    )
    summaries = [
        ProducerSummary(
            id=owner.producer_id,
            name=producers[owner.producer_id].name,
            owner_user_id=owner.id,
            email=owner.email,
        )
        for owner in owners
    ]
    total_pages = (total + data.limit - 1) // data.limit
    pagination = Pagination(
        page=data.page,
        limit=data.limit,
        total=total,
        total_pages=total_pages,
        has_more=data.page < total_pages,
    )
    return Page(data=summaries, pagination=pagination)
