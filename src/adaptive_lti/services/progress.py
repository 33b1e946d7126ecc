"""The learner journey: from a launch to the next activity, answer by answer, to the grade.

``begin_or_resume`` is called by a learner's launch of an activity bound to a design: it finds or
creates the learner's enrolment (a new launch on any device continues where they were), records
what the tool knows of them (the launch's custom parameters, role, ``lis`` ids and locale, intake
answers and outcomes recorded for the same person in other courses of the same platform) and
returns the engine's decision. ``record`` folds one event (an answer, a completion, a choice) into
the learner's state: the event, the new snapshot and any score for the platform's gradebook are
written in the caller's transaction, and the next decision comes back at once.

The log is the truth: ``rebuild_snapshot`` replays it, and ``decision_trace`` shows every event
with the decision the engine made after it. Instructors move learners with ``override`` and
``reset``, which are events too (who did it, and why).

Services flush, never commit: the request's dependency commits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import LaunchDesign, Tenant
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.design import (
    Attribute,
    AttributeSource,
    Check,
    Intake,
    Question,
    Reflection,
)
from adaptive_lti.core.engine import (
    ChoiceOffered,
    Decision,
    DesignCompleted,
    NeedsInput,
    NextActivity,
    decide,
    migrate,
    start,
)
from adaptive_lti.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from adaptive_lti.core.events import (
    Answered,
    AttributeSet,
    AttributeValue,
    Chose,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Overridden,
    Reset,
)
from adaptive_lti.core.grading import (
    SCOPE_SCORE,
    ActivityProgress,
    GradingProgress,
    LineItemSpec,
    Score,
)
from adaptive_lti.core.journey import (
    DecisionTrace,
    Enrolment,
    EnrolmentSummary,
    JourneyView,
    Snapshot,
    TraceItem,
    outline,
)
from adaptive_lti.core.learner import LearnerState, coerce_attribute
from adaptive_lti.core.lti import LaunchContext, RecordedLaunch
from adaptive_lti.db import journey_repo
from adaptive_lti.db.journey_repo import SnapshotValues, StaleJourney
from adaptive_lti.metrics import ROUTING_DECISIONS
from adaptive_lti.services import designs as design_service
from adaptive_lti.services import grades as grade_service

# The gradebook column's maximum: Moodle's default for a new grade item. The design's grade
# (0..1) is sent as a share of it; platforms rescale to their own maximum (AGS 2.0 §3.4.3).
SCORE_MAXIMUM = 100.0


class StalePageError(ConflictError):
    """The learner's page was out of date: another tab or device moved on first."""


def _stale() -> StalePageError:
    return StalePageError(
        "This page was out of date: you had already moved on in another tab or window, so "
        "this answer was not recorded.",
        hint="Here is where you are now; carry on from here.",
    )


# --- reading ---------------------------------------------------------------------------------


# Compiled designs by (tenant, id, version): published versions never change, so a process may
# keep them (every process builds the same value from the database; nothing here must be
# shared). Two tenants' designs of one id are different designs: the tenant is in the key.
_COMPILED: dict[tuple[int, str, int], CompiledDesign] = {}
_COMPILED_LIMIT = 256


def _design(enrolment: Enrolment, session: Session) -> CompiledDesign:
    key = (enrolment.registration_id, enrolment.design_id, enrolment.design_version)
    compiled = _COMPILED.get(key)
    if compiled is None:
        version = design_service.get_design_version(
            session,
            Tenant(enrolment.registration_id),
            enrolment.design_id,
            enrolment.design_version,
        )
        compiled = design_service.compiled_design(version)
        if len(_COMPILED) >= _COMPILED_LIMIT:
            _COMPILED.clear()
        _COMPILED[key] = compiled
    return compiled


def _view(
    enrolment: Enrolment,
    design: CompiledDesign,
    snapshot: Snapshot | None = None,
    *,
    state: LearnerState | None = None,
    decision: Decision | None = None,
    event_count: int = 0,
    stale: bool = False,
) -> JourneyView:
    if snapshot is not None:
        state, decision, event_count = snapshot.state, snapshot.decision, snapshot.event_count
    assert state is not None and decision is not None
    items, progress = outline(design, state)
    return JourneyView(
        enrolment=enrolment,
        design=design,
        state=state,
        decision=decision,
        event_count=event_count,
        outline=items,
        progress=progress,
        stale=stale,
    )


