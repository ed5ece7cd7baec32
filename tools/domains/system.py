"""Operations about the platform and the caller: whoami, categories."""

from __future__ import annotations

from pydantic import Field

from storage import accounts as accounts_storage
from storage import categories as categories_storage
from tools.core.catalog import may_call, operation, published
from tools.core.context import OperationContext
from tools.core.models import NoInput, OutputModel
from tools.core.permissions import Permission
from tools.core.principal import Identities

__all__ = ["list_categories", "whoami"]


class CategoryPublic(OutputModel):
    id: str
    name: str
    slug: str
    icon: str
    order: int


class CategoriesResult(OutputModel):
    categories: list[CategoryPublic]


class ProducerPublic(OutputModel):
    id: str
    name: str
    owner_user_id: str | None = Field(description="The producer's own user: an author id for staff posts.")


class KeyPublic(OutputModel):
    id: str
    name: str
    permissions: list[str]
    identities: Identities


class WhoamiResult(OutputModel):
    producer: ProducerPublic
    key: KeyPublic
    tools: list[str]


@operation(
    title="Who am I",
    permission=None,
    http=("GET", "/whoami"),
    kind="read",
)
async def whoami(ctx: OperationContext, data: NoInput) -> WhoamiResult:
    """This key: producer, owner user id, name, permissions, identities, tools."""
    producer = await accounts_storage.producer_with_owner(ctx.db, producer_id=ctx.producer_id)
    principal = ctx.principal
    assert principal.key_id is not None and principal.key_name is not None, "whoami admits API keys only"
    return WhoamiResult(
        producer=ProducerPublic(
            id=ctx.producer_id,
            name=producer["name"] if producer else "",
            owner_user_id=producer["owner_user_id"] if producer else None,
        ),
        key=KeyPublic(
            id=principal.key_id,
            name=principal.key_name,
            permissions=list(principal.grants),
            identities=principal.identities,
        ),
        tools=[op.name for op in published() if "mcp" in op.transports and may_call(principal, op)],
    )


@operation(
    title="List categories",
    permission=Permission.COURSES_READ,
    http=("GET", "/categories"),
    kind="read",
)
async def list_categories(ctx: OperationContext, data: NoInput) -> CategoriesResult:
    """Course categories: the ids a course's categoryId takes."""
    rows = await categories_storage.list_categories(ctx.db)
    return CategoriesResult(
        categories=[CategoryPublic.model_validate(row, from_attributes=True) for row in rows]
    )
