"""The instructor's pages: the activity's learners and where each one is, the roster sync, route
counts, and one learner's decision trace with the teacher's controls (move, reset).

Authorisation: the instructor's tool session (``lti/session.py``) must come with the request
itself, as the ``tool_session`` form field, query parameter or ``X-Tool-Session`` header. The
tool's cookie alone is not enough here: these pages change learners' records, and a cookie would
travel with a form another site posts (cross-site request forgery), while the token is only in
the tool's own pages. Links carry the token as a query parameter and every page answers with
``Referrer-Policy: no-referrer`` so it never leaves in a Referer header.

Handlers are thin: they build the ``InstructorPlace`` from the verified session and call one
service (``services/teaching_course.py``, ``teaching_learner.py``) or one analytics query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from adaptive_lti.analytics import queries
from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.conditions import format_value
from adaptive_lti.core.errors import PermissionDeniedError
from adaptive_lti.core.lti import RecordedLaunch
from adaptive_lti.db.session import transaction
from adaptive_lti.lti import keys
from adaptive_lti.lti import session as tool_session
from adaptive_lti.lti.nrps import NrpsClient
from adaptive_lti.lti.service_http import new_http_client
from adaptive_lti.lti.service_token import ServiceTokenProvider
from adaptive_lti.services import teaching_course, teaching_learner
from adaptive_lti.services.teaching_course import InstructorPlace
from adaptive_lti.web.deps import NowDep, SessionDep, SettingsDep
from adaptive_lti.web.templating import templates

router = APIRouter(prefix="/teaching", include_in_schema=False)

PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
NOT_INSTRUCTOR = PermissionDeniedError(
    "These pages are for the course's instructors.",
    hint="Your roles in this course do not include teaching it; ask the course's instructor if "
    "you need access.",
)


async def _token_of(request: Request) -> str | None:
    token = request.headers.get(tool_session.HEADER) or request.query_params.get(tool_session.FIELD)
    if not token and request.method == "POST":
        form = await request.form()
        value = form.get(tool_session.FIELD)
        token = value if isinstance(value, str) else None
    return token or None


class Teacher:
    """The verified instructor session of a request, the place it names, and a fresh token for
    the page's links and forms (same expiry: a page never extends its session)."""

    def __init__(self, session: tool_session.ToolSession, token: str) -> None:
        self.session = session
        self.token = token
        self.place = InstructorPlace.of(session)


async def get_teacher(request: Request, settings: SettingsDep, now: NowDep) -> Teacher:
    token = await _token_of(request)
    if token is None:
        raise PermissionDeniedError(
            "This page belongs to an instructor's launch, and no tool session came with the "
            "request.",
            hint="Open the activity from your course page; the tool's pages carry the session "
            "in their links and forms.",
        )
    verified = tool_session.verify(token, settings.secret_key, now)
    if not verified.is_instructor:
        raise NOT_INSTRUCTOR
    return Teacher(verified, tool_session.issue(verified, settings.secret_key, now))


TeacherDep = Annotated[Teacher, Depends(get_teacher)]
# Ids are database integers: anything outside their range is refused (422) before any query.
EnrolmentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _page(
    request: Request, template: str, teacher_token: str, status_code: int = 200, **values: Any
) -> Response:
    return templates.TemplateResponse(
        request,
        template,
        {
            "tool_session": teacher_token,
            "session_field": tool_session.FIELD,
            "session_query": urlencode({tool_session.FIELD: teacher_token}),
            **values,
        },
        status_code=status_code,
        headers=PAGE_HEADERS,
    )


def instructor_launch_page(
    request: Request,
    session: Session,
    recorded: RecordedLaunch,
    token: str,
    lang: str,
    display_name: str,
) -> Response:
    """What an instructor's launch of an activity shows (``routes/lti.py`` calls this)."""
    place = InstructorPlace.of(recorded)
    overview = teaching_course.course_overview(session, place)
    return _page(
        request,
        "teaching/course.html",
        token,
        overview=overview,
        lang=lang,
        signed_in_as=display_name,
    )