def journey_for(
    session: Session, enrolment_id: int, *, enrolment: Enrolment | None = None
) -> JourneyView:
    """Where the learner of this enrolment is now (from the snapshot). ``enrolment``: the
    enrolment when the caller has read it already."""
    if enrolment is None or enrolment.id != enrolment_id:
        enrolment = _enrolment_or_404(session, enrolment_id)
    snapshot = journey_repo.get_snapshot(session, enrolment.id)
    if snapshot is None:
        # An enrolment is created with its first event; a missing snapshot is rebuilt.
        return rebuild_snapshot(session, enrolment.id, now=enrolment.last_launch_at)
    return _view(enrolment, _design(enrolment, session), snapshot)


def _not_found() -> NotFoundError:
    return NotFoundError(
        "This learner's progress was not found.",
        hint="Open the activity again from your course page.",
    )


def _enrolment_or_404(session: Session, enrolment_id: int) -> Enrolment:
    enrolment = journey_repo.get_enrolment(session, enrolment_id)
    if enrolment is None:
        raise _not_found()
    return enrolment


def journey_for_session(
    session: Session, *, enrolment_id: int, resource_link_pk: int | None, user_pk: int | None
) -> JourneyView:
    """Where the learner is, for a follow-up request naming its enrolment (one query); refused
    unless the enrolment is the session's own learner on the session's activity."""
    found = journey_repo.get_enrolment_with_snapshot(session, enrolment_id)
    if found is None:
        raise _not_found()
    enrolment, snapshot = found
    _check_owner(enrolment, resource_link_pk, user_pk)
    if snapshot is None:
        return rebuild_snapshot(session, enrolment.id, now=enrolment.last_launch_at)
    return _view(enrolment, _design(enrolment, session), snapshot)


def _check_owner(enrolment: Enrolment, resource_link_pk: int | None, user_pk: int | None) -> None:
    if enrolment.resource_link_pk != resource_link_pk or enrolment.user_pk != user_pk:
        raise PermissionDeniedError(
            "This page belongs to another learner or another activity.",
            hint="Open the activity again from your course page.",
        )


def enrolment_for_session(
    session: Session, *, enrolment_id: int, resource_link_pk: int | None, user_pk: int | None
) -> Enrolment:
    """The enrolment a follow-up request names, refused unless it is the session's own."""
    enrolment = _enrolment_or_404(session, enrolment_id)
    _check_owner(enrolment, resource_link_pk, user_pk)
    return enrolment


def current_enrolment(session: Session, *, resource_link_pk: int, user_pk: int) -> Enrolment:
    enrolment = journey_repo.latest_enrolment(
        session, resource_link_pk=resource_link_pk, user_pk=user_pk
    )
    if enrolment is None:
        raise NotFoundError(
            "You have not started this activity yet.",
            hint="Open the activity from your course page to start it.",
        )
    return enrolment


# --- launching -------------------------------------------------------------------------------


def _launch_fields(launch: LaunchContext) -> dict[str, str]:
    """Launch fields a design may read with ``sources: [launch]`` (``key`` names the field)."""
    fields: dict[str, str] = {}
    if launch.locale:
        fields["locale"] = launch.locale
    if launch.context is not None:
        fields["context_id"] = launch.context.id
        for name, value in (
            ("context_label", launch.context.label),
            ("context_title", launch.context.title),
        ):
            if value:
                fields[name] = value
    if launch.resource_link is not None:
        fields["resource_link_id"] = launch.resource_link.id
    # LTI Core 1.3 §5.4.4: the lis claim (SIS ids of the person and the course section).
    for name, value in (launch.lis or {}).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            fields[f"lis_{name}"] = str(value)
    if launch.person.person_sourcedid:
        fields.setdefault("lis_person_sourcedid", launch.person.person_sourcedid)
    return fields


def _role(launch: LaunchContext) -> str:
    if launch.is_instructor:
        return "instructor"
    names = {role.principal for role in launch.roles}
    for name in ("Learner", "Mentor", "Member"):
        if name in names:
            return name.lower()
    return "learner" if not names else sorted(names)[0].lower()


def launched_event(launch: LaunchContext, now: datetime) -> Launched:
    return Launched(
        at=now,
        custom={str(k): str(v) for k, v in launch.custom.items()},
        launch=_launch_fields(launch),
        role=_role(launch),
    )


