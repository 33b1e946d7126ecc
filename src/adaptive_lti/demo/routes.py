"""HTTP routes of the built-in demo LTI platform (protocol in ``demo/platform.py``).

Mounted through the app factory's hook (``cli/app.py``) when ``Settings.demo_platform`` is on: the platform's home page (``/demo-platform/``,
and ``/`` redirects there), the button that starts a launch as a demo person, the OIDC
authorization endpoint, the platform's JWKS and OpenID configuration; the teacher's "Add an
activity" by deep linking and its return address (``demo/deep_linking.py``); the
administrator's "Manage tools" page that registers a tool by dynamic registration and the
registration endpoint the tool posts to (``demo/dynamic_registration.py``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from adaptive_lti.core.errors import NotFoundError, PermissionDeniedError
from adaptive_lti.core.lti import PlatformRegistrationInfo, RegistrationStatus
from adaptive_lti.demo import deep_linking, dynamic_registration
from adaptive_lti.demo.platform import (
    DEEP_LINKING_COURSE_MODULE_ID,
    DEMO_PLATFORM_PATH,
    PENDING_LAUNCH_COOKIE,
    PENDING_LAUNCH_MAX_AGE_SECONDS,
    DemoActivity,
    DemoPerson,
    DemoPlatform,
    FormPost,
    PendingLaunch,
    PendingLaunchCodec,
    load_or_create_platform_key,
)
from adaptive_lti.demo.services import (
    NRPS_SCOPE,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    AccessTokens,
    DemoGradebook,
    ServiceError,
    ServiceUrls,
    line_item_json,
    memberships_json,
    result_json,
)
from adaptive_lti.demo.store import (
    MOODLE_JWKS_FETCH_FAILURE,
    STORE_FILE_NAME,
    DemoPlatformStore,
    curl_blocks_tool,
    set_curl_blocks_tool,
)
from adaptive_lti.demo.tool_link import ToolLink

DEMO_DIR = Path(__file__).resolve().parent
# The demo's own pages and files: a separate site from the tool's, as a VLE is.
templates = Jinja2Templates(directory=DEMO_DIR / "templates")
STATIC_ROUTE_NAME = "demo_platform_static"

router = APIRouter(prefix=DEMO_PLATFORM_PATH, tags=["demo platform"])
root_router = APIRouter()

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
    app.add_exception_handler(ServiceError, _service_error)
    app.include_router(router)
    app.include_router(root_router)
    return platform


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


def _form_post_page(
    request: Request, form: FormPost, heading: str, explanation: str, button: str
) -> Response:
    return templates.TemplateResponse(
        request,
        "form_post.html",
        {"form": form, "heading": heading, "explanation": explanation, "button": button},
        headers=NO_STORE_HEADERS,
    )


@root_router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse(DEMO_PLATFORM_PATH + "/", status_code=303)


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


def _set_pending_cookie(
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
    response = _form_post_page(
        request,
        platform.login_initiation(chosen, launched),
        heading=f"Launching “{launched.title}” as {chosen.name}",
        explanation="The platform starts an LTI 1.3 login at the tool (OIDC third-party "
        "initiated login). Your browser sends this form by itself.",
        button="Continue to the tool",
    )
    _set_pending_cookie(response, platform, codec, platform.pending_launch_for(chosen, launched))
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
    response = _form_post_page(request, answer, heading, explanation, "Continue to the tool")
    # The pending launch is single use, as Moodle's session entry.
    response.delete_cookie(PENDING_LAUNCH_COOKIE, path=DEMO_PLATFORM_PATH)
    return response


@router.get("/jwks.json", name="demo_platform_jwks")
def jwks(platform: PlatformDep) -> JSONResponse:
    return JSONResponse(platform.key.public_jwks(), headers={"Cache-Control": "max-age=300"})


@router.get("/.well-known/openid-configuration", name="demo_platform_openid_configuration")
def openid_configuration(platform: PlatformDep) -> dict[str, Any]:
    return platform.openid_configuration()


# --- the course page with the tool embedded, as Moodle shows it ------------------------------


def _person_or_404(platform: DemoPlatform, person: str) -> DemoPerson:
    chosen = platform.person(person[:64])
    if chosen is None:
        raise NotFoundError(
            f"The demo platform has no person called {person[:64]!r}.",
            hint="Go back to the demo platform's home page and pick one of its people.",
        )
    return chosen


@router.get("/course/{person}", name="demo_platform_course")
def course_page(request: Request, platform: PlatformDep, person: str) -> Response:
    """The activity's page in the course, signed in as ``person``, with the tool embedded: an
    iframe whose page starts the launch, like Moodle's mod/lti/view.php framing launch.php when
    the activity's launch container is "Embed". The frame may ask to fit its content
    (``lti.frameResize``)."""
    chosen = _person_or_404(platform, person)
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
    return launch(request, platform, codec, store, _person_or_404(platform, person).key)


# --- LTI Advantage services (demo/services.py) ---------------------------------------

MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
READ_LINE_ITEMS = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)


def _service_error(request: Request, error: Exception) -> JSONResponse:
    """Service refusals as the platform answers them: JSON, with RFC 6750's challenge on 401."""
    assert isinstance(error, ServiceError)
    headers = (
        {"WWW-Authenticate": f'Bearer error="{error.error}"'} if error.status_code == 401 else {}
    )
    return JSONResponse(error.body(), status_code=error.status_code, headers=headers)


