"""LTI Deep Linking 2.0: the instructor picks a design, the tool answers the platform.

``deep_linking_picker`` is what a deep linking launch shows (``page_after_launch`` in
``routes/lti.py`` calls it). The picker posts the choice, with the tool session, to
``/lti/deep-linking/select``, which signs an ``LtiDeepLinkingResponse`` (spec §4.5) and sends the
browser back to the platform's ``deep_link_return_url`` with an auto-submitting form. Cancelling
returns an empty list of items, which tells the platform nothing was chosen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from adaptive_lti.core.catalogue import DesignReference, Tenant, parse_design_reference
from adaptive_lti.core.errors import LaunchError, PermissionDeniedError
from adaptive_lti.core.lti import LaunchContext
from adaptive_lti.lti import deeplink, keys
from adaptive_lti.lti import session as tool_session
from adaptive_lti.lti.registration import LAUNCH_PATH
from adaptive_lti.services import design_bindings, design_publishing
from adaptive_lti.settings import Settings
from adaptive_lti.web.deps import InstructorDep, NowDep, SessionDep, SettingsDep
from adaptive_lti.web.templating import templates

router = APIRouter()

# The gradebook column a deep-linked activity asks for: the design's grade (0..1) is sent scaled
# to 100, which Moodle shows as the activity's maximum grade.
SCORE_MAXIMUM = 100


def _require_instructor(launch: LaunchContext) -> None:
    if not launch.is_instructor:
        raise PermissionDeniedError(
            "Only the course's instructors can add this tool to a course and choose its design.",
            hint="Ask an instructor of the course to add the activity.",
        )


def deep_linking_picker(
    request: Request, session: SessionDep, launch: LaunchContext, token: str, lang: str = "en"
) -> Response:
    """The page a deep linking launch shows: the published designs, and a form to pick one."""
    settings_claim = deeplink.read_deep_linking_request(launch)
    _require_instructor(launch)
    designs = design_publishing.list_designs(session, design_bindings.tenant_of(session, launch))
    return templates.TemplateResponse(
        request,
        "deep_linking/picker.html",
        {
            "launch": launch,
            "designs": designs,
            "request_settings": settings_claim,
            "tool_session": token,
            "session_field": tool_session.FIELD,
            "grading_available": deeplink.can_create_line_items(launch),
            "lang": lang,
        },
    )


def _launch_of(session: SessionDep, launch_id: int) -> LaunchContext:
    launch = design_bindings.launch_of_session(session, launch_id)
    if not launch.is_deep_linking:
        raise LaunchError(
            "deep linking settings",
            "This session did not start with a deep linking request, so there is nowhere to "
            "send a design to.",
            hint="Add the tool again from the course's activity chooser.",
            status_code=400,
        )
    return launch


def _resource_link_item(
    session: SessionDep,
    settings: Settings,
    launch: LaunchContext,
    reference: DesignReference,
    now: datetime,
) -> deeplink.ResourceLinkItem:
    _offer, version = design_bindings.record_deep_link(session, launch, reference, now=now)
    compiled = design_publishing.compiled_design(version)
    line_item = None
    # AGS 2.0 §3.2: ask for a gradebook column only when the platform lets the tool create line
    # items and the design sends a grade at all.
    if version.sends_grade and deeplink.can_create_line_items(launch):
        line_item = deeplink.LineItemRequest(
            score_maximum=SCORE_MAXIMUM, label=version.title, resource_id=version.design_id
        )
    return deeplink.ResourceLinkItem(
        title=version.title,
        url=settings.base_url.rstrip("/") + LAUNCH_PATH,
        custom={"design": str(reference)},
        text=compiled.design.description or None,
        line_item=line_item,
    )


def _signing_key(session: SessionDep, settings: Settings, now: datetime) -> keys.SigningKey:
    keys.ensure_signing_key(session, settings, now)
    return keys.signing_key(session)


@router.post("/lti/deep-linking/select", include_in_schema=False)
def select_design(
    request: Request,
    instructor: InstructorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    design: Annotated[str | None, Form(max_length=200)] = None,
    pin: Annotated[str | None, Form(max_length=20)] = None,
    action: Annotated[str, Form(max_length=20)] = "add",
) -> Response:
    launch = _launch_of(session, instructor.launch_id)
    _require_instructor(launch)
    request_settings = deeplink.read_deep_linking_request(launch)
    items: list[deeplink.ResourceLinkItem] = []
    message = "No design was added."
    if action != "cancel":
        if not design:
            raise LaunchError(
                "design choice",
                "No design was chosen.",
                hint="Go back, choose one of the designs and press 'Add to the course'.",
                status_code=422,
            )
        reference = parse_design_reference(design)
        if pin and reference.version is None:
            # Pin to the version published now (learners then never move to a newer one).
            latest = design_publishing.get_design_version(
                session, Tenant(instructor.registration_id), reference.design_id
            )
            reference = DesignReference(reference.design_id, latest.version)
        item = _resource_link_item(session, settings, launch, reference, now)
        items.append(item)
        message = f"Added “{item.title}” (design {reference})."
    answer = deeplink.build_return(
        launch,
        request_settings,
        items,
        _signing_key(session, settings, now),
        now=now,
        message=message,
        log=f"adaptive-lti: {message} Chosen by {launch.person.display_name}.",
    )
    response = templates.TemplateResponse(
        request,
        "deep_linking/return.html",
        {"answer": answer, "items": items, "message": message},
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
