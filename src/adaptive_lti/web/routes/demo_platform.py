"""HTTP routes of the built-in demo LTI platform (protocol in ``lti/platform_demo.py``).

Mounted only when ``Settings.demo_platform`` is on: the platform's home page (``/demo-platform/``,
and ``/`` redirects there), the button that starts a launch as a demo person, the OIDC
authorization endpoint, the platform's JWKS and OpenID configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from adaptive_lti.core.errors import NotFoundError
from adaptive_lti.db.session import transaction
from adaptive_lti.lti import keys
from adaptive_lti.lti.platform_demo import (
    DEMO_PLATFORM_PATH,
    PENDING_LAUNCH_COOKIE,
    PENDING_LAUNCH_MAX_AGE_SECONDS,
    DemoPerson,
    DemoPlatform,
    FormPost,
    PendingLaunchCodec,
    load_or_create_platform_key,
    register_with_tool,
)
from adaptive_lti.lti.platform_demo_services import (
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
from adaptive_lti.settings import Settings
from adaptive_lti.web.deps import SessionDep, get_now
from adaptive_lti.web.templating import templates

router = APIRouter(prefix=DEMO_PLATFORM_PATH, tags=["demo platform"])
root_router = APIRouter()

# The platform's pages are forms for the browser to post at once: no caching, no framing by
# other sites, no referrer carrying the state or hints elsewhere. Framing by the platform itself
# is allowed: an embedded launch runs inside the course page's iframe, as Moodle's does (Moodle
# sends "X-Frame-Options: sameorigin" unless framing is allowed site-wide).
NO_STORE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}


def mount(app: FastAPI, settings: Settings) -> DemoPlatform:
    """Build the demo platform for this server, register it with the tool, serve its routes."""
    key = load_or_create_platform_key(settings.demo_platform_key_file)
    platform = DemoPlatform.for_tool(settings.base_url, key)
    with transaction(app.state.session_factory) as session:
        register_with_tool(session, platform, datetime.now(UTC))
    app.state.demo_platform = platform
    app.state.demo_pending_launch_codec = PendingLaunchCodec(settings.secret_key)
    app.state.demo_access_tokens = AccessTokens(platform, settings.secret_key)
    app.state.demo_gradebook = DemoGradebook(
        settings.demo_platform_key_file.with_name("demo-platform-gradebook.json"), platform
    )
    app.include_router(router)
    app.include_router(root_router)
    return platform


def get_platform(request: Request) -> DemoPlatform:
    platform: DemoPlatform = request.app.state.demo_platform
    return platform


def get_codec(request: Request) -> PendingLaunchCodec:
    codec: PendingLaunchCodec = request.app.state.demo_pending_launch_codec
    return codec


def get_access_tokens(request: Request) -> AccessTokens:
    tokens: AccessTokens = request.app.state.demo_access_tokens
    return tokens


def get_gradebook(request: Request) -> DemoGradebook:
    gradebook: DemoGradebook = request.app.state.demo_gradebook
    return gradebook


PlatformDep = Annotated[DemoPlatform, Depends(get_platform)]
CodecDep = Annotated[PendingLaunchCodec, Depends(get_codec)]
TokensDep = Annotated[AccessTokens, Depends(get_access_tokens)]
GradebookDep = Annotated[DemoGradebook, Depends(get_gradebook)]


def _form_post_page(
    request: Request, form: FormPost, heading: str, explanation: str, button: str
) -> Response:
    return templates.TemplateResponse(
        request,
        "demo/form_post.html",
        {"form": form, "heading": heading, "explanation": explanation, "button": button},
        headers=NO_STORE_HEADERS,
    )


@root_router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse(DEMO_PLATFORM_PATH + "/", status_code=303)


@router.get("/", name="demo_platform_home")
def home(request: Request, platform: PlatformDep) -> Response:
    return templates.TemplateResponse(
        request,
        "demo/home.html",
        {
            "platform": platform,
            "learners": [person for person in platform.people if not person.is_instructor],
            "instructors": [person for person in platform.people if person.is_instructor],
        },
    )


@router.post("/launch", name="demo_platform_launch")
def launch(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    person: Annotated[str, Form(max_length=64)],
) -> Response:
    """Log the browser in to the platform as ``person`` and start a launch at the tool."""
    chosen = platform.person(person)
    if chosen is None:
        raise NotFoundError(
            f"The demo platform has no person called {person!r}.",
            hint="Go back to the demo platform's home page and press one of its buttons.",
        )
    response = _form_post_page(
        request,
        platform.login_initiation(chosen),
        heading=f"Launching the tool as {chosen.name}",
        explanation="The platform starts an LTI 1.3 login at the tool (OIDC third-party "
        "initiated login). Your browser sends this form by itself.",
        button="Continue to the tool",
    )
    response.set_cookie(
        PENDING_LAUNCH_COOKIE,
        codec.encode(platform.pending_launch_for(chosen)),
        max_age=PENDING_LAUNCH_MAX_AGE_SECONDS,
        path=DEMO_PLATFORM_PATH,
        httponly=True,
        samesite="lax",
        secure=platform.issuer.startswith("https://"),
    )
    return response


@router.api_route("/auth", methods=["GET", "POST"], name="demo_platform_auth")
async def authorize(request: Request, platform: PlatformDep, codec: CodecDep) -> Response:
    """The OIDC authorization endpoint (Security Framework 1.0 §5.1.1.2), like Moodle's auth.php."""
    parameters: dict[str, str] = {name: value for name, value in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        parameters.update({name: value for name, value in form.items() if isinstance(value, str)})
    pending = codec.decode(request.cookies.get(PENDING_LAUNCH_COOKIE))
    # The tool's clock (tests may move it): tokens must be fresh by the clock that checks them.
    answer = platform.authorize(parameters, pending, now=int(get_now(request).timestamp()))
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
        "demo/course.html",
        {"platform": platform, "person": chosen},
        headers=NO_STORE_HEADERS,
    )