def _now_seconds(request: Request) -> int:
    return int(get_now(request).timestamp())


def _moodle_error_page(request: Request, message: str) -> Response:
    """An error page as Moodle shows one (HTTP 404, HTML), for what Moodle fails on."""
    return templates.TemplateResponse(
        request,
        "moodle_error.html",
        {"message": message},
        status_code=404,
        headers=NO_STORE_HEADERS,
    )


def _check_course(platform: DemoPlatform, course_id: str) -> None:
    if course_id != platform.course.id:
        raise ServiceError(404, "not_found", f"the platform has no course {course_id!r}")


def _service_access(*needed: str) -> Any:
    """A dependency for an AGS call: the course exists and the bearer token grants a scope."""

    def check(request: Request, course_id: str, platform: PlatformDep, tokens: TokensDep) -> None:
        _check_course(platform, course_id)
        tokens.check(request.headers.get("authorization"), needed, _now_seconds(request))

    return Depends(check)


@router.post("/token", name="demo_platform_token")
def token(
    request: Request,
    tokens: TokensDep,
    tool_link: ToolDep,
    store: StoreDep,
    grant_type: Annotated[str, Form(max_length=100)] = "",
    client_assertion_type: Annotated[str, Form(max_length=200)] = "",
    client_assertion: Annotated[str, Form(max_length=16_000)] = "",
    scope: Annotated[str, Form(max_length=2_000)] = "",
) -> Response:
    """OAuth 2 client credentials (Security Framework §4.1), answered as Moodle's token.php:
    JSON sent as text/html."""
    if curl_blocks_tool(store):
        # Moodle's token.php cannot fetch the tool's key set to check the assertion.
        return _moodle_error_page(request, MOODLE_JWKS_FETCH_FAILURE)
    form = {
        "grant_type": grant_type,
        "client_assertion_type": client_assertion_type,
        "client_assertion": client_assertion,
        "scope": scope,
    }
    registered = [
        tool.client_id
        for tool in dynamic_registration.tool_registrations(store)
        if tool.status == dynamic_registration.STATUS_ACTIVE
    ]
    answer = tokens.issue(form, tool_link.published_jwks(), _now_seconds(request), registered)
    return JSONResponse(answer, media_type="text/html; charset=utf-8")


@router.get(
    "/services/{course_id}/lineitems",
    name="demo_platform_line_items",
    dependencies=[_service_access(*READ_LINE_ITEMS)],
)
def line_items(
    platform: PlatformDep,
    gradebook: GradebookDep,
    resource_link_id: str | None = None,
    resource_id: str | None = None,
    tag: str | None = None,
) -> Response:
    """AGS §3.2: the course's line items, filtered as the query asks."""
    urls = ServiceUrls(platform)
    items = [
        line_item_json(urls, item)
        for item in gradebook.line_items()
        if (resource_link_id is None or item.resource_link_id == resource_link_id)
        and (resource_id is None or item.resource_id == resource_id)
        and (tag is None or item.tag == tag)
    ]
    return JSONResponse(items, media_type=MEDIA_LINEITEM_CONTAINER)


