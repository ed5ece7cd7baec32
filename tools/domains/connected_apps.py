"""Connected apps: a producer's owner lets an OAuth client (Claude, ChatGPT, an IDE) act for the
school, sees which apps may, and disconnects them.

The consent page of the dashboard runs `review_app_authorization` to show what an app asks for
and `answer_app_authorization` with the owner's answer; both re-check every parameter of the
request, which comes back through the browser and could have been edited. An answer is audited
like every other write ("allow" names the new grant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import AnyUrl, Field, ValidationError

from storage import accounts as accounts_storage
from storage import oauth as oauth_storage
from storage.tables import OAuthClient, OAuthGrant
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import BadRequest, NotFound
from tools.core.fields import Secret
from tools.core.models import InputModel, OutputModel, Page, PageQuery, UtcDatetime
from tools.core.paging import paged
from tools.core.principal import Identities
from tools.core.pseudonyms import IDENTITIES_NOTE
from tools.domains.api_keys import Grant
from tools.domains.oauth import SCOPES, create_grant, issue_code, redirect_host

if TYPE_CHECKING:
    from mcp.shared.auth import OAuthClientInformationFull

# The MCP SDK's OAuth helpers are imported where they are used: importing any part of `mcp` loads
# its client and server (about a second of CPU), which every CLI command would pay for the catalog.

__all__ = [
    "AppAuthorizationInput",
    "ConnectedApp",
    "answer_app_authorization",
    "disconnect_app",
    "list_connected_apps",
    "review_app_authorization",
]

_OWNER = ("session",)
_URL_LENGTH = 2048


class AppRequestInput(InputModel):
    """An authorization request as `/authorize` accepted it and the consent page carries it."""

    client_id: str = Field(min_length=1, max_length=_URL_LENGTH)
    redirect_uri: str | None = Field(
        default=None, max_length=_URL_LENGTH, description="As the app sent it; omitted when it sent none."
    )
    scope: str | None = Field(
        default=None, max_length=4000, description="The permissions the app asked for, space-separated."
    )
    resource: str = Field(min_length=1, max_length=_URL_LENGTH)


class AppAuthorizationInput(AppRequestInput):
    code_challenge: str = Field(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9_~.-]+$")
    state: str | None = Field(default=None, max_length=2000)
    decision: Literal["allow", "deny"]
    permissions: list[Grant] = Field(
        default_factory=list, max_length=20, description="What the owner grants (allow needs at least one)."
    )
    identities: Identities = Field(default="full", description=IDENTITIES_NOTE)


class AppRequest(OutputModel):
    client_id: str
    client_name: str
    client_uri: str | None
    redirect_uri: str
    redirect_host: str
    requested_permissions: list[str]


class AppRequestResult(OutputModel):
    request: AppRequest


class ConnectedApp(OutputModel):
    id: str
    client_id: str
    client_name: str
    redirect_uri: str
    permissions: list[str]
    identities: Identities
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class AppAuthorizationResult(OutputModel):
    redirect_to: Secret = Field(
        description="Where the browser goes next: the app's redirect URI with a code, or with error=access_denied."
    )
    grant: ConnectedApp | None


class ConnectedAppResult(OutputModel):
    app: ConnectedApp


class DisconnectAppInput(InputModel):
    id: str = Field(max_length=100, description="The connected app's id (app_...).")


def connected_app(grant: OAuthGrant) -> ConnectedApp:
    return ConnectedApp.model_validate(grant, from_attributes=True)


async def _checked_request(
    ctx: OperationContext, data: AppRequestInput
) -> tuple[OAuthClient, OAuthClientInformationFull, AnyUrl, list[str]]:
    """The client, its redirect URI and the requested scopes, checked again as `/authorize` did."""
    if ctx.services.oauth_resource is None or data.resource != ctx.services.oauth_resource:
        raise BadRequest("Invalid input: resource: this server grants access only to its own MCP endpoint")
    client = await oauth_storage.get_client(ctx.db, client_id=data.client_id)
    if client is None:
        raise NotFound(
            "This app is not known here (its registration may have expired): start connecting again from the app"
        )
    from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull

    information = OAuthClientInformationFull.model_validate({**client.information, "client_id": client.id})
    try:
        redirect_uri = information.validate_redirect_uri(
            AnyUrl(data.redirect_uri) if data.redirect_uri is not None else None
        )
    except (InvalidRedirectUriError, ValidationError) as error:
        raise BadRequest(f"Invalid input: redirectUri: {getattr(error, 'message', 'not a URL')}") from None
    # Registration refuses userinfo, but a stored client may hold such a URI: never send a code there.
    if "@" in urlsplit(str(redirect_uri)).netloc:
        raise BadRequest(
            "Invalid input: redirectUri: a redirect URI with userinfo (a name before '@') is not accepted"
        )
    requested = data.scope.split() if data.scope else []
    unknown = [scope for scope in requested if scope not in SCOPES]
    if unknown:
        raise BadRequest(f"Invalid input: scope: unknown permissions {', '.join(unknown)}")
    return client, information, redirect_uri, list(dict.fromkeys(requested))


@operation(
    title="Review app authorization",
    name="review_app_authorization",
    permission=None,
    http=None,
    kind="read",
    auth=_OWNER,
    transports=("dashboard",),
)
async def review_app_authorization(ctx: OperationContext, data: AppRequestInput) -> AppRequestResult:
    """What an app asks for on the consent page: its name, where it sends the answer, and the
    permissions it requested."""
    client, information, redirect_uri, requested = await _checked_request(ctx, data)
    return AppRequestResult(
        request=AppRequest(
            client_id=client.id,
            client_name=client.name,
            client_uri=str(information.client_uri) if information.client_uri else None,
            redirect_uri=str(redirect_uri),
            redirect_host=redirect_host(str(redirect_uri)),
            requested_permissions=requested,
        )
    )


@operation(
    title="Answer app authorization",
    name="answer_app_authorization",
    permission=None,
    http=None,
    kind="write",
    auth=_OWNER,
    transports=("dashboard",),
)
async def answer_app_authorization(
    ctx: OperationContext, data: AppAuthorizationInput
) -> AppAuthorizationResult:
    """The owner's answer on the consent page. "allow" connects the app with the chosen permissions
    and sends the browser back with a one-time code; "deny" sends it back with access_denied."""
    from mcp.server.auth.provider import construct_redirect_uri

    client, _, redirect_uri, _ = await _checked_request(ctx, data)
    if data.decision == "deny":
        denied = construct_redirect_uri(
            str(redirect_uri),
            error="access_denied",
            error_description="The owner denied access",
            state=data.state,
        )
        return AppAuthorizationResult(redirect_to=denied, grant=None)
    permissions = list(dict.fromkeys(data.permissions))
    if not permissions:
        raise BadRequest("Invalid input: permissions: choose at least one permission")
    owner = await accounts_storage.get_owner(ctx.db, producer_id=ctx.producer_id)
    if owner is None:
        raise NotFound("The producer has no owner")
    grant = await create_grant(
        ctx.db,
        producer_id=ctx.producer_id,
        user_id=ctx.principal.user_id or owner.id,
        client=client,
        redirect_uri=str(redirect_uri),
        resource=data.resource,
        permissions=permissions,
        clock=ctx.clock,
        identities=data.identities,
    )
    code = await issue_code(
        ctx.db,
        grant=grant,
        redirect_uri=str(redirect_uri),
        explicit=data.redirect_uri is not None,
        code_challenge=data.code_challenge,
        scopes=permissions,
        clock=ctx.clock,
    )
    return AppAuthorizationResult(
        redirect_to=construct_redirect_uri(str(redirect_uri), code=code, state=data.state),
        grant=connected_app(grant),
    )


@operation(
    title="List connected apps",
    name="list_connected_apps",
    permission=None,
    http=None,
    kind="read",
    auth=_OWNER,
    transports=("dashboard",),
)
async def list_connected_apps(ctx: OperationContext, data: PageQuery) -> Page[ConnectedApp]:
    """The apps the owner connected over OAuth, newest first, with permissions and last use;
    disconnected ones show when they were disconnected."""
    return await paged(
        ctx.db,
        oauth_storage.grants_query(producer_id=ctx.producer_id),
        query=data,
        convert=connected_app,
    )


@operation(
    title="Disconnect app",
    name="disconnect_app",
    permission=None,
    http=None,
    kind="delete",
    auth=_OWNER,
    transports=("dashboard",),
)
async def disconnect_app(ctx: OperationContext, data: DisconnectAppInput) -> ConnectedAppResult:
    """Disconnect a connected app: its tokens stop working at once, in every server process.
    Disconnecting again changes nothing."""
    grant = await oauth_storage.revoke_producer_grant(
        ctx.db, producer_id=ctx.producer_id, grant_id=data.id, at=ctx.clock()
    )
    if grant is None:
        raise NotFound("Connected app not found")
    return ConnectedAppResult(app=connected_app(grant))
