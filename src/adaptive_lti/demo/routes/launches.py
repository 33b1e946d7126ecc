"""The demo platform's launches: its home page, the button that starts a launch as a demo person
(and Moodle's ``mod/lti/launch.php``), the OIDC authorization endpoint that answers the tool's
login with a signed id_token, the platform's JWKS and OpenID configuration, and the course page
that embeds the tool in a frame as Moodle does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from adaptive_lti.core.errors import NotFoundError, PermissionDeniedError
from adaptive_lti.demo import deep_linking, dynamic_registration
from adaptive_lti.demo.platform import (
    DEEP_LINKING_COURSE_MODULE_ID,
    DEMO_PLATFORM_PATH,
    PENDING_LAUNCH_COOKIE,
    DemoActivity,
    DemoPlatform,
    PendingLaunch,
)
from adaptive_lti.demo.routes.common import (
    NO_STORE_HEADERS,
    SIGNED_IN_COOKIE,
    CodecDep,
    PlatformDep,
    ReturnCodecDep,
    StoreDep,
    form_post_page,
    get_now,
    person_or_404,
    set_pending_cookie,
    templates,
)
from adaptive_lti.demo.store import DemoPlatformStore

router = APIRouter(prefix=DEMO_PLATFORM_PATH, tags=["demo platform"])


@router.get("/", name="demo_platform_home")
def home(request: Request, platform: PlatformDep, store: StoreDep) -> Response:
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "platform": platform,
            "learners": [person for person in platform.people if not person.is_instructor],
            "instructors": [person for person in platform.people if person.is_instructor],
            "added_activities": deep_linking.added_activities(store),
        },
    )


def _activity_or_404(
    platform: DemoPlatform, store: DemoPlatformStore, activity: str
) -> DemoActivity:
    if not activity:
        return platform.activity
    found = platform.find_activity(activity, deep_linking.added_activities(store))
    if found is None:
        raise NotFoundError(
            f"The course has no activity with course module id {activity[:20]!r}.",
            hint="Go back to the demo platform's home page and launch one of its activities.",
        )
    return found


@router.post("/launch", name="demo_platform_launch")
def launch(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    store: StoreDep,
    person: Annotated[str, Form(max_length=64)],
    activity: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Log the browser in to the platform as ``person`` and start a launch at the tool of
    ``activity`` (a course module id; the course's fixed activity when empty)."""
    chosen = platform.person(person)
    if chosen is None:
        raise NotFoundError(
            f"The demo platform has no person called {person!r}.",
            hint="Go back to the demo platform's home page and press one of its buttons.",
        )
    launched = _activity_or_404(platform, store, activity)
    response = form_post_page(
        request,
        platform.login_initiation(chosen, launched),
        heading=f"Launching “{launched.title}” as {chosen.name}",
        explanation="The platform starts an LTI 1.3 login at the tool (OIDC third-party "
        "initiated login). Your browser sends this form by itself.",
        button="Continue to the tool",
    )
    set_pending_cookie(response, platform, codec, platform.pending_launch_for(chosen, launched))
    # Who is logged in to the platform (Moodle's own session), for mod/lti/launch.php later.
    response.set_cookie(
        SIGNED_IN_COOKIE,
        codec.encode(PendingLaunch(user_id=chosen.user_id, course_module_id="0")),
        path=DEMO_PLATFORM_PATH,
        httponly=True,
        samesite="lax",
        secure=platform.issuer.startswith("https://"),
    )
    return response


@router.get("/mod/lti/launch.php", name="demo_platform_moodle_launch")
def moodle_launch(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    store: StoreDep,
    course_module: Annotated[str, Query(alias="id", max_length=20)] = "",
) -> Response:
    """Moodle's ``mod/lti/launch.php?id=<cmid>``: a new launch of the activity for whoever is
    logged in to the platform, with a fresh launch in progress (what a tool's "open in a new
    window" link comes back to, since the old hint was used up)."""
    signed_in = codec.decode(request.cookies.get(SIGNED_IN_COOKIE))
    person = platform.person(signed_in.user_id) if signed_in is not None else None
    if person is None:
        raise PermissionDeniedError(
            "You are not logged in to the demo platform in this window.",
            hint="Open the demo platform's home page, pick a person, and launch the activity.",
        )
    if not course_module.isdigit():
        raise NotFoundError(
            "mod/lti/launch.php needs the activity's course module id (?id=7).",
            hint="Go back to the course page and open the activity from there.",
        )
    activity = _activity_or_404(platform, store, course_module)
    return launch(request, platform, codec, store, person.key, activity.course_module_id)