@router.post(
    "/services/{course_id}/lineitems",
    name="demo_platform_add_line_item",
    dependencies=[_service_access(SCOPE_LINEITEM)],
)
def add_line_item(
    body: Annotated[dict[str, Any], Body()], platform: PlatformDep, gradebook: GradebookDep
) -> Response:
    """AGS §3.2.4: a new line item (a new gradebook column)."""
    item = gradebook.add_line_item(body)
    return JSONResponse(
        line_item_json(ServiceUrls(platform), item), status_code=201, media_type=MEDIA_LINEITEM
    )


@router.get(
    "/services/{course_id}/lineitems/{item_id}/lineitem",
    name="demo_platform_line_item",
    dependencies=[_service_access(*READ_LINE_ITEMS)],
)
def line_item(item_id: str, platform: PlatformDep, gradebook: GradebookDep) -> Response:
    item = gradebook.line_item(item_id)
    return JSONResponse(line_item_json(ServiceUrls(platform), item), media_type=MEDIA_LINEITEM)


@router.post(
    "/services/{course_id}/lineitems/{item_id}/lineitem/scores",
    name="demo_platform_scores",
    dependencies=[_service_access(SCOPE_SCORE)],
)
def post_score(
    item_id: str,
    body: Annotated[dict[str, Any], Body()],
    platform: PlatformDep,
    gradebook: GradebookDep,
) -> Response:
    """AGS §3.4: a score for one learner; refused for people who cannot be graded."""
    gradable = {person.user_id for person in platform.people if not person.is_instructor}
    gradebook.record_score(item_id, body, gradable)
    return Response(status_code=200)


@router.get(
    "/services/{course_id}/lineitems/{item_id}/lineitem/results",
    name="demo_platform_results",
    dependencies=[_service_access(SCOPE_RESULT_READONLY)],
)
def results(
    item_id: str, platform: PlatformDep, gradebook: GradebookDep, user_id: str | None = None
) -> Response:
    """AGS §3.3: the results of a line item, as the platform stored them (rescaled)."""
    item = gradebook.line_item(item_id)
    urls = ServiceUrls(platform)
    body = [result_json(urls, item, result) for result in gradebook.results(item_id, user_id)]
    return JSONResponse(body, media_type=MEDIA_RESULT_CONTAINER)


@router.get(
    "/services/CourseSection/{course_id}/bindings/{binding}/memberships",
    name="demo_platform_memberships",
)
def memberships(
    request: Request,
    course_id: str,
    binding: str,
    platform: PlatformDep,
    tokens: TokensDep,
    store: StoreDep,
) -> Response:
    """NRPS 2.0 §2: the course's members, with Moodle's short role names. The binding is the
    tool type (deployment): the built-in one or one registered by dynamic registration."""
    _check_course(platform, course_id)
    deployments = {platform.deployment_id} | {
        tool.deployment_id
        for tool in dynamic_registration.tool_registrations(store)
        if tool.status == dynamic_registration.STATUS_ACTIVE
    }
    if binding not in deployments:
        raise ServiceError(404, "not_found", f"the course has no tool binding {binding!r}")
    tokens.check(request.headers.get("authorization"), (NRPS_SCOPE,), _now_seconds(request))
    return JSONResponse(
        memberships_json(ServiceUrls(platform), platform.people), media_type=MEDIA_MEMBERSHIPS
    )


@router.post("/services/outcomes", name="demo_platform_basic_outcomes")
def basic_outcomes() -> Response:
    """The legacy LTI 1.1 Basic Outcomes service the ``lti-bo`` claim names (Moodle sends the
    claim for compatibility): the demo platform does not offer it; LTI 1.3 tools use AGS."""
    return JSONResponse(
        {
            "error": "not_implemented",
            "error_description": "The demo platform does not offer LTI 1.1 Basic Outcomes: "
            "send scores with LTI Assignment and Grade Services (the lti-ags endpoint claim).",
        },
        status_code=501,
    )


@router.get("/gradebook", name="demo_platform_gradebook")
def gradebook_page(request: Request, platform: PlatformDep, gradebook: GradebookDep) -> Response:
    """The course's gradebook, as the instructor sees it in the VLE."""
    items = gradebook.line_items()
    scores = {
        item.id: {result.user_id: result for result in gradebook.results(item.id)} for item in items
    }
    return templates.TemplateResponse(
        request,
        "gradebook.html",
        {
            "platform": platform,
            "items": items,
            "scores": scores,
            "learners": [person for person in platform.people if not person.is_instructor],
        },
    )


# --- deep linking: the teacher adds an activity (demo/deep_linking.py) -----------------