def _from_earlier(
    attribute_id: str, attribute: Attribute, records: list[journey_repo.EarlierRecord]
) -> tuple[AttributeValue, str] | None:
    """A value for an attribute from the person's other enrolments: an ``outcome`` the tool
    recorded (``<design>.grade``, ``<design>.passed``, ``[<design>.]<activity>.score``, or an
    attribute of the same name), or an answer they gave to the same intake question."""
    key = attribute.key or attribute_id
    for source in attribute.sources:
        if source is AttributeSource.outcome:
            for record in records:
                raw = _outcome_value(key, record)
                value = coerce_attribute(attribute, raw)
                if value is not None:
                    return value, "outcome"
        elif source is AttributeSource.intake:
            for record in records:
                if record.state.attribute_sources.get(attribute_id) != "intake":
                    continue
                value = coerce_attribute(attribute, record.state.attributes.get(attribute_id))
                if value is not None:
                    return value, "intake"
    return None


def _outcome_value(key: str, record: journey_repo.EarlierRecord) -> object:
    design_id, _, rest = key.partition(".")
    if design_id == record.design_id:
        if rest == "grade":
            return record.grade
        if rest == "passed":
            return record.passed
        if rest == "completed":
            return record.completed
        key = rest
    activity, _, field = key.rpartition(".")
    if activity and field in {"score", "passed", "completed"}:
        outcome = record.state.outcomes.get(activity)
        if outcome is None:
            return None
        return getattr(outcome, field) if outcome.completed else None
    return record.state.attributes.get(key)


def begin_or_resume(
    session: Session,
    launch: LaunchContext,
    launch_design: LaunchDesign,
    recorded: RecordedLaunch,
    now: datetime,
) -> JourneyView:
    """Start the learner on the activity's design, or continue where they were."""
    if recorded.resource_link_pk is None or recorded.user_pk is None or not launch.person.subject:
        raise NotFoundError(
            "This launch names no activity or no user, so there is no journey to follow.",
            hint="Open the activity itself from your course page.",
        )
    design_id = launch_design.binding.design_id
    tenant = Tenant(recorded.registration_id)
    enrolment = journey_repo.find_enrolment(
        session,
        tenant,
        resource_link_pk=recorded.resource_link_pk,
        user_pk=recorded.user_pk,
        design_id=design_id,
    )
    if enrolment is None:
        enrolment = journey_repo.insert_enrolment(
            session,
            registration_id=recorded.registration_id,
            deployment_pk=recorded.deployment_pk,
            context_pk=recorded.context_pk,
            resource_link_pk=recorded.resource_link_pk,
            user_pk=recorded.user_pk,
            user_sub=launch.person.subject,
            binding_id=launch_design.binding.id,
            design_id=design_id,
            design_version=launch_design.version.version,
            ags_endpoint=launch.ags_endpoint,
            locale=launch.locale,
            now=now,
        ) or journey_repo.find_enrolment(
            session,
            tenant,
            resource_link_pk=recorded.resource_link_pk,
            user_pk=recorded.user_pk,
            design_id=design_id,
        )
        assert enrolment is not None
    else:
        journey_repo.note_launch(
            session, enrolment.id, ags_endpoint=launch.ags_endpoint, locale=launch.locale, now=now
        )
        enrolment = journey_repo.get_enrolment(session, enrolment.id) or enrolment
        if launch_design.version.version > enrolment.design_version:
            enrolment = _migrate_if_declared(session, enrolment, launch_design, now)
    view = record(session, enrolment, launched_event(launch, now), now)
    design = view.design
    records: list[journey_repo.EarlierRecord] | None = None
    for attribute_id, attribute in design.design.attributes.items():
        if attribute_id in view.state.attributes:
            continue
        if not {AttributeSource.outcome, AttributeSource.intake} & set(attribute.sources):
            continue
        if records is None:
            records = journey_repo.earlier_records(
                session, tenant, user_pk=enrolment.user_pk, except_enrolment=enrolment.id
            )
        found = _from_earlier(attribute_id, attribute, records)
        if found is not None:
            value, source = found
            event = AttributeSet(
                at=now,
                attribute=attribute_id,
                value=value,
                source="outcome" if source == "outcome" else "intake",
            )
            view = record(
                session, enrolment, event, now, expected_sequence=view.event_count, current=view
            )
    return view


