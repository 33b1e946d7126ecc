"""The instructor's view of one learner and their controls: the learner's decision trace (each
event with the decision after it and why), where an override may send them, moving a learner to
another route or activity and resetting their progress, each with a reason and an audit record.
Functions flush, never commit (the request's transaction commits).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.compiled import CompiledDesign, iter_steps
from adaptive_lti.core.design import Branch
from adaptive_lti.core.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from adaptive_lti.core.events import (
    Answered,
    AttributeSet,
    Chose,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Migrated,
    Overridden,
    Reset,
    Started,
)
from adaptive_lti.core.explanation import Explanation
from adaptive_lti.db import audit_repo, teaching_repo
from adaptive_lti.db.audit_repo import AuditAction
from adaptive_lti.db.teaching_repo import PersonRecord
from adaptive_lti.services.journey import instructing
from adaptive_lti.services.teaching_course import (
    MAX_REASON_LENGTH,
    InstructorPlace,
    MemberPlace,
    TenantDesigns,
    activity_title,
    instructor_name,
    json_object,
    member_place_of,
)


@dataclass(frozen=True)
class TraceStep:
    """One event of the learner's log, in words, and the decision the engine made after it."""

    sequence: int
    at: datetime
    event: str
    actor: str | None
    note: str | None
    decision_kind: str
    explanation: Explanation


@dataclass(frozen=True)
class OverrideTargets:
    routes: tuple[tuple[str, str], ...]  # (branch case name, "name (when condition)")
    activities: tuple[tuple[str, str], ...]  # (activity id, title)


@dataclass(frozen=True)
class LearnerDetail:
    member: MemberPlace
    enrolment_id: int
    design_id: str
    design_version: int
    design_title: str
    started_at: datetime
    trace: tuple[TraceStep, ...]
    targets: OverrideTargets
    attributes: tuple[tuple[str, str, str], ...]  # (attribute, value, where it came from)

    @property
    def current(self) -> TraceStep | None:
        return self.trace[-1] if self.trace else None


def _enrolment_for(
    session: Session, place: InstructorPlace, enrolment_id: int
) -> teaching_repo.EnrolmentRecord:
    found = teaching_repo.find_enrolment(session, Tenant(place.registration_id), enrolment_id)
    if found is None or found.resource_link_pk != place.resource_link_pk:
        # A learner of another activity is "not found" too: their existence is not ours to say.
        raise NotFoundError(
            f"No learner {enrolment_id} follows this activity.",
            hint="Go back to the activity's page and pick a learner from the table.",
        )
    return found


def override_targets(design: CompiledDesign) -> OverrideTargets:
    routes: list[tuple[str, str]] = []
    for _path, step in _branches(design):
        for index, case_ in enumerate(step.branch):
            name = case_.name or f"case {index + 1}"
            when = case_.when or "otherwise"
            routes.append((name, f"{name} (when {when})"))
    activities = tuple(
        (activity_id, activity.title) for activity_id, activity in design.design.activities.items()
    )
    return OverrideTargets(tuple(routes), activities)


def _branches(design: CompiledDesign) -> Iterator[tuple[tuple[str | int, ...], Branch]]:
    for path, step in iter_steps(design.design.route, ("route",)):
        if isinstance(step, Branch):
            yield path, step


def require_reason(reason: str) -> str:
    """A teacher's action is kept with its "why": it may not be empty."""
    text = " ".join((reason or "").split())
    if not text:
        raise InvalidInputError(
            "Say why you are doing this: the reason is kept with the learner's record.",
            hint="Write a short reason (for example 'passed the loops exam in class') and "
            "send the form again.",
        )
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidInputError(
            f"The reason is {len(text)} characters long; at most {MAX_REASON_LENGTH} are kept.",
            hint="Shorten the reason and send the form again.",
        )
    return text


def ensure_same_activity(place: InstructorPlace) -> None:
    if place.resource_link_pk is None:
        raise PermissionDeniedError(
            "This session did not come from an activity, so it has no learners.",
            hint="Open the activity itself from the course page.",
        )


def describe_event(event: Event, design: CompiledDesign | None) -> str:
    """An event of the log as an instructor reads it."""

    def title(activity_id: str) -> str:
        return activity_title(design, activity_id)

    match event:
        case Launched():
            # Service URLs and ids the platform adds to every launch say nothing about the learner.
            given = ", ".join(
                f"{k} = {v}" for k, v in sorted(event.custom.items()) if not v.startswith("http")
            )
            return "Launched the activity" + (f" (the platform sent {given})" if given else "")
        case AttributeSet():
            return f"{event.attribute} set to {event.value!r} (from {event.source})"
        case IntakeAnswered():
            answers = ", ".join(f"{k} = {v}" for k, v in event.answers.items())
            return f"Answered {title(event.activity)}: {answers or 'nothing'}"
        case Started():
            return f"Opened {title(event.activity)}"
        case Answered():
            verdict = "right" if event.correct else "wrong"
            return f"Answered question {event.question} of {title(event.activity)}: {verdict}"
        case Completed():
            score = "" if event.score is None else f" with score {event.score:.2f}"
            return f"Completed {title(event.activity)}{score}"
        case Chose():
            picked = ", ".join(title(activity) for activity in event.picked) or "nothing"
            return f"Chose {picked} (choice '{event.choice}')"
        case Overridden():
            target = f"route {event.route}" if event.route else f"{title(event.activity or '')}"
            return f"Moved to {target} by {event.by}" + (
                f": {event.reason}" if event.reason else ""
            )
        case Reset():
            return f"Progress reset by {event.by}" + (f": {event.reason}" if event.reason else "")
        case Migrated():
            return f"Moved from version {event.from_version} to version {event.to_version}"
    return event.type