def _instructor_or_403(platform: DemoPlatform, person: str) -> DemoPerson:
    chosen = _person_or_404(platform, person)
    if not chosen.is_instructor:
        raise PermissionDeniedError(
            f"{chosen.name} cannot add activities to the course: only the instructor can.",
            hint="Go back to the demo platform's home page and add the activity as the instructor.",
        )
    return chosen


@router.post("/deep-linking/start", name="demo_platform_deep_linking_start")
def deep_linking_start(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    person: Annotated[str, Form(max_length=64)],
) -> Response:
    """ "Add an activity" from the activity chooser: an OIDC login whose ``lti_message_hint`` is
    course module 0, which the authorization endpoint answers with an LtiDeepLinkingRequest."""
    teacher = _instructor_or_403(platform, person)
    response = _form_post_page(
        request,
        platform.deep_linking_initiation(teacher),
        heading=f"Adding an activity as {teacher.name}",
        explanation="The platform asks the tool what to add (LTI Deep Linking): it starts an "
        "LTI 1.3 login at the tool for a deep linking request. Your browser sends this form by "
        "itself.",
        button="Continue to the tool",
    )
    _set_pending_cookie(response, platform, codec, platform.pending_deep_linking_for(teacher))
    return response


@router.post("/deep-linking/return", name="demo_platform_deep_linking_return")
def deep_linking_return(
    request: Request,
    platform: PlatformDep,
    store: StoreDep,
    gradebook: GradebookDep,
    return_codec: ReturnCodecDep,
    tool_link: ToolDep,
    sesskey: Annotated[str, Query(max_length=2_000)] = "",
    jwt_field: Annotated[str, Form(alias="JWT", max_length=64_000)] = "",
) -> Response:
    """The ``deep_link_return_url`` (Moodle's contentitem_return.php): verify the tool's signed
    LtiDeepLinkingResponse (Deep Linking 2.0 §4.5) and add its activities to the course."""
    teacher = platform.person(return_codec.user_id(sesskey))
    if teacher is None or not teacher.is_instructor:
        raise deep_linking.DeepLinkingResponseError(
            "The deep linking return names no instructor of this course.",
            hint="Go back to the demo platform's home page and add the activity as the instructor.",
        )
    if curl_blocks_tool(store):
        # Moodle's contentitem_return.php cannot fetch the tool's key set to verify the JWT.
        return _moodle_error_page(request, MOODLE_JWKS_FETCH_FAILURE)
    now = get_now(request)
    # The tool's public keys, read in-process: the tool is served by this same server.
    verified = deep_linking.verify_response(
        platform, jwt_field, tool_link.published_jwks(), int(now.timestamp()), store
    )
    created = deep_linking.add_activities(
        store,
        platform,
        verified.items,
        teacher,
        now,
        lambda body: gradebook.add_line_item(body).id,
    )
    return templates.TemplateResponse(
        request,
        "deep_linking_done.html",
        {"platform": platform, "created": created, "verified": verified, "teacher": teacher},
        headers=NO_STORE_HEADERS,
    )


# --- dynamic registration: the administrator's Manage tools (demo/dynamic_registration.py) -------


@router.get("/admin/tools", name="demo_platform_tools")
def manage_tools(
    request: Request, platform: PlatformDep, store: StoreDep, tool_link: ToolDep
) -> Response:
    """Site administration → Manage tools: the "Tool URL" box and the tools registered so far,
    each with what the tool says of the registration (the tool shares this server's process)."""
    tools = dynamic_registration.tool_registrations(store)
    tool_side: dict[str, PlatformRegistrationInfo | None] = {
        tool.client_id: tool_link.registration_at_tool(platform.issuer, tool.client_id)
        for tool in tools
    }
    return templates.TemplateResponse(
        request,
        "tools.html",
        {
            "platform": platform,
            "tools": tools,
            "tool_side": tool_side,
            "awaiting_approval": RegistrationStatus.awaiting_approval,
            "curl_blocks_tool": curl_blocks_tool(store),
            "default_tool_url": platform.tool_login_url.rsplit("/", 1)[0] + "/register",
        },
        headers=NO_STORE_HEADERS,
    )