@router.get("/course/{person}/launch", name="demo_platform_framed_launch")
def framed_launch(
    request: Request, platform: PlatformDep, codec: CodecDep, person: str
) -> Response:
    """What the course page's iframe loads (Moodle's launch.php): the launch, started inside it."""
    return launch(request, platform, codec, _person_or_404(platform, person).key)


# --- LTI Advantage services (lti/platform_demo_services.py) ---------------------------------------

MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
READ_LINE_ITEMS = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)


def _service_error(error: ServiceError) -> JSONResponse:
    headers = (
        {"WWW-Authenticate": f'Bearer error="{error.error}"'} if error.status_code == 401 else {}
    )
    return JSONResponse(error.body(), status_code=error.status_code, headers=headers)


def _now_seconds(request: Request) -> int:
    return int(get_now(request).timestamp())


def _check_course(platform: DemoPlatform, course_id: str) -> None:
    if course_id != platform.course.id:
        raise ServiceError(404, "not_found", f"the platform has no course {course_id!r}")


@router.post("/token", name="demo_platform_token")
def token(
    request: Request,
    tokens: TokensDep,
    session: SessionDep,
    grant_type: Annotated[str, Form(max_length=100)] = "",
    client_assertion_type: Annotated[str, Form(max_length=200)] = "",
    client_assertion: Annotated[str, Form(max_length=16_000)] = "",
    scope: Annotated[str, Form(max_length=2_000)] = "",
) -> Response:
    """OAuth 2 client credentials (Security Framework §4.1), answered as Moodle's token.php:
    JSON sent as text/html."""
    form = {
        "grant_type": grant_type,
        "client_assertion_type": client_assertion_type,
        "client_assertion": client_assertion,
        "scope": scope,
    }
    try:
        answer = tokens.issue(form, keys.published_jwks(session), _now_seconds(request))
    except ServiceError as error:
        return _service_error(error)
    return JSONResponse(answer, media_type="text/html; charset=utf-8")


@router.get("/services/{course_id}/lineitems", name="demo_platform_line_items")
def line_items(
    request: Request,
    course_id: str,
    platform: PlatformDep,
    tokens: TokensDep,
    gradebook: GradebookDep,
    resource_link_id: str | None = None,
    resource_id: str | None = None,
    tag: str | None = None,
) -> Response:
    """AGS §3.2: the course's line items, filtered as the query asks."""
    try:
        _check_course(platform, course_id)
        tokens.check(request.headers.get("authorization"), READ_LINE_ITEMS, _now_seconds(request))
        urls = ServiceUrls(platform)
        items = [
            line_item_json(urls, item)
            for item in gradebook.line_items()
            if (resource_link_id is None or item.resource_link_id == resource_link_id)
            and (resource_id is None or item.resource_id == resource_id)
            and (tag is None or item.tag == tag)
        ]
    except ServiceError as error:
        return _service_error(error)
    return JSONResponse(items, media_type=MEDIA_LINEITEM_CONTAINER)