def learner_detail(session: Session, place: InstructorPlace, enrolment_id: int) -> LearnerDetail:
    """One learner of the activity: where they are, every decision with its explanation, and
    the places an instructor may move them to."""
    ensure_same_activity(place)
    enrolment = _enrolment_for(session, place, enrolment_id)
    designs = TenantDesigns(session, Tenant(place.registration_id))
    design = designs.get(enrolment.design_id, enrolment.design_version)
    records = teaching_repo.people_of_activity(
        session, Tenant(place.registration_id), place.context_pk, place.resource_link_pk
    )
    record = next((r for r in records if r.enrolment_id == enrolment.enrolment_id), None)
    if record is None:  # the learner is known by their enrolment at least
        record = PersonRecord(user_sub=enrolment.user_sub, name=enrolment.name)
    trace = instructing.decision_trace(session, enrolment.enrolment_id)
    steps = tuple(
        TraceStep(
            sequence=item.sequence,
            at=item.occurred_at,
            event=describe_event(item.event, design),
            actor=item.actor,
            note=item.note,
            decision_kind=item.decision_kind,
            explanation=item.explanation,
        )
        for item in trace.items
    )
    state = (enrolment.snapshot or {}).get("state") or {}
    raw_attributes = json_object(state.get("attributes"))
    sources = json_object(state.get("attribute_sources"))
    attributes = tuple(
        (str(name), str(value), str(sources.get(name, "")))
        for name, value in sorted(raw_attributes.items())
    )
    return LearnerDetail(
        member=member_place_of(record, designs),
        enrolment_id=enrolment.enrolment_id,
        design_id=enrolment.design_id,
        design_version=enrolment.design_version,
        design_title=design.design.title if design is not None else enrolment.design_id,
        started_at=enrolment.started_at,
        trace=steps,
        targets=override_targets(design) if design is not None else OverrideTargets((), ()),
        attributes=attributes,
    )


def move_learner(
    session: Session,
    place: InstructorPlace,
    enrolment_id: int,
    target: str,
    reason: str,
    *,
    now: datetime,
) -> None:
    """Put the learner on a route (``route:<case name>``) or at an activity
    (``activity:<id>``): an ``overridden`` event with who did it and why."""
    ensure_same_activity(place)
    why = require_reason(reason)
    enrolment = _enrolment_for(session, place, enrolment_id)
    kind, _, name = (target or "").partition(":")
    design = TenantDesigns(session, Tenant(place.registration_id)).get(
        enrolment.design_id, enrolment.design_version
    )
    targets = override_targets(design) if design is not None else OverrideTargets((), ())
    allowed = {
        "route": {route for route, _ in targets.routes},
        "activity": {activity for activity, _ in targets.activities},
    }
    if kind not in allowed or name not in allowed[kind]:
        raise InvalidInputError(
            f"{target!r} is not a route or an activity of {enrolment.design_id} "
            f"version {enrolment.design_version}.",
            hint="Pick a route or an activity from the lists on the learner's page.",
        )
    instructing.override(
        session, enrolment.enrolment_id, instructor_name(session, place), target, why, now
    )
    _audit_learner(session, place, AuditAction.learner_move, enrolment, now, to=target, reason=why)


def reset_learner(
    session: Session, place: InstructorPlace, enrolment_id: int, reason: str, *, now: datetime
) -> None:
    """Start the learner's route again: a ``reset`` event with who did it and why (their
    answers so far stay in the log; attributes such as their background are kept)."""
    ensure_same_activity(place)
    why = require_reason(reason)
    enrolment = _enrolment_for(session, place, enrolment_id)
    instructing.reset(session, enrolment.enrolment_id, instructor_name(session, place), why, now)
    _audit_learner(session, place, AuditAction.learner_reset, enrolment, now, reason=why)


def _audit_learner(
    session: Session,
    place: InstructorPlace,
    action: AuditAction,
    enrolment: teaching_repo.EnrolmentRecord,
    now: datetime,
    **details: str,
) -> None:
    # The learner is named by their platform id only: the record outlives their erasure.
    audit_repo.append(
        session,
        audit_repo.actor_of_user(session, place.user_pk),
        action,
        place.registration_id,
        f"enrolment {enrolment.enrolment_id} (user {enrolment.user_sub})",
        {
            "enrolment_id": enrolment.enrolment_id,
            "user_sub": enrolment.user_sub,
            "design": f"{enrolment.design_id}@{enrolment.design_version}",
            **details,
        },
        now=now,
    )
