"""The learner's pages: the activity the engine chose, answered and completed one request at a
time, the progress view, and the page of an activity with no design yet.

Every follow-up request is authorised by the tool session of the learner's launch (the token
travels in each form and link, so no third-party cookie is needed) and names the enrolment and
the event count its page was drawn at: a page left open in another tab cannot overwrite what
happened since, and says so. Form errors re-draw the same page with the learner's input and a
message; nothing a learner can send gives a 500.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from adaptive_lti.core.catalogue import LaunchDesign
from adaptive_lti.core.engine import NextActivity
from adaptive_lti.core.errors import EngineError, InvalidInputError
from adaptive_lti.core.journey import JourneyView
from adaptive_lti.core.lti import LaunchContext, RecordedLaunch
from adaptive_lti.lti import session as tool_session
from adaptive_lti.services.journey import instructing, launching, learner_actions, reading
from adaptive_lti.services.journey.learner_actions import AnswerFeedback
from adaptive_lti.services.journey.reading import StalePageError
from adaptive_lti.web import content
from adaptive_lti.web.deps import NowDep, SessionDep, ToolSessionDep
from adaptive_lti.web.templating import templates

router = APIRouter(prefix="/journey", tags=["learner journey"])

PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def get_form(request: Request) -> FormData:
    """The posted form (already read by the tool-session dependency; Starlette caches it)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(get_form)]


def _lang(locale: str | None) -> str:
    language, _, region = (locale or "en").replace("-", "_").partition("_")
    return f"{language.lower()}-{region.upper()}" if region else language.lower()


def render_journey(
    request: Request,
    view: JourneyView,
    token: str,
    *,
    feedback: AnswerFeedback | None = None,
    error: str | None = None,
    notice: str | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    template: str = "journey/page.html",
    extra: dict[str, Any] | None = None,
) -> Response:
    """A learner's page for where ``view`` says they are."""
    locale = view.enrolment.locale
    decision = view.decision
    activity = None
    if isinstance(decision, NextActivity):
        activity = view.design.design.activities[decision.activity]
    context: dict[str, Any] = {
        "view": view,
        "decision": decision,
        "activity": activity,
        "question": learner_actions.current_question(view),
        "feedback": feedback,
        "error": error,
        "notice": notice,
        "values": values or {},
        "tool_session": token,
        "session_field": tool_session.FIELD,
        "lang": _lang(locale),
        "locale": locale,
        "markdown": content.render_markdown,
        "inline": content.render_inline,
        "percent": lambda value: content.percent(value, locale),
        "number": lambda value: content.number(value, locale),
        "moment": lambda value: content.moment(value, locale),
        "grading_on": bool(view.enrolment.ags_endpoint) and view.design.design.grade is not None,
        **(extra or {}),
    }
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PAGE_HEADERS
    )


def not_ready_page(request: Request, launch: LaunchContext, problem: str | None = None) -> Response:
    """An activity with no design (or naming one the tool does not have), for a learner."""
    return templates.TemplateResponse(
        request,
        "journey/no_design.html",
        {"launch": launch, "lang": _lang(launch.locale), "problem": problem},
        headers=PAGE_HEADERS,
    )


def learner_launch_page(
    request: Request,
    session: SessionDep,
    launch: LaunchContext,
    launch_design: LaunchDesign | None,
    recorded: RecordedLaunch,
    token: str,
    now: datetime,
) -> Response:
    """What a learner's launch shows: their journey, or why there is none yet."""
    if launch_design is None:
        return not_ready_page(request, launch)
    view = launching.begin_or_resume(session, launch, launch_design, recorded, now)
    resumed = view.enrolment.started_at < now
    notice = "Welcome back: you continue where you left off." if resumed else None
    return render_journey(request, view, token, notice=notice)


def _token(request: Request, form: FormData | None = None) -> str:
    """The token this request came with, to carry into the next page's forms and links."""
    posted = form.get(tool_session.FIELD) if form is not None else None
    return (
        request.headers.get(tool_session.HEADER)
        or request.query_params.get(tool_session.FIELD)
        or (posted if isinstance(posted, str) else None)
        or request.cookies.get(tool_session.COOKIE)
        or ""
    )


def _int_field(form: FormData, name: str) -> int:
    raw = form.get(name)
    try:
        return int(raw) if isinstance(raw, str) else -1
    except ValueError:
        return -1


def _journey(session: SessionDep, current: tool_session.ToolSession, form: FormData) -> JourneyView:
    """The learner's journey the form names, refused unless it is the session's own."""
    return reading.journey_for_session(
        session,
        enrolment_id=_int_field(form, "enrolment"),
        resource_link_pk=current.resource_link_pk,
        user_pk=current.user_pk,
    )


