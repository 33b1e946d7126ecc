"""The teacher's "Add an activity" by deep linking (logic in ``demo/deep_linking.py``): the login
that asks the tool for an LtiDeepLinkingRequest, and the return address that checks the tool's
LtiDeepLinkingResponse and adds the activities to the course.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from adaptive_lti.core.errors import PermissionDeniedError
from adaptive_lti.demo import deep_linking
from adaptive_lti.demo.platform import (
    DEMO_PLATFORM_PATH,
    DemoPerson,
    DemoPlatform,
)
from adaptive_lti.demo.routes.common import (
    NO_STORE_HEADERS,
    CodecDep,
    GradebookDep,
    PlatformDep,
    ReturnCodecDep,
    StoreDep,
    ToolDep,
    form_post_page,
    get_now,
    moodle_error_page,
    person_or_404,
    set_pending_cookie,
    templates,
)
from adaptive_lti.demo.store import MOODLE_JWKS_FETCH_FAILURE, curl_blocks_tool

router = APIRouter(prefix=DEMO_PLATFORM_PATH, tags=["demo platform"])


def _instructor_or_403(platform: DemoPlatform, person: str) -> DemoPerson:
    chosen = person_or_404(platform, person)
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
    response = form_post_page(
        request,
        platform.deep_linking_initiation(teacher),
        heading=f"Adding an activity as {teacher.name}",
        explanation="The platform asks the tool what to add (LTI Deep Linking): it starts an "
        "LTI 1.3 login at the tool for a deep linking request. Your browser sends this form by "
        "itself.",
        button="Continue to the tool",
    )
    set_pending_cookie(response, platform, codec, platform.pending_deep_linking_for(teacher))
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
        return moodle_error_page(request, MOODLE_JWKS_FETCH_FAILURE)
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
