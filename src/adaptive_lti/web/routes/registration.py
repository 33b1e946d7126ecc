"""LTI Dynamic Registration 1.0: the URL a platform administrator pastes as the tool's URL.

``GET /lti/register?openid_configuration=...&registration_token=...`` (§3.3). The handler is a
plain ``def``: FastAPI runs it in its threadpool, so the blocking calls to the platform never run
on the event loop. Every failure raises before anything is stored, and the error page says what
went wrong and what to do; success ends on a page that tells the platform to close the window
(§3.7) when the administrator has read it.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from adaptive_lti.core.errors import ConflictError, InvalidInputError, NotFoundError
from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.lti import registration
from adaptive_lti.web.deps import NowDep, SessionDep, SettingsDep
from adaptive_lti.web.errors import wants_json
from adaptive_lti.web.templating import templates

router = APIRouter()

MAX_PARAMETER_LENGTH = 4096


def get_registration_transport(request: Request) -> httpx.BaseTransport | None:
    """The HTTP transport for calls to the platform (tests set ``app.state.http_transport``)."""
    transport: httpx.BaseTransport | None = getattr(request.app.state, "http_transport", None)
    return transport


RegistrationTransportDep = Annotated[
    httpx.BaseTransport | None, Depends(get_registration_transport)
]


@router.get("/lti/register", include_in_schema=False)
def register(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    transport: RegistrationTransportDep,
    openid_configuration: Annotated[str | None, Query(max_length=MAX_PARAMETER_LENGTH)] = None,
    registration_token: Annotated[str | None, Query(max_length=MAX_PARAMETER_LENGTH)] = None,
) -> Response:
    if not settings.dynamic_registration_enabled:
        raise NotFoundError(
            "Dynamic registration is turned off on this tool.",
            hint="Ask the tool's administrator to register your platform with "
            "'adaptive-lti platform add', or to set ADAPTIVE_LTI_DYNAMIC_REGISTRATION_ENABLED=true.",
        )
    if not openid_configuration:
        raise InvalidInputError(
            "This is the tool's dynamic registration URL; the platform opens it with an "
            "openid_configuration parameter, and this request has none.",
            hint=f"In Moodle, paste {settings.base_url.rstrip('/')}/lti/register as 'Tool URL' "
            "in Site administration → Plugins → Activity modules → External tool → Manage "
            "tools and press 'Add LTI Advantage'.",
        )
    try:
        with registration.http_client(transport) as client:
            done = registration.register_with_platform(
                session,
                client,
                settings,
                openid_configuration=openid_configuration,
                registration_token=registration_token,
                now=now,
            )
    except (registration.RegistrationError, ConflictError) as error:
        if wants_json(request):
            raise  # the error handler answers with JSON
        # §3.7: "successfully or not", the tool lets the platform close its window; the page
        # shows the failure first, with the same close button.
        session.rollback()
        return templates.TemplateResponse(
            request,
            "registration/failed.html",
            {"error": error, "tool_name": settings.tool_name},
            status_code=error.status_code,
            headers={"Cache-Control": "no-store"},
        )
    response = templates.TemplateResponse(
        request,
        "registration/done.html",
        {
            "done": done,
            "awaiting_approval": done.registration.status is RegistrationStatus.awaiting_approval,
            "tool_name": settings.tool_name,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response