def _migrate_if_declared(
    session: Session, enrolment: Enrolment, launch_design: LaunchDesign, now: datetime
) -> Enrolment:
    """Move the learner to the activity's newer version when it declares a migration for where
    they are; otherwise they stay on the version they started (it never changes under them)."""
    current = journey_for(session, enrolment.id, enrolment=enrolment)
    newer = design_service.compiled_design(launch_design.version)
    moved = migrate(current.state, newer, now)
    if moved is None:
        return enrolment
    _state, event = moved
    journey_repo.set_design_version(session, enrolment.id, newer.version)
    migrated = dataclasses.replace(enrolment, design_version=newer.version)
    record(session, migrated, event, now, expected_sequence=current.event_count)
    return migrated


# --- recording -------------------------------------------------------------------------------


def _state_and_count(
    session: Session, enrolment: Enrolment, design: CompiledDesign
) -> tuple[LearnerState, Snapshot | None]:
    snapshot = journey_repo.get_snapshot(session, enrolment.id)
    if snapshot is None:
        return start(design), None
    return snapshot.state, snapshot


def record(
    session: Session,
    enrolment: Enrolment,
    event: Event,
    now: datetime,
    *,
    expected_sequence: int | None = None,
    actor: str | None = None,
    note: str | None = None,
    current: JourneyView | None = None,
) -> JourneyView:
    """Append ``event`` to the learner's log, update the snapshot, queue the grade, decide.

    ``expected_sequence`` is the event count the learner's page was drawn at: when the log has
    moved on since (another tab, another device), ``StalePageError`` is raised and nothing is
    written. ``EngineError`` (nothing written) for an event that cannot happen now.
    """
    if current is not None and current.enrolment.id == enrolment.id:
        # The caller has just read where the learner is (this request): no second read.
        design, state, count = current.design, current.state, current.event_count
        old_grade = current.decision.grade
        was_completed = isinstance(current.decision, DesignCompleted)
    else:
        design = _design(enrolment, session)
        state, snapshot = _state_and_count(session, enrolment, design)
        count = 0 if snapshot is None else snapshot.event_count
        old_grade = None if snapshot is None else snapshot.grade
        was_completed = snapshot is not None and snapshot.completed
    if expected_sequence is not None and expected_sequence != count:
        raise _stale()
    new_state, decision = decide(design, state, event, now, learner_key=enrolment.learner_key)
    items, progress = outline(design, new_state)
    completed = isinstance(decision, DesignCompleted)
    passed = decision.passed if isinstance(decision, DesignCompleted) else None
    try:
        journey_repo.append_event(
            session,
            enrolment.id,
            expected_sequence=count,
            event=event,
            design_version=design.version,
            actor=actor,
            note=note,
            decision=decision,
            snapshot=SnapshotValues(new_state, decision, progress, completed, passed),
            now=now,
        )
    except StaleJourney:
        raise _stale() from None
    ROUTING_DECISIONS.labels(kind=decision.kind).inc()
    _queue_grade(session, enrolment, design, (old_grade, was_completed), decision, count, now)
    return JourneyView(
        enrolment=enrolment,
        design=design,
        state=new_state,
        decision=decision,
        event_count=count + 1,
        outline=items,
        progress=progress,
    )


def _line_item(enrolment: Enrolment, design: CompiledDesign) -> LineItemSpec | None:
    """The gradebook column scores go to (AGS 2.0 §3.2), from the latest launch's AGS claim;
    None when the platform granted no score scope (grading is off for the activity)."""
    ags: Mapping[str, Any] = enrolment.ags_endpoint or {}
    scopes = ags.get("scope")
    if not isinstance(scopes, list) or SCOPE_SCORE not in scopes:
        return None
    lineitem = ags.get("lineitem")
    lineitems = ags.get("lineitems")
    if not isinstance(lineitem, str) and not isinstance(lineitems, str):
        return None
    return LineItemSpec(
        label=design.design.title,
        score_maximum=SCORE_MAXIMUM,
        granted_scopes=tuple(str(scope) for scope in scopes),
        lineitem_url=lineitem if isinstance(lineitem, str) else None,
        lineitems_url=lineitems if isinstance(lineitems, str) else None,
        resource_id=f"design:{design.id}",
        tag="adaptive-lti",
        platform_resource_link_id=enrolment.platform_resource_link_id,
    )