@router.api_route("/", methods=["GET", "POST"], name="teaching_course")
def course(request: Request, teacher: TeacherDep, session: SessionDep) -> Response:
    overview = teaching_course.course_overview(session, teacher.place)
    return _page(request, "teaching/course.html", teacher.token, overview=overview)


@router.post("/roster/sync", name="teaching_roster_sync")
def sync_roster(
    request: Request, teacher: TeacherDep, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """Read the course's members from the platform (NRPS 2.0 §2), store them, and show the page
    with the result.

    The platform is called before the request's own transaction starts: the token for the call
    is stored by another transaction, and on SQLite a transaction that began reading before that
    commit could not write afterwards (its WAL snapshot is stale). So the URL is read in a short
    transaction of its own, the members are fetched, and only then does the request's session
    store them."""
    factory = request.app.state.session_factory
    with transaction(factory) as reading:
        url = teaching_course.roster_url(reading, teacher.place)

    def signing_key(session: Session) -> keys.SigningKey:
        # The service token is signed with the tool's key: make the first one if the tool has
        # none yet (nothing may have asked for the tool's JWKS before the first sync).
        keys.ensure_signing_key(session, settings, now)
        return keys.signing_key(session)

    with new_http_client(getattr(request.app.state, "http_transport", None)) as http:
        client = NrpsClient(ServiceTokenProvider(factory, http, signing_key=signing_key), http)
        fetched = teaching_course.FetchedRoster.read(client, teacher.place.registration_id, url)
    overview = teaching_course.sync_course_roster(session, teacher.place, fetched, now=now)
    status = 502 if overview.sync_error is not None else 200
    return _page(request, "teaching/course.html", teacher.token, status, overview=overview)


@router.get("/routes", name="teaching_routes")
def routes(request: Request, teacher: TeacherDep, session: SessionDep) -> Response:
    teaching_learner.ensure_same_activity(teacher.place)
    assert teacher.place.resource_link_pk is not None
    report = queries.route_report(
        session, Tenant(teacher.place.registration_id), teacher.place.resource_link_pk
    )
    return _page(request, "teaching/routes.html", teacher.token, report=report)


@router.get("/learners/{enrolment_id}", name="teaching_learner")
def learner(
    request: Request,
    enrolment_id: EnrolmentId,
    teacher: TeacherDep,
    session: SessionDep,
    done: str | None = None,
) -> Response:
    detail = teaching_learner.learner_detail(session, teacher.place, enrolment_id)
    message = {
        "moved": "Done: the learner was moved. The decision below shows where they are now.",
        "reset": "Done: the learner's progress was reset. They start again at their next launch.",
    }.get(done or "")
    return _page(request, "teaching/learner.html", teacher.token, detail=detail, message=message)


def _back_to_learner(request: Request, teacher: Teacher, enrolment_id: int, done: str) -> Response:
    # Post/redirect/get: reloading the learner's page never sends the action twice.
    url = request.url_for("teaching_learner", enrolment_id=enrolment_id)
    query = urlencode({tool_session.FIELD: teacher.token, "done": done})
    return RedirectResponse(f"{url}?{query}", status_code=303, headers=PAGE_HEADERS)


@router.post("/learners/{enrolment_id}/move", name="teaching_learner_move")
def move_learner(
    request: Request,
    enrolment_id: EnrolmentId,
    teacher: TeacherDep,
    session: SessionDep,
    now: NowDep,
    target: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    teaching_learner.move_learner(session, teacher.place, enrolment_id, target, reason, now=now)
    return _back_to_learner(request, teacher, enrolment_id, "moved")


@router.post("/learners/{enrolment_id}/reset", name="teaching_learner_reset")
def reset_learner(
    request: Request,
    enrolment_id: EnrolmentId,
    teacher: TeacherDep,
    session: SessionDep,
    now: NowDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    teaching_learner.reset_learner(session, teacher.place, enrolment_id, reason, now=now)
    return _back_to_learner(request, teacher, enrolment_id, "reset")


def format_moment(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def condition_value(value: object) -> str:
    """A value a condition read, as the design writes values (0.67, not 0.6666666666666666)."""
    return format_value(value)


templates.env.filters.setdefault("moment", format_moment)
templates.env.filters.setdefault("condition_value", condition_value)
