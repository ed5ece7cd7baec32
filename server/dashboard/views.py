"""The Producer Dashboard's pages: server-rendered forms over the operation catalog.

Every action is a catalog operation served over the "dashboard" transport, run by
`run_operation` with the signed-in owner's session `Principal`, so it is permission-checked,
rate-limited and audited exactly like the same operation over REST. The page code only reads
forms, checks the CSRF token, and renders results or errors.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from server.auth import SESSION_COOKIE, cookie_options
from server.dashboard.agents import KEY_PLACEHOLDER, client_configs
from server.dashboard.charts import activity_chart, completion_chart, funnel_chart
from server.dashboard.security import (
    CSRF_FIELD,
    SIGN_IN_COOKIE,
    csrf_token,
    csrf_valid,
    new_sign_in_secret,
    read_form,
    secure_headers,
)
from server.mcp_app import Runtime
from server.rest import session_cookie
from tools.core.catalog import may_call
from tools.core.context import ANONYMOUS, Principal
from tools.core.errors import BadRequest, BlohkoError, NotFound, Unauthorized
from tools.core.events import EVENT_TYPES
from tools.core.permissions import RESOURCE_ACTIONS
from tools.core.runner import run_operation
from tools.domains.oauth import AUDITED_EVENTS as OAUTH_AUDITED_EVENTS
from tools.domains.sign_ins import authenticate_session
from tools.registry import ALL_OPERATIONS, TOOLS, served_over

__all__ = ["BASE", "Dashboard"]

logger = logging.getLogger("blohko.dashboard")

BASE = "/dashboard"
SIGN_IN = f"{BASE}/sign-in"
EXPIRY_CHOICES = (("", "Never"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))
_AUDIT_PAGE_SIZE = 25
_SCHOOL_PAGE_SIZE = 20
_OPERATIONS = {op.name: op for op in served_over("dashboard")}
_AUDITED_OPERATIONS = sorted(
    {"login", *OAUTH_AUDITED_EVENTS, *(op.name for op in ALL_OPERATIONS if not op.read_only)}
)
_OUTCOMES = (
    "ok",
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "busy",
    "internal_error",
)

Signed = tuple[Principal, str]
"""The signed-in owner's principal and session token (the CSRF tokens' key)."""


def _when(value: str | datetime | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(value: str | None) -> str:
    return _when(value)[:10] if value else "—"


def _permission_grid() -> list[tuple[str, list[str | None]]]:
    """Rows of the permission checkboxes: each resource with its read and write grants (None: no such action)."""
    return [
        (resource, [f"{resource}:{action}" if action in actions else None for action in ("read", "write")])
        for resource, actions in RESOURCE_ACTIONS.items()
    ]


def tools_exposed(api_key: dict[str, Any]) -> int:
    """How many MCP tools `api_key` (a listed key) may list and call: the same decision as `tools/list`."""
    principal = Principal(
        producer_id=api_key["producerId"],
        key_id=api_key["id"],
        key_name=api_key["name"],
        grants=tuple(api_key["permissions"]),
    )
    return sum(may_call(principal, op) for op in TOOLS)


def _key_state(api_key: dict[str, Any], now: datetime) -> str:
    if api_key["revokedAt"]:
        return "revoked"
    expires = api_key["expiresAt"]
    if expires and datetime.fromisoformat(expires) <= now:
        return "expired"
    return "active"


class Dashboard:
    """The pages, over one runtime (store, clock, rate limiter) like every other door."""

    def __init__(self, runtime: Runtime, *, bundle_path: Path | None, public_url: str) -> None:
        self.runtime = runtime
        self.bundle_path = bundle_path
        self.public_url = public_url
        self.templates = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["when"] = _when
        self.templates.filters["day"] = _day

    # ---- plumbing

    async def _run(
        self, request: Request, name: str, arguments: dict[str, Any], principal: Principal
    ) -> dict[str, Any]:
        op = _OPERATIONS[name]  # only the operations served over the dashboard
        result: BaseModel = await run_operation(
            op,
            arguments,
            store=self.runtime.store,
            principal=principal,
            clock=self.runtime.clock,
            rate_limiter=self.runtime.rate_limiter,
            services=self.runtime.services,
            client_address=request.client.host if request.client else None,
        )
        return result.model_dump(mode="json", by_alias=True)

    async def _signed_in(self, request: Request) -> Signed | None:
        # The dashboard is a browser door: its one credential is the HttpOnly session cookie.
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            return await authenticate_session(self.runtime.store, token, clock=self.runtime.clock), token
        except Unauthorized:
            return None

    def _render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        signed: Signed | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            request=request,
            base=BASE,
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(signed[1]) if signed else None,
            signed_in=signed is not None,
            **context,
        )
        return secure_headers(HTMLResponse(html, status_code=status))

    def page(self, handler: Callable[..., Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """A signed-in page: without a live session, to sign-in; a POST without the session's CSRF
        token, 403; an operation's error, rendered with its status."""

        async def endpoint(request: Request) -> Response:
            signed = await self._signed_in(request)
            if signed is None:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return secure_headers(
                    RedirectResponse(f"{SIGN_IN}?{urlencode({'next': here})}", status_code=303)
                )
            form: dict[str, list[str]] = {}
            try:
                if request.method == "POST":
                    form = await read_form(request)
                    if not csrf_valid(signed[1], (form.get(CSRF_FIELD) or [None])[0]):
                        return self._render(
                            request,
                            "error.html",
                            status=403,
                            signed=signed,
                            title="Form expired",
                            message="This form has expired or did not come from this dashboard. Reload the page and try again.",
                        )
                return await handler(request, signed, form)
            except Unauthorized:  # the session ended while the page was open
                return secure_headers(RedirectResponse(SIGN_IN, status_code=303))
            except BlohkoError as error:
                return self._render(
                    request,
                    "error.html",
                    status=error.status,
                    signed=signed,
                    title="Something went wrong",
                    message=error.message,
                )

        return endpoint

    # ---- sign in, sign out

    async def root(self, request: Request) -> Response:
        return secure_headers(RedirectResponse(BASE, status_code=307))

    async def sign_in_page(self, request: Request) -> Response:
        if await self._signed_in(request) is not None:
            return secure_headers(RedirectResponse(BASE, status_code=303))
        notice = "You have signed out." if request.query_params.get("signed_out") else None
        return self._sign_in_form(request, notice=notice)

    def _sign_in_form(
        self,
        request: Request,
        *,
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
        email: str = "",
        next: str | None = None,
    ) -> Response:
        secret = new_sign_in_secret()
        response = self._render(
            request,
            "sign_in.html",
            status=status,
            sign_in_csrf=csrf_token(secret),
            error=error,
            notice=notice,
            email=email,
            next=_local_path(next or request.query_params.get("next")),
        )
        response.set_cookie(SIGN_IN_COOKIE, secret, max_age=3600, **cookie_options(request, path=BASE))
        return response

    async def sign_in(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except BadRequest as error:
            return self._sign_in_form(request, status=400, error=error.message)
        email, target = _one(form, "email"), _one(form, "next")
        if not csrf_valid(request.cookies.get(SIGN_IN_COOKIE), _one(form, CSRF_FIELD)):
            return self._sign_in_form(
                request,
                status=403,
                error="The sign-in form expired. Please try again.",
                email=email,
                next=target,
            )
        try:
            result = await self._run_login(request, email, _one(form, "password"))
        except Unauthorized:
            # Like the operation's own message, it names neither field.
            return self._sign_in_form(
                request, status=401, error="Invalid email or password.", email=email, next=target
            )
        except BadRequest:
            return self._sign_in_form(
                request, status=400, error="Enter your email and password.", email=email, next=target
            )
        except BlohkoError as error:  # the login throttle (429), a busy store (503)
            response = self._sign_in_form(
                request, status=error.status, error=error.message, email=email, next=target
            )
            retry_after = getattr(error, "retry_after", None)  # the throttle's 429 says when to retry
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        response = secure_headers(RedirectResponse(_local_path(target) or BASE, status_code=303))
        session_cookie(request, response, "set", result)
        response.delete_cookie(SIGN_IN_COOKIE, **cookie_options(request, path=BASE))
        return response

    async def _run_login(self, request: Request, email: str, password: str) -> BaseModel:
        return await run_operation(
            _OPERATIONS["login"],
            {"email": email, "password": password},
            store=self.runtime.store,
            principal=ANONYMOUS,
            clock=self.runtime.clock,
            rate_limiter=self.runtime.rate_limiter,
            services=self.runtime.services,
            client_address=request.client.host if request.client else None,
        )

    async def sign_out(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        await self._run(request, "logout", {}, signed[0])
        response = secure_headers(RedirectResponse(f"{SIGN_IN}?signed_out=1", status_code=303))
        session_cookie(request, response, "clear", None)
        return response

    # ---- overview

    async def overview(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        overview = (await self._run(request, "get_school_overview", {"days": 30}, signed[0]))["overview"]
        activity = overview["activity"]
        days = [date.fromisoformat(day["day"]) for day in activity]
        lessons = [day["lessonsCompleted"] for day in activity]
        learners = [day["activeLearners"] for day in activity]
        courses = overview["courses"]
        report = (await self._run(request, "get_school_report", {}, signed[0]))["report"]
        return self._render(
            request,
            "overview.html",
            signed=signed,
            nav="overview",
            counts=overview["counts"],
            activity=activity,
            activity_svg=activity_chart(days, lessons, learners, title_id="activity-title"),
            completion_svg=completion_chart(
                [(c["title"], c["enrollments"], c["completed"]) for c in courses], title_id="completion-title"
            )
            if courses
            else None,
            courses=courses,
            report=report,
            report_rows=_report_rows(report),
            total_lessons=sum(lessons),
            peak_learners=max(learners, default=0),
        )

    # ---- the school: courses, students, communities, students needing attention

    async def courses_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        status = request.query_params.get("status", "all")
        status = status if status in ("all", "published", "draft") else "all"
        page = _small_number(request.query_params.get("page", "")) or 1
        listed = await self._run(
            request, "list_courses", {"page": page, "limit": _SCHOOL_PAGE_SIZE, "status": status}, signed[0]
        )
        courses = []
        for course in listed["data"]:  # one page of courses, each counted by its own operation
            insights = (
                await self._run(request, "get_course_insights", {"courseId": course["id"]}, signed[0])
            )["insights"]
            courses.append({**course, "insights": insights, "lessons": len(insights["funnel"])})
        return self._render(
            request,
            "courses.html",
            signed=signed,
            nav="courses",
            courses=courses,
            course_status=status,
            pagination=listed["pagination"],
        )

    async def course_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        course_id = request.path_params["course_id"]
        insights = (await self._run(request, "get_course_insights", {"courseId": course_id}, signed[0]))[
            "insights"
        ]
        funnel = insights["funnel"]
        return self._render(
            request,
            "course.html",
            signed=signed,
            nav="courses",
            insights=insights,
            funnel_svg=funnel_chart(
                [
                    (step["position"], step["lessonTitle"], step["started"], step["completed"])
                    for step in funnel
                ],
                insights["enrollments"],
                title_id="funnel-title",
            )
            if funnel
            else None,
        )

    async def students_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        search = request.query_params.get("search", "").strip()[:200]
        page = _small_number(request.query_params.get("page", "")) or 1
        arguments: dict[str, Any] = {"page": page, "limit": _SCHOOL_PAGE_SIZE}
        if search:
            arguments["search"] = search
        listed = await self._run(request, "list_students", arguments, signed[0])
        return self._render(
            request,
            "students.html",
            signed=signed,
            nav="students",
            students=listed["data"],
            search=search,
            pagination=listed["pagination"],
            notice="The student was erased." if request.query_params.get("done") == "erased" else None,
        )

    async def student_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        student_id = request.path_params["student_id"]
        student = (await self._run(request, "get_student", {"studentId": student_id}, signed[0]))["student"]
        mine = {"studentId": student_id, "limit": 100}
        enrollments = await self._run(request, "list_enrollments", mine, signed[0])
        certificates = await self._run(request, "list_certificates", mine, signed[0])
        communities = await self._run(request, "list_communities", {"limit": 100}, signed[0])
        memberships = []
        for community in communities["data"]:
            found = await self._run(
                request,
                "list_members",
                {"communityId": community["id"], "userId": student_id, "limit": 1},
                signed[0],
            )
            memberships += [{"community": community, "member": member} for member in found["data"]]
        return self._render(
            request,
            "student.html",
            signed=signed,
            nav="students",
            student=student,
            enrollments=enrollments["data"],
            enrollments_total=enrollments["pagination"]["total"],
            certificates=certificates["data"],
            certificates_total=certificates["pagination"]["total"],
            memberships=memberships,
        )

    async def student_export(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        """The student's `export_student` document as a JSON file to save (GDPR access and portability)."""
        student_id = request.path_params["student_id"]
        document = await self._run(request, "export_student", {"studentId": student_id}, signed[0])
        # The id, not the name, names the file: it is safe in a header whatever the name holds.
        filename = f"student-{student_id}-export.json"
        response = Response(
            json.dumps(document, ensure_ascii=False, indent=2),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",  # personal data: no copy kept by a cache on the way
            },
        )
        return secure_headers(response)

    async def erase_student(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        """The typed confirmation (the student's email) goes to erase_student as its `confirm`:
        the operation refuses a wrong one, and nothing is erased."""
        student_id = request.path_params["student_id"]
        arguments = {"studentId": student_id, "confirm": _one(form, "confirm"), "posts": _one(form, "posts")}
        await self._run(request, "erase_student", arguments, signed[0])
        return secure_headers(RedirectResponse(f"{BASE}/students?done=erased", status_code=303))

    async def communities_page(
        self, request: Request, signed: Signed, form: dict[str, list[str]]
    ) -> Response:
        listed = await self._run(request, "list_communities", {"limit": 100}, signed[0])
        communities = [
            (await self._run(request, "get_community_insights", {"communityId": community["id"]}, signed[0]))[
                "insights"
            ]
            for community in listed["data"]
        ]
        return self._render(
            request,
            "communities.html",
            signed=signed,
            nav="communities",
            communities=communities,
            total=listed["pagination"]["total"],
        )

    async def attention_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        query = request.query_params
        days = _small_number(query.get("days", "")) or 14
        page = _small_number(query.get("page", "")) or 1
        arguments: dict[str, Any] = {"inactiveDays": days, "page": page, "limit": _SCHOOL_PAGE_SIZE}
        course_id = query.get("course", "").strip()
        if course_id:
            arguments["courseId"] = course_id
        listed = await self._run(request, "find_students_needing_attention", arguments, signed[0])
        paging = {"days": days, **({"course": course_id} if course_id else {})}
        return self._render(
            request,
            "attention.html",
            signed=signed,
            nav="attention",
            rows=listed["data"],
            pagination=listed["pagination"],
            days=days,
            course_id=course_id,
            paging=paging,
            silent_since=listed["silentSince"],
        )

    # ---- API keys

    async def _keys(self, request: Request, signed: Signed) -> list[dict[str, Any]]:
        listed = await self._run(request, "list_api_keys", {"limit": 100}, signed[0])
        now = self.runtime.clock()
        return [{**key, "tools": tools_exposed(key), "state": _key_state(key, now)} for key in listed["data"]]

    async def keys_page(
        self, request: Request, signed: Signed, form: dict[str, list[str]], **context: Any
    ) -> Response:
        notice = {"revoked": "The key was revoked: it stops working at once."}.get(
            request.query_params.get("done", "")
        )
        context.setdefault("notice", notice)
        return self._render(
            request,
            "keys.html",
            status=context.pop("status", 200),
            signed=signed,
            nav="keys",
            keys=await self._keys(request, signed),
            grid=_permission_grid(),
            expiry_choices=EXPIRY_CHOICES,
            **context,
        )

    async def create_key(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        try:
            created = await self._create_key(request, signed, form)
        except BadRequest as error:
            return await self.keys_page(
                request, signed, form, status=400, error=error.message, entered=_entered(form)
            )
        return await self.keys_page(request, signed, form, created=created, tools=tools_exposed(created))

    async def _create_key(
        self, request: Request, signed: Signed, form: dict[str, list[str]]
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "name": _one(form, "name").strip(),
            "permissions": form.get("permissions", []),
            "identities": _one(form, "identities") or "full",
        }
        if not arguments["permissions"]:
            raise BadRequest("Invalid input: permissions: choose at least one permission")
        expires = _one(form, "expires_in_days")
        if expires:
            days = _small_number(expires)
            if days is None:
                raise BadRequest("Invalid input: expiresInDays: choose an expiry")
            arguments["expiresInDays"] = days
        return (await self._run(request, "create_api_key", arguments, signed[0]))["apiKey"]

    async def revoke_key(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        await self._run(request, "revoke_api_key", {"id": _one(form, "id")}, signed[0])
        return secure_headers(RedirectResponse(f"{BASE}/keys?done=revoked", status_code=303))

    # ---- connect an agent

    async def connect_page(
        self, request: Request, signed: Signed, form: dict[str, list[str]], **context: Any
    ) -> Response:
        keys = [key for key in await self._keys(request, signed) if key["state"] == "active"]
        created = context.get("created")
        chosen = (
            created
            or next((key for key in keys if key["id"] == request.query_params.get("key")), None)
            or (keys[0] if keys else None)
        )
        mcp_url = f"{self.public_url}/mcp"  # never from `Host`: what is pasted must reach this server
        return self._render(
            request,
            "connect.html",
            status=context.pop("status", 200),
            signed=signed,
            nav="connect",
            keys=keys,
            chosen=chosen,
            mcp_url=mcp_url,
            configs=client_configs(mcp_url, created["key"] if created else None),
            placeholder=KEY_PLACEHOLDER,
            bundle=self.bundle_path is not None and self.bundle_path.is_file(),
            grid=_permission_grid(),
            expiry_choices=EXPIRY_CHOICES,
            **context,
        )

    async def connect_new_key(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        try:
            created = await self._create_key(request, signed, form)
        except BadRequest as error:
            return await self.connect_page(
                request, signed, form, status=400, error=error.message, entered=_entered(form)
            )
        return await self.connect_page(
            request, signed, form, created={**created, "tools": tools_exposed(created)}
        )

    async def bundle(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        if self.bundle_path is None or not self.bundle_path.is_file():
            return self._render(
                request,
                "error.html",
                status=404,
                signed=signed,
                title="No bundle",
                message="No MCP bundle has been packed on this server.",
            )
        response = FileResponse(
            self.bundle_path, media_type="application/octet-stream", filename="blohko.mcpb"
        )
        return secure_headers(response)

    # ---- OAuth: the consent page, connected apps

    async def authorize_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        """What an app asks for, with the permission grid preset to its `scope`; Allow or Deny."""
        query = request.query_params
        arguments = _app_request({name: [query[name]] for name in _APP_REQUEST_FIELDS if name in query})
        reviewed = (await self._run(request, "review_app_authorization", arguments, signed[0]))["request"]
        response = self._render(
            request,
            "authorize.html",
            signed=signed,
            nav="apps",
            app=reviewed,
            grid=_permission_grid(),
            entered={"permissions": set(reviewed["requestedPermissions"])},
            fields=_hidden_fields(query),
            loopback=urlsplit(reviewed["redirectUri"]).scheme == "http",
        )
        return _allow_form_redirect(response, reviewed["redirectUri"])

    async def authorize(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        arguments = {
            **_app_request(form),
            "codeChallenge": _one(form, "code_challenge"),
            "decision": _one(form, "decision"),
            "permissions": form.get("permissions", []),
            "identities": _one(form, "identities") or "full",
        }
        if "state" in form:
            arguments["state"] = _one(form, "state")
        answered = await self._run(request, "answer_app_authorization", arguments, signed[0])
        # Back to the app: its redirect URI, with the code or access_denied.
        return _allow_form_redirect(
            secure_headers(RedirectResponse(answered["redirectTo"], status_code=303)), answered["redirectTo"]
        )

    async def apps_page(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        listed = await self._run(request, "list_connected_apps", {"limit": 100}, signed[0])
        apps = [
            {
                **app,
                "tools": tools_exposed(
                    {**app, "producerId": signed[0].producer_id, "name": app["clientName"]}
                ),
            }
            for app in listed["data"]
        ]
        notice = {"disconnected": "The app was disconnected: its access ends at once."}.get(
            request.query_params.get("done", "")
        )
        return self._render(request, "apps.html", signed=signed, nav="apps", apps=apps, notice=notice)

    async def disconnect_app(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        await self._run(request, "disconnect_app", {"id": _one(form, "id")}, signed[0])
        return secure_headers(RedirectResponse(f"{BASE}/apps?done=disconnected", status_code=303))

    # ---- webhooks

    async def webhooks_page(
        self, request: Request, signed: Signed, form: dict[str, list[str]], **context: Any
    ) -> Response:
        listed = await self._run(request, "list_webhooks", {"limit": 100}, signed[0])
        return self._render(
            request,
            "webhooks.html",
            status=context.pop("status", 200),
            signed=signed,
            nav="webhooks",
            webhooks=listed["data"],
            event_types=EVENT_TYPES,
            **context,
        )

    async def create_webhook(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        arguments: dict[str, Any] = {
            "url": _one(form, "url").strip(),
            "eventTypes": form.get("event_types", []),
            "identities": _one(form, "identities") or "full",
        }
        if _one(form, "description").strip():
            arguments["description"] = _one(form, "description").strip()
        try:
            created = (await self._run(request, "create_webhook", arguments, signed[0]))["webhook"]
        except BadRequest as error:
            entered = {
                "url": arguments["url"],
                "description": _one(form, "description"),
                "event_types": set(arguments["eventTypes"]),
                "identities": arguments["identities"],
            }
            return await self.webhooks_page(
                request, signed, form, status=400, error=error.message, entered=entered
            )
        return await self.webhooks_page(request, signed, form, created=created)

    async def webhook_page(
        self, request: Request, signed: Signed, form: dict[str, list[str]], **context: Any
    ) -> Response:
        webhook_id = request.path_params["webhook_id"]
        listed = await self._run(request, "list_webhooks", {"limit": 100}, signed[0])
        webhook = next((item for item in listed["data"] if item["id"] == webhook_id), None)
        if webhook is None:
            raise NotFound("Webhook not found")
        deliveries = await self._run(
            request, "list_webhook_deliveries", {"webhookId": webhook_id, "limit": 50}, signed[0]
        )
        notice = _WEBHOOK_NOTICES.get(request.query_params.get("done", ""))
        context.setdefault("notice", notice)
        return self._render(
            request,
            "webhook.html",
            signed=signed,
            nav="webhooks",
            webhook=webhook,
            deliveries=deliveries["data"],
            **context,
        )

    async def webhook_action(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        webhook_id, action = request.path_params["webhook_id"], request.path_params["action"]
        ref = {"webhookId": webhook_id}
        if action == "rotate":
            rotated = (await self._run(request, "rotate_webhook_secret", ref, signed[0]))["webhook"]
            return await self.webhook_page(request, signed, form, created=rotated)
        if action == "test":
            await self._run(request, "send_test_webhook", ref, signed[0])
        elif action in ("enable", "disable"):
            await self._run(request, "update_webhook", {**ref, "enabled": action == "enable"}, signed[0])
        elif action == "delete":
            await self._run(request, "delete_webhook", ref, signed[0])
            return secure_headers(RedirectResponse(f"{BASE}/webhooks", status_code=303))
        else:
            raise NotFound("No such action")
        return secure_headers(
            RedirectResponse(f"{BASE}/webhooks/{webhook_id}?done={action}", status_code=303)
        )

    # ---- activity

    async def activity(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        query = request.query_params
        filters = {
            name: query.get(name, "").strip() for name in ("key", "operation", "outcome", "since", "until")
        }
        page = _small_number(query.get("page", "")) or 1
        arguments: dict[str, Any] = {"page": page, "limit": _AUDIT_PAGE_SIZE}
        for field, name in (("keyId", "key"), ("operation", "operation"), ("outcome", "outcome")):
            if filters[name]:
                arguments[field] = filters[name]
        error = None
        try:
            if filters["since"]:
                arguments["since"] = _day_start(filters["since"])
            if filters["until"]:
                arguments["until"] = _day_start(filters["until"], plus_days=1)  # the whole "until" day
            events = await self._run(request, "list_audit_events", arguments, signed[0])
        except BadRequest as refused:
            error, events = (
                refused.message,
                {"data": [], "pagination": {"page": 1, "totalPages": 0, "total": 0, "hasMore": False}},
            )
        keys = await self._keys(request, signed)
        names = {key["id"]: key["name"] for key in keys}
        paging = {name: value for name, value in filters.items() if value}
        return self._render(
            request,
            "activity.html",
            status=400 if error else 200,
            signed=signed,
            nav="activity",
            events=await self._named_targets(request, signed, events["data"]),
            pagination=events["pagination"],
            filters=filters,
            paging=paging,
            keys=keys,
            key_names=names,
            operations=_AUDITED_OPERATIONS,
            outcomes=_OUTCOMES,
            error=error,
        )

    async def _named_targets(
        self, request: Request, signed: Signed, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`events`, each with `targets`: its ids as a person reads them (see `_target`), named in
        one operation for the whole page."""
        ids = sorted(
            {value for event in events for value in event["targetIds"].values() if value != "[redacted]"}
        )
        named = (
            await self._run(request, "name_audit_targets", {"ids": ids}, signed[0])
            if ids
            else {"names": {}, "gone": []}
        )
        names, gone = named["names"], set(named["gone"])
        return [
            {
                **event,
                "targets": [
                    _target(field, value, names, gone)
                    for field, value in _distinct_targets(event["targetIds"])
                ],
            }
            for event in events
        ]

    # ---- account

    async def account_page(
        self, request: Request, signed: Signed, form: dict[str, list[str]], **context: Any
    ) -> Response:
        return self._render(
            request,
            "account.html",
            status=context.pop("status", 200),
            signed=signed,
            nav="account",
            **context,
        )

    async def change_password(self, request: Request, signed: Signed, form: dict[str, list[str]]) -> Response:
        new, repeated = _one(form, "new_password"), _one(form, "confirm_password")
        if new != repeated:
            return await self.account_page(
                request, signed, form, status=400, error="The new passwords do not match."
            )
        try:
            result = await self._run(
                request,
                "change_password",
                {"currentPassword": _one(form, "current_password"), "newPassword": new},
                signed[0],
            )
        except BadRequest as error:
            return await self.account_page(request, signed, form, status=400, error=_readable(error.message))
        ended = result["otherSessionsEnded"]
        notice = "Your password was changed." + (
            f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
        )
        return await self.account_page(request, signed, form, notice=notice)


_REPORT_FIGURES = (
    ("students", "newStudents", "New students"),
    ("learning", "enrollments", "Enrollments"),
    ("learning", "lessonsCompleted", "Lessons completed"),
    ("learning", "coursesCompleted", "Courses completed"),
    ("learning", "certificates", "Certificates issued"),
    ("learning", "activeLearners", "Active learners"),
    ("community", "newThreads", "New threads"),
    ("community", "newComments", "New comments"),
)


def _report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The school report's figures as table rows: label, this period, the one before, the change."""
    return [
        {"label": label, **report[part][figure]}
        for part, figure, label in _REPORT_FIGURES
        if report.get(part) is not None
    ]


_APP_REQUEST_FIELDS = ("client_id", "redirect_uri", "scope", "resource", "code_challenge", "state")


def _app_request(form: dict[str, list[str]]) -> dict[str, Any]:
    """The authorization request's parameters, as the review and answer operations take them."""
    arguments: dict[str, Any] = {"clientId": _one(form, "client_id"), "resource": _one(form, "resource")}
    for field, name in (("redirectUri", "redirect_uri"), ("scope", "scope")):
        if name in form:
            arguments[field] = _one(form, name)
    return arguments


def _hidden_fields(query: Any) -> list[tuple[str, str]]:
    """The request's parameters, carried through the consent form (and checked again when it is posted)."""
    return [(name, query[name]) for name in _APP_REQUEST_FIELDS if name in query]


def _allow_form_redirect(response: Response, redirect_uri: str) -> Response:
    """Let the consent form's answer redirect to the app: browsers apply `form-action` to the
    redirects after a form post, and the app's redirect URI is another origin."""
    parts = urlsplit(redirect_uri)
    response.headers["Content-Security-Policy"] = response.headers["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )
    return response


_ID_KINDS = {
    "user": "user",
    "course": "course",
    "section": "section",
    "lesson": "lesson",
    "enrollment": "enrollment",
    "cat": "category",
    "comm": "community",
    "mem": "member",
    "prod": "school",
    "thread": "thread",
    "cmt": "comment",
    "media": "media",
    "key": "key",
    "wh": "webhook",
    "sess": "session",
    "app": "app",
}
"""What an id is, by its prefix (`storage.ids.new_id`): the label of an `id` argument."""


def _distinct_targets(target_ids: dict[str, str]) -> list[tuple[str, str]]:
    """An event's targets, without an `id` that another field names too (`revoke_api_key` records
    its key as `id` and `apiKeyId`)."""
    named_elsewhere = {value for field, value in target_ids.items() if field != "id"}
    return [
        (field, value) for field, value in target_ids.items() if field != "id" or value not in named_elsewhere
    ]


def _target(field: str, value: str, names: dict[str, str], gone: set[str]) -> dict[str, Any]:
    """One target of an audit event for the Activity page: its label (`courseId` -> "course", `apiKeyId` -> "api key"), and
    its name when the row still exists; an id that has a name but whose row is gone (deleted
    since) is shown as the id, marked `gone`. Ids without names (sessions) show as ids."""
    prefix = value.partition("_")[0]
    label = (
        _ID_KINDS.get(prefix, field)
        if field == "id"
        else re.sub(r"(?<=[a-z])([A-Z])", r" \1", field.removesuffix("Id")).lower()
    )
    return {"label": label, "id": value, "name": names.get(value), "gone": value in gone}


_WEBHOOK_NOTICES = {
    "test": "A webhook.test event is queued: its delivery appears below within seconds.",
    "enable": "The webhook is enabled: events are delivered again.",
    "disable": "The webhook is disabled: nothing is sent until you enable it.",
}


_MAX_DIGITS = 9
"""A number typed into a form or a URL is at most this long: the operation refuses what is out of
its range, naming it, and `int` never meets a text of thousands of digits (a ValueError past 4300)."""


def _small_number(text: str) -> int | None:
    """`text` as a whole number of 1 to `_MAX_DIGITS` ASCII digits, else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS else None


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _entered(form: dict[str, list[str]]) -> dict[str, Any]:
    """What the owner typed into a key form, to show it again with the error."""
    return {
        "name": _one(form, "name"),
        "permissions": set(form.get("permissions", [])),
        "expires": _one(form, "expires_in_days"),
        "identities": _one(form, "identities"),
    }


def _local_path(target: str | None) -> str | None:
    """`target` when it is a path of this dashboard (never another site: no open redirect)."""
    if (
        target
        and target.startswith(BASE)
        and not target.startswith("//")
        and "\\" not in target
        and "://" not in target
    ):
        return target
    return None


def _day_start(text: str, *, plus_days: int = 0) -> str:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadRequest("Invalid input: dates are written YYYY-MM-DD") from None
    return datetime.combine(day + timedelta(days=plus_days), datetime.min.time(), tzinfo=UTC).isoformat()


def _readable(message: str) -> str:
    return (
        message.removeprefix("Invalid input: ")
        .replace("currentPassword", "Current password")
        .replace("newPassword", "New password")
    )