@router.post("/admin/tools/register", name="demo_platform_tools_register")
def start_tool_registration(
    request: Request,
    platform: PlatformDep,
    store: StoreDep,
    tool_url: Annotated[str, Form(max_length=2_000)],
    registration_type: Annotated[str, Form(max_length=16)] = "",
    update_client_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """ "Add LTI Advantage": a fresh registration token, and the tool's URL opened in a frame.

    As Moodle's ``startltiadvregistration.php``: when tools on that domain exist, it first asks
    whether to update one of them (``type=2``, a ``reg-update`` token) or to register a new one
    (``type=0``)."""
    dynamic_registration.check_tool_url(tool_url)
    existing = dynamic_registration.tools_on_domain(store, tool_url)
    if existing and registration_type not in ("new", "update"):
        return templates.TemplateResponse(
            request,
            "tool_registration_choice.html",
            {"platform": platform, "tool_url": tool_url, "tools": existing},
            headers=NO_STORE_HEADERS,
        )
    token = dynamic_registration.issue_registration_token(
        store,
        int(get_now(request).timestamp()),
        update_client_id=update_client_id
        if registration_type == "update" and update_client_id
        else None,
    )
    return templates.TemplateResponse(
        request,
        "tool_registration.html",
        {
            "platform": platform,
            "start_url": dynamic_registration.registration_start_url(tool_url, platform, token),
        },
        headers=NO_STORE_HEADERS,
    )


@router.post("/admin/security", name="demo_platform_http_security")
def http_security(
    request: Request,
    store: StoreDep,
    curl_blocks_tool: Annotated[str, Form(max_length=8)] = "",
) -> RedirectResponse:
    """Site administration → General → Security → HTTP security: whether "cURL blocked hosts
    list" holds the tool's host (Moodle's default does for a tool on localhost)."""
    set_curl_blocks_tool(store, curl_blocks_tool == "on")
    return RedirectResponse(str(request.url_for("demo_platform_tools")), status_code=303)


@router.post("/admin/tools/{client_id}/activate", name="demo_platform_tools_activate")
def activate_tool(
    request: Request, platform: PlatformDep, store: StoreDep, client_id: str
) -> RedirectResponse:
    dynamic_registration.activate_tool(store, client_id[:64])
    return RedirectResponse(str(request.url_for("demo_platform_tools")), status_code=303)


@router.post("/admin/tools/{client_id}/launch", name="demo_platform_tools_launch")
def launch_registered_tool(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    store: StoreDep,
    client_id: str,
    person: Annotated[str, Form(max_length=64)],
) -> Response:
    """Launch the course's activity through a tool registered by dynamic registration (its own
    client id and deployment id), to try the registration out as a course would use it."""
    through = dynamic_registration.platform_for_tool(store, platform, client_id[:64])
    chosen = _person_or_404(through, person)
    response = _form_post_page(
        request,
        through.login_initiation(chosen),
        heading=f"Launching the tool (client id {through.client_id}) as {chosen.name}",
        explanation="The platform starts an LTI 1.3 login at the tool with the client id and "
        "deployment id the dynamic registration gave it. Your browser sends this form by itself.",
        button="Continue to the tool",
    )
    pending = replace(through.pending_launch_for(chosen), client_id=through.client_id)
    _set_pending_cookie(response, platform, codec, pending)
    return response


@router.post("/registration", name="demo_platform_registration")
async def registration_endpoint(
    request: Request, platform: PlatformDep, store: StoreDep
) -> Response:
    """The registration endpoint (Dynamic Registration 1.0 §3.5.2), as Moodle's
    openid-registration.php: errors as RFC 7591 JSON, the answer as JSON sent as text/html."""
    body_bytes = b""
    async for chunk in request.stream():
        body_bytes += chunk
        if len(body_bytes) > dynamic_registration.MAX_REGISTRATION_BYTES:
            error = dynamic_registration.RegistrationRefused(
                413, "invalid_client_metadata", "the registration request is too large"
            )
            return JSONResponse(error.body(), status_code=error.status_code)
    try:
        body = json.loads(body_bytes)
    except (UnicodeDecodeError, ValueError):
        body = None
    try:
        answer = await run_in_threadpool(
            dynamic_registration.register_tool,
            store,
            platform,
            request.headers.get("authorization"),
            body,
            int(get_now(request).timestamp()),
        )
    except dynamic_registration.RegistrationRefused as error:
        return JSONResponse(error.body(), status_code=error.status_code)
    return JSONResponse(answer, media_type="text/html; charset=utf-8")
