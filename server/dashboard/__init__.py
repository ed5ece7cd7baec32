"""The Producer Dashboard at `/dashboard`: the owner signs in and manages the school's API keys,
connects agents (API keys, or OAuth: the consent page and the connected apps), reads the activity
log and the school's overview, courses (with their lesson funnels), students, communities and
the students needing attention. Server-rendered HTML over
the operation catalog (see `views`), one stylesheet and one small script, no build step."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from server.dashboard.views import BASE, Dashboard
from server.mcp_app import Runtime

__all__ = ["BASE", "dashboard_routes"]

STATIC = Path(__file__).parent / "static"
FAVICON = STATIC / "favicon.ico"
"""Blohko's mark, 32×32: browsers ask every site for `/favicon.ico`, and without it log a 404 on every page."""


async def _favicon(request: Request) -> Response:
    return FileResponse(
        FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )


def dashboard_routes(runtime: Runtime, *, bundle_path: Path | None, public_url: str) -> list[BaseRoute]:
    """The pages; `public_url` (`Settings.effective_public_url`) is the base of the URLs they show."""
    pages = Dashboard(runtime, bundle_path=bundle_path, public_url=public_url)
    page = pages.page
    return [
        Route("/", pages.root, methods=["GET"]),
        Route("/favicon.ico", _favicon, methods=["GET"]),
        Route(BASE, page(pages.overview), methods=["GET"]),
        Route(f"{BASE}/sign-in", pages.sign_in_page, methods=["GET"]),
        Route(f"{BASE}/sign-in", pages.sign_in, methods=["POST"]),
        Route(f"{BASE}/sign-out", page(pages.sign_out), methods=["POST"]),
        Route(f"{BASE}/keys", page(pages.keys_page), methods=["GET"]),
        Route(f"{BASE}/keys", page(pages.create_key), methods=["POST"]),
        Route(f"{BASE}/keys/revoke", page(pages.revoke_key), methods=["POST"]),
        Route(f"{BASE}/connect", page(pages.connect_page), methods=["GET"]),
        Route(f"{BASE}/connect", page(pages.connect_new_key), methods=["POST"]),
        Route(f"{BASE}/connect/blohko.mcpb", page(pages.bundle), methods=["GET"]),
        Route(f"{BASE}/authorize", page(pages.authorize_page), methods=["GET"]),
        Route(f"{BASE}/authorize", page(pages.authorize), methods=["POST"]),
        Route(f"{BASE}/apps", page(pages.apps_page), methods=["GET"]),
        Route(f"{BASE}/apps/disconnect", page(pages.disconnect_app), methods=["POST"]),
        Route(f"{BASE}/webhooks", page(pages.webhooks_page), methods=["GET"]),
        Route(f"{BASE}/webhooks", page(pages.create_webhook), methods=["POST"]),
        Route(f"{BASE}/webhooks/{{webhook_id}}", page(pages.webhook_page), methods=["GET"]),
        Route(f"{BASE}/webhooks/{{webhook_id}}/{{action}}", page(pages.webhook_action), methods=["POST"]),
        Route(f"{BASE}/courses", page(pages.courses_page), methods=["GET"]),
        Route(f"{BASE}/courses/{{course_id}}", page(pages.course_page), methods=["GET"]),
        Route(f"{BASE}/students", page(pages.students_page), methods=["GET"]),
        Route(f"{BASE}/students/{{student_id}}", page(pages.student_page), methods=["GET"]),
        Route(f"{BASE}/students/{{student_id}}/export.json", page(pages.student_export), methods=["GET"]),
        Route(f"{BASE}/students/{{student_id}}/erase", page(pages.erase_student), methods=["POST"]),
        Route(f"{BASE}/communities", page(pages.communities_page), methods=["GET"]),
        Route(f"{BASE}/attention", page(pages.attention_page), methods=["GET"]),
        Route(f"{BASE}/activity", page(pages.activity), methods=["GET"]),
        Route(f"{BASE}/account", page(pages.account_page), methods=["GET"]),
        Route(f"{BASE}/account", page(pages.change_password), methods=["POST"]),
        Mount(f"{BASE}/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
