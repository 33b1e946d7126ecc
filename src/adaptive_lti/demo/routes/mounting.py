"""Mounting the demo platform on the tool's app (``cli/app.py`` calls ``mount`` when
``Settings.demo_platform`` is on): its parts on ``app.state``, its static files, the routers of
each area, and ``/`` redirecting to its home page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from adaptive_lti.demo import deep_linking
from adaptive_lti.demo.platform import (
    DEMO_PLATFORM_PATH,
    DemoPlatform,
    PendingLaunchCodec,
    load_or_create_platform_key,
)
from adaptive_lti.demo.routes import (
    deep_linking_pages,
    launches,
    registration_pages,
    service_endpoints,
)
from adaptive_lti.demo.routes.common import DEMO_DIR, STATIC_ROUTE_NAME
from adaptive_lti.demo.routes.service_endpoints import service_error
from adaptive_lti.demo.services import (
    AccessTokens,
    DemoGradebook,
    ServiceError,
)
from adaptive_lti.demo.store import STORE_FILE_NAME, DemoPlatformStore
from adaptive_lti.demo.tool_link import ToolLink

# ``/`` is the demo's home page when the demo is on (the tool itself has no page there).
root_router = APIRouter()


def mount(app: FastAPI, *, base_url: str, key_file: Path, tool: ToolLink) -> DemoPlatform:
    """Build the demo platform for the tool at ``base_url``, register it with the tool, and serve
    its routes and files from ``app``. Its key, gradebook and store live beside ``key_file``."""
    key = load_or_create_platform_key(key_file)
    platform = DemoPlatform.for_tool(base_url, key)
    tool.register_platform(platform, datetime.now(UTC))
    # The demo signs with the tool's secret: configured, or made and kept as the tool's.
    secret = tool.signing_secret()
    app.state.demo_platform = platform
    app.state.demo_tool = tool
    app.state.demo_pending_launch_codec = PendingLaunchCodec(secret)
    app.state.demo_access_tokens = AccessTokens(platform, secret)
    app.state.demo_gradebook = DemoGradebook(
        key_file.with_name("demo-platform-gradebook.json"), platform
    )
    app.state.demo_store = DemoPlatformStore(key_file.with_name(STORE_FILE_NAME))
    app.state.demo_return_codec = deep_linking.ReturnSessionCodec(secret)
    app.mount(
        DEMO_PLATFORM_PATH + "/static",
        StaticFiles(directory=DEMO_DIR / "static"),
        name=STATIC_ROUTE_NAME,
    )
    app.add_exception_handler(ServiceError, service_error)
    for area in (launches, service_endpoints, deep_linking_pages, registration_pages):
        app.include_router(area.router)
    app.include_router(root_router)
    return platform


@root_router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse(DEMO_PLATFORM_PATH + "/", status_code=303)