def _queue_grade(
    session: Session,
    enrolment: Enrolment,
    design: CompiledDesign,
    before: tuple[float | None, bool],
    decision: Decision,
    sequence: int,
    now: datetime,
) -> None:
    """Queue a score when the grade changed or the design was just completed.

    AGS 2.0 §3.4.5-6: while the learner is on the way the score is ``InProgress`` and
    ``Pending`` (not final); at the end ``Completed`` and ``FullyGraded``.
    """
    if design.design.grade is None:
        return
    completed = isinstance(decision, DesignCompleted)
    old_grade, was_completed = before
    if decision.grade == old_grade and completed == was_completed:
        return
    if decision.grade is None and not completed:
        return
    line_item = _line_item(enrolment, design)
    if line_item is None:
        return
    final = completed
    comment = decision.explanation.learner_text[:1000] if final else None
    score = Score(
        user_id=enrolment.user_sub,
        activity_progress=ActivityProgress.completed if final else ActivityProgress.in_progress,
        grading_progress=GradingProgress.fully_graded if final else GradingProgress.pending,
        timestamp=now,
        score_given=None if decision.grade is None else round(decision.grade * SCORE_MAXIMUM, 4),
        score_maximum=None if decision.grade is None else SCORE_MAXIMUM,
        comment=comment,
    )
    grade_service.queue_score(
        session,
        registration_id=enrolment.registration_id,
        line_item=line_item,
        score=score,
        now=now,
        # One score per event of the log: replays and retries never queue it twice.
        dedupe_key=f"journey:{enrolment.id}:{sequence}",
        resource_link_id=enrolment.resource_link_pk,
    )


# --- the log is the truth --------------------------------------------------------------------


def _replay(
    session: Session, enrolment: Enrolment
) -> tuple[list[journey_repo.StoredEvent], list[tuple[LearnerState, Decision]], CompiledDesign]:
    events = journey_repo.list_events(session, enrolment.id)
    versions = {event.design_version for event in events} | {enrolment.design_version}
    designs = {
        version: design_service.compiled_design(
            design_service.get_design_version(
                session, Tenant(enrolment.registration_id), enrolment.design_id, version
            )
        )
        for version in versions
    }
    design = designs[min(versions)]
    state = start(design)
    steps: list[tuple[LearnerState, Decision]] = []
    for stored in events:
        design = designs[stored.design_version]
        state, decision = decide(
            design, state, stored.event, stored.event.at, learner_key=enrolment.learner_key
        )
        steps.append((state, decision))
    return events, steps, design


def rebuild_snapshot(session: Session, enrolment_id: int, *, now: datetime) -> JourneyView:
    """Replay the learner's log and write the snapshot again (the log is the truth)."""
    enrolment = _enrolment_or_404(session, enrolment_id)
    events, steps, design = _replay(session, enrolment)
    if not steps:
        raise NotFoundError(
            "This learner has no recorded events yet.",
            hint="Their progress starts with their first launch of the activity.",
        )
    state, decision = steps[-1]
    items, progress = outline(design, state)
    completed = isinstance(decision, DesignCompleted)
    passed = decision.passed if isinstance(decision, DesignCompleted) else None
    journey_repo.replace_snapshot(
        session,
        enrolment.id,
        SnapshotValues(state, decision, progress, completed, passed),
        len(events),
        now,
    )
    return JourneyView(
        enrolment=enrolment,
        design=design,
        state=state,
        decision=decision,
        event_count=len(events),
        outline=items,
        progress=progress,
    )


# --- for instructors -------------------------------------------------------------------------


def list_enrolments(
    session: Session,
    tenant: Tenant,
    *,
    resource_link_pk: int | None = None,
    context_pk: int | None = None,
) -> list[EnrolmentSummary]:
    """Every learner of the tenant's activity (or course) with their place, by name."""
    summaries = []
    for row in journey_repo.list_enrolments(
        session, tenant, resource_link_pk=resource_link_pk, context_pk=context_pk
    ):
        snapshot = row.snapshot
        if snapshot is None:
            continue
        decision = snapshot.decision
        activity = getattr(decision, "activity", None)
        title = getattr(decision, "title", None)
        summaries.append(
            EnrolmentSummary(
                enrolment=row.enrolment,
                learner_name=row.learner_name,
                decision_kind=decision.kind,
                activity=activity if isinstance(activity, str) else None,
                activity_title=title if isinstance(title, str) else None,
                route=snapshot.route,
                flags=snapshot.flags,
                needs_help="needs-help" in snapshot.flags,
                progress=snapshot.progress,
                grade=snapshot.grade,
                completed=snapshot.completed,
                passed=snapshot.passed,
                event_count=snapshot.event_count,
                updated_at=snapshot.updated_at,
            )
        )
    return summaries


