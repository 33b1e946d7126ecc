"""LTI 1.3 endpoints: OIDC login initiation, the launch, the tool's JWKS, and the first pages
after a launch (the instructor's course page, the learner's landing page).

Handlers are sync ``def``: FastAPI runs them in its threadpool, so database work and the rare
JWKS fetch never block the event loop. ``page_after_launch`` is the one place that decides what
a launch shows.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from adaptive_lti.core.errors import InvalidInputError, NotFoundError
from adaptive_lti.core.lti import RecordedLaunch
from adaptive_lti.lti import fallback, keys
from adaptive_lti.lti import session as tool_session
from adaptive_lti.lti.adapters import FastAPIRedirect, set_cookie
from adaptive_lti.lti.tool import AcceptedLaunch, BindingNeeded
from adaptive_lti.metrics import LAUNCHES
from adaptive_lti.services import design_bindings
from adaptive_lti.services import launch as launch_service
from adaptive_lti.web.deps import (
    InstructorDep,
    LaunchDep,
    LtiHttpDep,
    LtiToolDep,
    NowDep,
    PlatformErrorReport,
    SessionDep,
    SettingsDep,
    ToolSessionDep,
    get_now,
)
from adaptive_lti.web.routes import deep_linking, journey, teaching
from adaptive_lti.web.templating import templates

log = logging.getLogger("adaptive_lti.web.routes.lti")

router = APIRouter()

# What platform error codes mean for a person (OIDC Core §3.1.2.6, as Moodle's auth.php sends).
PLATFORM_ERRORS = {
    "login_required": "You are not logged in to the platform any more.",
    "invalid_request": "The platform found the tool's login request invalid.",
    "invalid_request_object": "The platform found the tool's login request invalid.",
    "unauthorized_client": "The platform does not recognise this tool's registration.",
    "access_denied": "The platform refused access to this activity.",
    "unsupported_response_type": "The platform does not support the tool's login request.",
    "invalid_scope": "The platform does not support the tool's login request.",
    "server_error": "The platform had an internal problem.",
}


def html_lang(locale: str | None) -> str:
    """Moodle's ``pt_br`` becomes the BCP 47 tag ``pt-BR`` for the page's lang attribute."""
    if not locale:
        return "en"
    language, _, region = locale.replace("-", "_").partition("_")
    if not language.isalpha() or len(language) > 8:
        return "en"
    return (
        f"{language.lower()}-{region.upper()}" if region.isalnum() and region else language.lower()
    )


@router.api_route("/lti/login", methods=["GET", "POST"], include_in_schema=False)
def login(
    request: Request, http: LtiHttpDep, tool: LtiToolDep, session: SessionDep, now: NowDep
) -> Response:
    """Third-party initiated login (LTI Core 1.3 §4.1): store state and nonce, go to the platform."""
    redirect = tool.login(session, http.request, http.cookies, now)
    if redirect.storage_target is None:
        return FastAPIRedirect(redirect.url, http.cookies).do_redirect()
    # The platform offers postMessage storage: put the state there too (the cookie may be refused).
    response = templates.TemplateResponse(
        request,
        "lti/storage_login.html",
        {
            "auth_url": redirect.url,
            "state": redirect.login.state,
            "nonce": redirect.login.nonce,
            "storage_target": redirect.storage_target,
            "platform_origin": redirect.platform_origin,
        },
    )
    http.cookies.update_response(response)
    return response


@router.post("/lti/launch", include_in_schema=False)
def launch(
    request: Request,
    outcome: LaunchDep,
    http: LtiHttpDep,
    tool: LtiToolDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    if isinstance(outcome, PlatformErrorReport):
        LAUNCHES.labels(outcome="platform_error").inc()
        return templates.TemplateResponse(
            request,
            "lti/platform_error.html",
            {
                "error_code": outcome.error,
                "meaning": PLATFORM_ERRORS.get(
                    outcome.error, "The platform could not complete the launch."
                ),
                "description": outcome.description,
            },
            status_code=400,
        )
    if isinstance(outcome, BindingNeeded):
        LAUNCHES.labels(outcome="binding_needed").inc()
        return _binding_page(request, session, settings.base_url, outcome)
    recorded = launch_service.record_launch(
        session,
        outcome.context,
        registration_id=outcome.registration.id,
        deployment_pk=outcome.deployment.id,
        now=now,
    )
    session_values = tool_session.new_session(
        launch_id=recorded.launch_id,
        registration_id=recorded.registration_id,
        deployment_pk=recorded.deployment_pk,
        context_pk=recorded.context_pk,
        resource_link_pk=recorded.resource_link_pk,
        user_pk=recorded.user_pk,
        subject=outcome.context.person.subject,
        roles=outcome.context.role_short_names,
        is_instructor=outcome.context.is_instructor,
        now=now,
        ttl_seconds=settings.session_ttl_seconds,
    )
    token = tool_session.issue(session_values, settings.secret_key, now)
    response = page_after_launch(request, session, outcome, recorded, token)
    secure = tool.secure
    # The state cookie has done its job; the session cookie helps browsers that keep it.
    set_cookie(response, f"lti1p3-{outcome.login.state}", "", max_age=0, path="/lti", secure=secure)
    set_cookie(
        response,
        tool_session.COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        path="/",
        secure=secure,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    LAUNCHES.labels(outcome="accepted").inc()
    return response


def page_after_launch(
    request: Request,
    session: SessionDep,
    accepted: AcceptedLaunch,
    recorded: RecordedLaunch,
    token: str,
) -> Response:
    """What a launch shows, decided in this one place: deep-linking requests get the design
    picker, an activity's instructors its teaching page, instructors without an activity the
    course page, learners their journey. ``/lti/me`` shows what the launch told the tool."""
    context = accepted.context
    common: dict[str, Any] = {
        "launch": context,
        "tool_session": token,
        "session_field": tool_session.FIELD,
        "lang": html_lang(context.locale),
    }
    if context.is_deep_linking:
        # LTI Deep Linking 2.0: the instructor picks a design to add (routes/deep_linking.py).
        return deep_linking.deep_linking_picker(request, session, context, token, common["lang"])
    if context.is_instructor and recorded.resource_link_pk is not None:
        # The first launch binds the activity whoever makes it (a deep-linked design is often
        # first opened by the teacher who chose it). A design that is not published does not
        # keep the instructor out: the Designs page shows the problem.
        with contextlib.suppress(NotFoundError, InvalidInputError):
            design_bindings.design_for_launch(
                session, context, now=get_now(request), recorded=recorded
            )
        # The activity's instructor view: learners, routes, teacher controls (routes/teaching.py).
        return teaching.instructor_launch_page(
            request, session, recorded, token, common["lang"], context.person.display_name
        )
    if context.is_instructor:
        page = launch_service.course_page(
            session, context_pk=recorded.context_pk, resource_link_pk=recorded.resource_link_pk
        )
        return templates.TemplateResponse(
            request, "lti/instructor_course.html", {**common, "page": page}
        )
    # Learners follow the activity's design (routes/journey.py), or learn it is not set up yet.
    now = get_now(request)
    try:
        launch_design = design_bindings.design_for_launch(
            session, context, now=now, recorded=recorded
        )
    except (NotFoundError, InvalidInputError) as error:
        # The activity names a design the tool does not have: nothing the learner can fix, so
        # the "not ready yet" page, with the message to pass on to the teacher.
        return journey.not_ready_page(request, context, f"{error.message} {error.hint}".strip())
    return journey.learner_launch_page(
        request, session, context, launch_design, recorded, token, now
    )


def _binding_page(
    request: Request, session: SessionDep, tool_base_url: str, binding: BindingNeeded
) -> Response:
    if binding.kind == "platform-storage":
        return templates.TemplateResponse(
            request,
            "lti/storage_launch.html",
            {
                "id_token": binding.id_token,
                "state": binding.state,
                "storage_target": binding.storage_target,
                "platform_origin": binding.platform_origin,
                "relaunch_url": binding.relaunch_url,
            },
        )
    # No way to tie this browser to its login inside the frame: offer a top-level window,
    # where the tool's cookies are first-party, starting a new launch from the platform (a
    # Moodle hint works once). 401: the launch itself was not accepted.
    relaunch = fallback.relaunch_for_login(
        session, state=binding.state, id_token=binding.id_token, tool_base_url=tool_base_url
    )
    relaunch_url = relaunch.url if relaunch is not None else binding.relaunch_url
    log.info(
        "new-window fallback shown: reason=state-cookie-missing (the browser kept the tool's "
        "cookie from the platform's frame; no platform storage) platform=%s relaunch=%s cmid=%s",
        relaunch.platform_family if relaunch else None,
        relaunch.route if relaunch else "login-initiation",
        relaunch.course_module_id if relaunch else None,
        extra={
            "event": "lti.new_window_fallback",
            "reason": "state-cookie-missing",
            "storage_target": binding.storage_target,
            "platform_origin": binding.platform_origin,
            "platform_family": relaunch.platform_family if relaunch else None,
            "relaunch_route": relaunch.route if relaunch else "login-initiation",
            "course_module_id": relaunch.course_module_id if relaunch else None,
        },
    )
    return templates.TemplateResponse(
        request,
        "lti/new_window.html",
        {"relaunch_url": relaunch_url},
        status_code=401,
    )


@router.get("/.well-known/jwks.json", include_in_schema=False)
def jwks(session: SessionDep, settings: SettingsDep, now: NowDep) -> JSONResponse:
    """The tool's public keys (every active one), for platforms verifying the tool's JWTs."""
    keys.ensure_signing_key(session, settings, now)
    return JSONResponse(
        keys.published_jwks(session),
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.api_route("/lti/course", methods=["GET", "POST"], include_in_schema=False)
def instructor_course(request: Request, instructor: InstructorDep, session: SessionDep) -> Response:
    """The instructor's course page again, inside the tool (tool session required)."""
    page = launch_service.course_page(
        session, context_pk=instructor.context_pk, resource_link_pk=instructor.resource_link_pk
    )
    return templates.TemplateResponse(
        request, "lti/course_page.html", {"page": page, "session_field": tool_session.FIELD}
    )


@router.api_route("/lti/me", methods=["GET", "POST"], include_in_schema=False)
def about_me(request: Request, current: ToolSessionDep, session: SessionDep) -> Response:
    """Who the launch says this is, the course, and what the tool knows of their background
    (custom parameters, student record, platform extensions)."""
    launch = launch_service.launch_details(session, current.launch_id)
    return templates.TemplateResponse(
        request, "lti/learner_landing.html", {"launch": launch, "lang": html_lang(launch.locale)}
    )


@router.get("/lti/session", include_in_schema=False)
def current_session(current: ToolSessionDep) -> dict[str, Any]:
    """What the tool session says (for the tool's own scripts: send ``X-Tool-Session``)."""
    return {
        "launch_id": current.launch_id,
        "registration_id": current.registration_id,
        "context_id": current.context_pk,
        "resource_link_id": current.resource_link_pk,
        "user_id": current.user_pk,
        "roles": list(current.roles),
        "is_instructor": current.is_instructor,
        "expires_at": current.expires_at.isoformat(),
    }