def _act(
    request: Request,
    session: SessionDep,
    enrolment_id: int,
    token: str,
    action: Any,
    values: dict[str, Any],
) -> Response:
    """Run a learner action; its refusals re-draw the learner's current page with a message."""
    try:
        result = action()
    except StalePageError as stale:
        view = reading.journey_for(session, enrolment_id)
        return render_journey(
            request, view, token, notice=f"{stale.message} {stale.hint}", status_code=409
        )
    except (InvalidInputError, EngineError) as refused:
        # Bad form input is the learner's to fix (422); an engine refusal is the route's (409).
        view = reading.journey_for(session, enrolment_id)
        return render_journey(
            request,
            view,
            token,
            error=f"{refused.message} {refused.hint}".strip(),
            values=values,
            status_code=422 if isinstance(refused, InvalidInputError) else 409,
        )
    if isinstance(result, tuple):
        view, feedback = result
        return render_journey(request, view, token, feedback=feedback)
    return render_journey(request, result, token)


# GET and POST: the tool's own pages post the session in a form (no token in the URL, so none
# in the browser's history or a server's log); a GET with the token or the cookie still works.
@router.api_route("", methods=["GET", "POST"], name="journey_page")
def journey_page(
    request: Request, current: ToolSessionDep, session: SessionDep, form: FormDep
) -> Response:
    """The learner's current page (after a check's feedback, or on reload)."""
    enrolment = _current(session, current)
    view = reading.journey_for(session, enrolment.id)
    return render_journey(request, view, _token(request, form))


def _current(session: SessionDep, current: tool_session.ToolSession) -> Any:
    if current.resource_link_pk is None or current.user_pk is None:
        raise InvalidInputError(
            "This session is not from an activity launch, so it has no journey.",
            hint="Open the activity from your course page.",
        )
    return reading.current_enrolment(
        session, resource_link_pk=current.resource_link_pk, user_pk=current.user_pk
    )


@router.api_route("/progress", methods=["GET", "POST"], name="journey_progress")
def journey_progress(
    request: Request, current: ToolSessionDep, session: SessionDep, form: FormDep
) -> Response:
    """The route so far, what is next, and why the learner is on this route."""
    enrolment = _current(session, current)
    view = reading.journey_for(session, enrolment.id)
    return render_journey(
        request,
        view,
        _token(request, form),
        template="journey/progress.html",
        extra={"route_reasons": instructing.route_reasons(session, view)},
    )


@router.post("/intake", name="journey_intake")
def journey_intake(
    request: Request, current: ToolSessionDep, session: SessionDep, form: FormDep, now: NowDep
) -> Response:
    view = _journey(session, current, form)
    enrolment = view.enrolment
    answers = {
        key[len("attribute-") :]: value
        for key, value in form.items()
        if key.startswith("attribute-") and isinstance(value, str)
    }
    return _act(
        request,
        session,
        enrolment.id,
        _token(request, form),
        lambda: learner_actions.submit_intake(
            session,
            enrolment,
            str(form.get("activity") or ""),
            answers,
            now,
            expected_sequence=_int_field(form, "seq"),
            view=view,
        ),
        {f"attribute-{name}": value for name, value in answers.items()},
    )


@router.post("/answer", name="journey_answer")
def journey_answer(
    request: Request, current: ToolSessionDep, session: SessionDep, form: FormDep, now: NowDep
) -> Response:
    view = _journey(session, current, form)
    enrolment = view.enrolment
    choice = _int_field(form, "choice")
    return _act(
        request,
        session,
        enrolment.id,
        _token(request, form),
        lambda: learner_actions.answer_question(
            session,
            enrolment,
            str(form.get("activity") or ""),
            str(form.get("question") or ""),
            None if choice < 0 else choice,
            now,
            expected_sequence=_int_field(form, "seq"),
            view=view,
        ),
        {},
    )


@router.post("/complete", name="journey_complete")
def journey_complete(
    request: Request, current: ToolSessionDep, session: SessionDep, form: FormDep, now: NowDep
) -> Response:
    view = _journey(session, current, form)
    enrolment = view.enrolment
    text = form.get("text")
    return _act(
        request,
        session,
        enrolment.id,
        _token(request, form),
        lambda: learner_actions.complete_activity(
            session,
            enrolment,
            str(form.get("activity") or ""),
            now,
            expected_sequence=_int_field(form, "seq"),
            view=view,
            text=text if isinstance(text, str) else None,
        ),
        {"text": text if isinstance(text, str) else ""},
    )


@router.post("/choose", name="journey_choose")
def journey_choose(
    request: Request, current: ToolSessionDep, session: SessionDep, form: FormDep, now: NowDep
) -> Response:
    view = _journey(session, current, form)
    enrolment = view.enrolment
    picked = [value for value in form.getlist("picked") if isinstance(value, str)]
    return _act(
        request,
        session,
        enrolment.id,
        _token(request, form),
        lambda: learner_actions.make_choice(
            session,
            enrolment,
            str(form.get("choice") or ""),
            picked,
            now,
            expected_sequence=_int_field(form, "seq"),
            view=view,
        ),
        {"picked": picked},
    )
