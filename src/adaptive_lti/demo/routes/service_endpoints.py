"""The demo platform's LTI Advantage services (logic in ``demo/services.py``): the OAuth 2 token
endpoint, Assignment and Grade Services (line items, scores, results), Names and Role
Provisioning (memberships), Basic Outcomes refused as Moodle refuses them, and the gradebook page
that shows what the tool sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Request
from fastapi.responses import JSONResponse, Response

from adaptive_lti.demo import dynamic_registration
from adaptive_lti.demo.platform import DEMO_PLATFORM_PATH, DemoPlatform
from adaptive_lti.demo.routes.common import (
    GradebookDep,
    PlatformDep,
    StoreDep,
    TokensDep,
    ToolDep,
    get_now,
    moodle_error_page,
    templates,
)
from adaptive_lti.demo.services import (
    NRPS_SCOPE,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    ServiceError,
    ServiceUrls,
    line_item_json,
    memberships_json,
    result_json,
)
from adaptive_lti.demo.store import MOODLE_JWKS_FETCH_FAILURE, curl_blocks_tool

router = APIRouter(prefix=DEMO_PLATFORM_PATH, tags=["demo platform"])


MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"


MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"


MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"


MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


READ_LINE_ITEMS = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)


def service_error(request: Request, error: Exception) -> JSONResponse:
    """Service refusals as the platform answers them: JSON, with RFC 6750's challenge on 401."""
    assert isinstance(error, ServiceError)
    headers = (
        {"WWW-Authenticate": f'Bearer error="{error.error}"'} if error.status_code == 401 else {}
    )
    return JSONResponse(error.body(), status_code=error.status_code, headers=headers)


def _now_seconds(request: Request) -> int:
    return int(get_now(request).timestamp())


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
        return moodle_error_page(request, MOODLE_JWKS_FETCH_FAILURE)
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