@router.api_route("/auth", methods=["GET", "POST"], name="demo_platform_auth")
async def authorize(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    store: StoreDep,
    return_codec: ReturnCodecDep,
) -> Response:
    """The OIDC authorization endpoint (Security Framework 1.0 §5.1.1.2), like Moodle's auth.php."""
    parameters: dict[str, str] = {name: value for name, value in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        parameters.update({name: value for name, value in form.items() if isinstance(value, str)})
    pending = codec.decode(request.cookies.get(PENDING_LAUNCH_COOKIE))
    if pending is not None and pending.client_id is not None:
        # A launch through a tool registered by dynamic registration (Manage tools).
        platform = await run_in_threadpool(
            dynamic_registration.platform_for_tool, store, platform, pending.client_id
        )
    added: list[DemoActivity] = []
    return_url = None
    if pending is not None and pending.course_module_id not in (
        platform.activity.course_module_id,
        DEEP_LINKING_COURSE_MODULE_ID,
    ):
        added = await run_in_threadpool(deep_linking.added_activities, store)
    teacher = platform.person(pending.user_id) if pending is not None else None
    if (
        pending is not None
        and pending.course_module_id == DEEP_LINKING_COURSE_MODULE_ID
        and teacher
    ):
        return_url = return_codec.return_url(platform, teacher)
    # The tool's clock (tests may move it): tokens must be fresh by the clock that checks them.
    answer = platform.authorize(
        parameters,
        pending,
        now=int(get_now(request).timestamp()),
        added_activities=added,
        deep_link_return_url=return_url,
    )
    if answer.is_error:
        heading = "The platform refused the tool's request"
        explanation = (
            f"{answer.fields['error']}: {answer.fields.get('error_description', '')}. "
            "The platform tells the tool by posting the error back to it."
        )
    else:
        heading = "Signed in: returning to the tool"
        explanation = "The platform sends the tool a signed id_token. Your browser sends it."
    response = form_post_page(request, answer, heading, explanation, "Continue to the tool")
    # The pending launch is single use, as Moodle's session entry.
    response.delete_cookie(PENDING_LAUNCH_COOKIE, path=DEMO_PLATFORM_PATH)
    return response


@router.get("/jwks.json", name="demo_platform_jwks")
def jwks(platform: PlatformDep) -> JSONResponse:
    return JSONResponse(platform.key.public_jwks(), headers={"Cache-Control": "max-age=300"})


@router.get("/.well-known/openid-configuration", name="demo_platform_openid_configuration")
def openid_configuration(platform: PlatformDep) -> dict[str, Any]:
    return platform.openid_configuration()


@router.get("/course/{person}", name="demo_platform_course")
def course_page(request: Request, platform: PlatformDep, person: str) -> Response:
    """The activity's page in the course, signed in as ``person``, with the tool embedded: an
    iframe whose page starts the launch, like Moodle's mod/lti/view.php framing launch.php when
    the activity's launch container is "Embed". The frame may ask to fit its content
    (``lti.frameResize``)."""
    chosen = person_or_404(platform, person)
    return templates.TemplateResponse(
        request,
        "course.html",
        {"platform": platform, "person": chosen},
        headers=NO_STORE_HEADERS,
    )


@router.get("/course/{person}/launch", name="demo_platform_framed_launch")
def framed_launch(
    request: Request, platform: PlatformDep, codec: CodecDep, store: StoreDep, person: str
) -> Response:
    """What the course page's iframe loads (Moodle's launch.php): the launch, started inside it."""
    return launch(request, platform, codec, store, person_or_404(platform, person).key)
