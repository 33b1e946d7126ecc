"""What a learner does on a page of their journey: answer intake questions, answer a check's
questions one by one (with feedback), complete a page, link or reflection, and make a choice.
Each checks that the page's activity is the one on offer, then goes through ``recording.record``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.design import Check, Intake, Question, Reflection
from adaptive_lti.core.engine import ChoiceOffered, NeedsInput, NextActivity
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.events import Answered, AttributeValue, Chose, Completed, IntakeAnswered
from adaptive_lti.core.journey import Enrolment, JourneyView
from adaptive_lti.core.learner import coerce_attribute
from adaptive_lti.services.journey.reading import journey_for, stale_page
from adaptive_lti.services.journey.recording import record


def _unchanged_view(
    session: Session, enrolment: Enrolment, expected_sequence: int, view: JourneyView | None
) -> JourneyView:
    """The learner's journey (``view`` when the caller has it already), refused as stale when
    events were recorded since the page was made (``expected_sequence``)."""
    view = view or journey_for(session, enrolment.id, enrolment=enrolment)
    if view.event_count != expected_sequence:
        raise stale_page()
    return view


def _offered(view: JourneyView, activity_id: str, kinds: set[str]) -> None:
    """Refuse an action on an activity the learner is not on now (a page left open too long)."""
    decision = view.decision
    current = getattr(decision, "activity", None)
    if current != activity_id or decision.kind not in kinds:
        raise stale_page()


def submit_intake(
    session: Session,
    enrolment: Enrolment,
    activity_id: str,
    answers: Mapping[str, str],
    now: datetime,
    *,
    expected_sequence: int,
    view: JourneyView | None = None,
) -> JourneyView:
    """Record the intake answers; every question the form asked must be answered."""
    view = _unchanged_view(session, enrolment, expected_sequence, view)
    _offered(view, activity_id, {"input"})
    decision = view.decision
    assert isinstance(decision, NeedsInput)
    given: dict[str, AttributeValue] = {}
    missing: list[str] = []
    for question in decision.questions:
        raw = (answers.get(question.attribute) or "").strip()
        if not raw:
            missing.append(question.question)
            continue
        attribute = view.design.design.attributes[question.attribute]
        value = coerce_attribute(attribute, raw)
        if value is None:
            raise InvalidInputError(
                f"{raw!r} is not an answer to “{question.question}”.",
                hint="Pick one of the answers offered.",
            )
        given[question.attribute] = value
    if missing:
        raise InvalidInputError(
            "Please answer every question: " + "; ".join(f"“{q}”" for q in missing) + ".",
            hint="Your other answers are kept below.",
        )
    event = IntakeAnswered(at=now, activity=activity_id, answers=given)
    return record(session, enrolment, event, now, expected_sequence=expected_sequence, current=view)


@dataclass(frozen=True)
class AnswerFeedback:
    """What the learner sees right after answering one question."""

    question: Question
    chosen: str
    correct: bool
    # Set when this answer finished the check.
    check_score: float | None
    answered: int
    total: int


def current_question(view: JourneyView) -> Question | None:
    """The first question of the offered check not answered in this attempt."""
    decision = view.decision
    if not isinstance(decision, NextActivity):
        return None
    check = view.design.design.activities.get(decision.activity)
    if not isinstance(check, Check):
        return None
    answered = view.state.outcome(decision.activity).answers
    return next((q for q in check.questions if q.id not in answered), None)


def answer_question(
    session: Session,
    enrolment: Enrolment,
    activity_id: str,
    question_id: str,
    choice_index: int | None,
    now: datetime,
    *,
    expected_sequence: int,
    view: JourneyView | None = None,
) -> tuple[JourneyView, AnswerFeedback]:
    """Record one answer (graded here, never trusted from the page); the last answer of the
    check completes it, with its score, in the same transaction."""
    view = _unchanged_view(session, enrolment, expected_sequence, view)
    _offered(view, activity_id, {"activity"})
    question = current_question(view)
    if question is None or question.id != question_id:
        raise stale_page()
    if choice_index is None or not 0 <= choice_index < len(question.choices):
        raise InvalidInputError(
            "Please pick an answer before submitting.",
            hint="Choose one of the options, then press “Submit answer”.",
        )
    chosen = question.choices[choice_index]
    correct = chosen == question.answer
    check = view.design.design.activities[activity_id]
    assert isinstance(check, Check)
    view = record(
        session,
        enrolment,
        Answered(
            at=now, activity=activity_id, question=question.id, choice=chosen, correct=correct
        ),
        now,
        expected_sequence=expected_sequence,
        current=view,
    )
    answers = view.state.outcome(activity_id).answers
    score: float | None = None
    if all(q.id in answers for q in check.questions):
        score = sum(answers.values()) / len(check.questions)
        view = record(
            session,
            enrolment,
            Completed(at=now, activity=activity_id, score=score),
            now,
            expected_sequence=view.event_count,
            current=view,
        )
    return view, AnswerFeedback(
        question=question,
        chosen=chosen,
        correct=correct,
        check_score=score,
        answered=len(check.questions) if score is not None else len(answers),
        total=len(check.questions),
    )


def complete_activity(
    session: Session,
    enrolment: Enrolment,
    activity_id: str,
    now: datetime,
    *,
    expected_sequence: int,
    text: str | None = None,
    view: JourneyView | None = None,
) -> JourneyView:
    """A page read, a link marked done, a reflection submitted (its text kept with the event)."""
    view = _unchanged_view(session, enrolment, expected_sequence, view)
    _offered(view, activity_id, {"activity"})
    activity = view.design.design.activities[activity_id]
    if isinstance(activity, Check | Intake):
        raise InvalidInputError(
            f"“{activity.title}” is completed by answering its questions.",
            hint="Answer the questions on the page.",
        )
    note: str | None = None
    if isinstance(activity, Reflection):
        note = (text or "").strip()
        if not note:
            raise InvalidInputError(
                "Please write your reflection before submitting it.",
                hint="A few sentences are enough.",
            )
        if len(note) > MAX_REFLECTION_LENGTH:
            raise InvalidInputError(
                f"Your reflection is longer than {MAX_REFLECTION_LENGTH} characters.",
                hint="Shorten it a little and submit it again; your text is kept below.",
            )
    return record(
        session,
        enrolment,
        Completed(at=now, activity=activity_id),
        now,
        expected_sequence=expected_sequence,
        note=note,
        current=view,
    )


MAX_REFLECTION_LENGTH = 20_000


def make_choice(
    session: Session,
    enrolment: Enrolment,
    choice_id: str,
    picked: list[str],
    now: datetime,
    *,
    expected_sequence: int,
    view: JourneyView | None = None,
) -> JourneyView:
    """Record the learner's pick at a choice point (exactly k, or between min and max)."""
    view = _unchanged_view(session, enrolment, expected_sequence, view)
    decision = view.decision
    if not isinstance(decision, ChoiceOffered) or decision.choice != choice_id:
        raise stale_page()
    options = {option.activity: option.title for option in decision.options}
    chosen = list(dict.fromkeys(a for a in picked if a))
    unknown = [a for a in chosen if a not in options]
    if unknown:
        raise InvalidInputError(
            "Some of what was picked is not offered here.",
            hint="Pick from: " + ", ".join(options.values()) + ".",
        )
    least, most = decision.least, decision.most
    if not least <= len(chosen) <= most:
        wanted = (
            f"exactly {least}"
            if least == most
            else (f"between {least} and {most}" if least else f"at most {most}")
        )
        noun = "option" if most == 1 else "options"
        raise InvalidInputError(
            f"Please pick {wanted} {noun}; you picked {len(chosen)}.",
            hint="Change your selection and submit again.",
        )
    return record(
        session,
        enrolment,
        Chose(at=now, choice=choice_id, picked=tuple(chosen)),
        now,
        expected_sequence=expected_sequence,
        current=view,
    )