def route_reasons(session: Session, view: JourneyView) -> tuple[str, ...]:
    """Why the learner is on each route they are on, in the engine's words for the learner
    ("You are on the foundations route because your diagnostic score was 0.17 (below 0.5).")
    as said when the route was chosen (or set by an instructor), found by replaying the log."""
    if not view.state.routes:
        return ()
    _events, steps, _design_now = _replay(session, view.enrolment)
    said: dict[str, str] = {}
    for _state, decision in steps:
        for entry in decision.explanation.trace:
            if not entry.learner:
                continue
            for taken in view.state.routes.values():
                on_branch = entry.path == taken.branch or entry.path.startswith(
                    taken.branch + ".branch["
                )
                chosen = entry.result is True or entry.rule.startswith("instructor override")
                if on_branch and chosen:
                    said[taken.branch] = entry.learner
    return tuple(said[branch] for branch in view.state.routes if branch in said)


def decision_trace(session: Session, enrolment_id: int) -> DecisionTrace:
    """Every event of the learner's log with the decision and explanation that followed it."""
    enrolment = _enrolment_or_404(session, enrolment_id)
    events, steps, _design_now = _replay(session, enrolment)
    items = tuple(
        TraceItem(
            sequence=stored.sequence,
            event=stored.event,
            occurred_at=stored.occurred_at,
            actor=stored.actor,
            note=stored.note,
            decision_kind=decision.kind,
            explanation=decision.explanation,
        )
        for stored, (_state, decision) in zip(events, steps, strict=True)
    )
    return DecisionTrace(
        enrolment=enrolment,
        learner_name=journey_repo.learner_name(session, enrolment.user_pk),
        items=items,
    )


def override(
    session: Session,
    enrolment_id: int,
    actor: str,
    target: str,
    reason: str,
    now: datetime,
) -> JourneyView:
    """Move the learner: ``target`` is ``"activity:<id>"`` or ``"route:<branch case name>"``.

    Raises ``EngineError`` (409, nothing written) when the design has no such activity or route.
    """
    enrolment = _enrolment_or_404(session, enrolment_id)
    kind, _, name = target.partition(":")
    if kind not in {"activity", "route"} or not name.strip():
        raise ConflictError(
            f"{target!r} is not a place to move a learner to.",
            hint="Give 'activity:<activity id>' or 'route:<route name>'.",
        )
    event = Overridden(
        at=now,
        by=actor,
        reason=reason.strip(),
        activity=name.strip() if kind == "activity" else None,
        route=name.strip() if kind == "route" else None,
    )
    return record(session, enrolment, event, now, actor=actor)


def reset(
    session: Session, enrolment_id: int, actor: str, reason: str, now: datetime
) -> JourneyView:
    """Start the learner's route again (attributes and split groups are kept)."""
    enrolment = _enrolment_or_404(session, enrolment_id)
    return record(
        session, enrolment, Reset(at=now, by=actor, reason=reason.strip()), now, actor=actor
    )


# --- what a learner does on a page ------------------------------------------------------------


def _unchanged_view(
    session: Session, enrolment: Enrolment, expected_sequence: int, view: JourneyView | None
) -> JourneyView:
    """The learner's journey (``view`` when the caller has it already), refused as stale when
    events were recorded since the page was made (``expected_sequence``)."""
    view = view or journey_for(session, enrolment.id, enrolment=enrolment)
    if view.event_count != expected_sequence:
        raise _stale()
    return view


def _offered(view: JourneyView, activity_id: str, kinds: set[str]) -> None:
    """Refuse an action on an activity the learner is not on now (a page left open too long)."""
    decision = view.decision
    current = getattr(decision, "activity", None)
    if current != activity_id or decision.kind not in kinds:
        raise _stale()


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
        raise _stale()
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
        raise _stale()
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