@router.post("/services/{course_id}/lineitems", name="demo_platform_add_line_item")
def add_line_item(
    request: Request,
    course_id: str,
    body: Annotated[dict[str, Any], Body()],
    platform: PlatformDep,
    tokens: TokensDep,
    gradebook: GradebookDep,
) -> Response:
    """AGS §3.2.4: a new line item (a new gradebook column)."""
    try:
        _check_course(platform, course_id)
        tokens.check(request.headers.get("authorization"), (SCOPE_LINEITEM,), _now_seconds(request))
        item = gradebook.add_line_item(body)
    except ServiceError as error:
        return _service_error(error)
    return JSONResponse(
        line_item_json(ServiceUrls(platform), item), status_code=201, media_type=MEDIA_LINEITEM
    )


@router.get("/services/{course_id}/lineitems/{item_id}/lineitem", name="demo_platform_line_item")
def line_item(
    request: Request,
    course_id: str,
    item_id: str,
    platform: PlatformDep,
    tokens: TokensDep,
    gradebook: GradebookDep,
) -> Response:
    try:
        _check_course(platform, course_id)
        tokens.check(request.headers.get("authorization"), READ_LINE_ITEMS, _now_seconds(request))
        item = gradebook.line_item(item_id)
    except ServiceError as error:
        return _service_error(error)
    return JSONResponse(line_item_json(ServiceUrls(platform), item), media_type=MEDIA_LINEITEM)


@router.post(
    "/services/{course_id}/lineitems/{item_id}/lineitem/scores", name="demo_platform_scores"
)
def post_score(
    request: Request,
    course_id: str,
    item_id: str,
    body: Annotated[dict[str, Any], Body()],
    platform: PlatformDep,
    tokens: TokensDep,
    gradebook: GradebookDep,
) -> Response:
    """AGS §3.4: a score for one learner; refused for people who cannot be graded."""
    try:
        _check_course(platform, course_id)
        tokens.check(request.headers.get("authorization"), (SCOPE_SCORE,), _now_seconds(request))
        gradable = {person.user_id for person in platform.people if not person.is_instructor}
        gradebook.record_score(item_id, body, gradable)
    except ServiceError as error:
        return _service_error(error)
    return Response(status_code=200)


@router.get(
    "/services/{course_id}/lineitems/{item_id}/lineitem/results", name="demo_platform_results"
)
def results(
    request: Request,
    course_id: str,
    item_id: str,
    platform: PlatformDep,
    tokens: TokensDep,
    gradebook: GradebookDep,
    user_id: str | None = None,
) -> Response:
    """AGS §3.3: the results of a line item, as the platform stored them (rescaled)."""
    try:
        _check_course(platform, course_id)
        tokens.check(
            request.headers.get("authorization"), (SCOPE_RESULT_READONLY,), _now_seconds(request)
        )
        item = gradebook.line_item(item_id)
        urls = ServiceUrls(platform)
        body = [result_json(urls, item, result) for result in gradebook.results(item_id, user_id)]
    except ServiceError as error:
        return _service_error(error)
    return JSONResponse(body, media_type=MEDIA_RESULT_CONTAINER)


@router.get(
    "/services/CourseSection/{course_id}/bindings/{binding}/memberships",
    name="demo_platform_memberships",
)
def memberships(
    request: Request, course_id: str, binding: str, platform: PlatformDep, tokens: TokensDep
) -> Response:
    """NRPS 2.0 §2: the course's members, with Moodle's short role names."""
    try:
        _check_course(platform, course_id)
        if binding != platform.deployment_id:
            raise ServiceError(404, "not_found", f"the course has no tool binding {binding!r}")
        tokens.check(request.headers.get("authorization"), (NRPS_SCOPE,), _now_seconds(request))
    except ServiceError as error:
        return _service_error(error)
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
        "demo/gradebook.html",
        {
            "platform": platform,
            "items": items,
            "scores": scores,
            "learners": [person for person in platform.people if not person.is_instructor],
        },
    )
