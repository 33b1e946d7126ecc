"""What the demo platform's route modules share: its templates and static files (a separate site
from the tool's, as a VLE is), the parts ``mount`` puts on ``app.state`` as dependencies, the
signed-in person's cookie, the pending-launch cookie, and the pages every flow may answer with
(a form the browser posts at once, Moodle's error page).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from adaptive_lti.core.errors import NotFoundError
from adaptive_lti.demo import deep_linking
from adaptive_lti.demo.platform import (
    DEMO_PLATFORM_PATH,
    PENDING_LAUNCH_COOKIE,
    PENDING_LAUNCH_MAX_AGE_SECONDS,
    DemoPerson,
    DemoPlatform,
    FormPost,
    PendingLaunch,
    PendingLaunchCodec,
)
from adaptive_lti.demo.services import AccessTokens, DemoGradebook
from adaptive_lti.demo.store import DemoPlatformStore
from adaptive_lti.demo.tool_link import ToolLink

DEMO_DIR = Path(__file__).resolve().parents[1]  # demo/, beside this routes package


# The demo's own pages and files: a separate site from the tool's, as a VLE is.
templates = Jinja2Templates(directory=DEMO_DIR / "templates")


STATIC_ROUTE_NAME = "demo_platform_static"


# The platform's pages are forms for the browser to post at once: no caching, no framing by
# other sites, no referrer carrying the state or hints elsewhere. Framing by the platform itself
# is allowed: an embedded launch runs inside the course page's iframe, as Moodle's does (Moodle
# sends "X-Frame-Options: sameorigin" unless framing is allowed site-wide).
# The person logged in to the demo platform (Moodle's session cookie), signed like the pending
# launch and as short lived.
SIGNED_IN_COOKIE = "demo_platform_user"


NO_STORE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}


def get_now(request: Request) -> datetime:
    """The server's clock: tests move it with ``app.state.clock``, as the tool's."""
    clock = getattr(request.app.state, "clock", None)
    now: datetime = clock() if clock is not None else datetime.now(UTC)
    return now


def _app_state(attribute: str) -> Any:
    """A dependency that hands a handler one of the parts ``mount`` put on ``app.state``."""

    def dependency(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    return Depends(dependency)


PlatformDep = Annotated[DemoPlatform, _app_state("demo_platform")]


StoreDep = Annotated[DemoPlatformStore, _app_state("demo_store")]


ReturnCodecDep = Annotated[deep_linking.ReturnSessionCodec, _app_state("demo_return_codec")]


CodecDep = Annotated[PendingLaunchCodec, _app_state("demo_pending_launch_codec")]


TokensDep = Annotated[AccessTokens, _app_state("demo_access_tokens")]


GradebookDep = Annotated[DemoGradebook, _app_state("demo_gradebook")]


ToolDep = Annotated[ToolLink, _app_state("demo_tool")]


def form_post_page(
    request: Request, form: FormPost, heading: str, explanation: str, button: str
) -> Response:
    return templates.TemplateResponse(
        request,
        "form_post.html",
        {"form": form, "heading": heading, "explanation": explanation, "button": button},
        headers=NO_STORE_HEADERS,
    )


def set_pending_cookie(
    response: Response, platform: DemoPlatform, codec: PendingLaunchCodec, pending: PendingLaunch
) -> None:
    response.set_cookie(
        PENDING_LAUNCH_COOKIE,
        codec.encode(pending),
        max_age=PENDING_LAUNCH_MAX_AGE_SECONDS,
        path=DEMO_PLATFORM_PATH,
        httponly=True,
        samesite="lax",
        secure=platform.issuer.startswith("https://"),
    )


def person_or_404(platform: DemoPlatform, person: str) -> DemoPerson:
    chosen = platform.person(person[:64])
    if chosen is None:
        raise NotFoundError(
            f"The demo platform has no person called {person[:64]!r}.",
            hint="Go back to the demo platform's home page and pick one of its people.",
        )
    return chosen


def moodle_error_page(request: Request, message: str) -> Response:
    """An error page as Moodle shows one (HTTP 404, HTML), for what Moodle fails on."""
    return templates.TemplateResponse(
        request,
        "moodle_error.html",
        {"message": message},
        status_code=404,
        headers=NO_STORE_HEADERS,
    )
