"""Reading a learner's journey: the enrolment, its compiled design (cached per version) and the
snapshot the pages show, checked against the session that asks for it.

The log is the truth: ``rebuild_snapshot`` replays an enrolment's events through the engine and
writes the snapshot again (a snapshot the code no longer reads is rebuilt, not trusted).
Services flush, never commit: the request's dependency commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.engine import Decision, DesignCompleted, decide, start
from adaptive_lti.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from adaptive_lti.core.journey import Enrolment, JourneyView, Snapshot, outline
from adaptive_lti.core.learner import LearnerState
from adaptive_lti.db import journey_repo
from adaptive_lti.db.journey_repo import SnapshotValues
from adaptive_lti.services import design_publishing


class StalePageError(ConflictError):
    """The learner's page was out of date: another tab or device moved on first."""


def stale_page() -> StalePageError:
    return StalePageError(
        "This page was out of date: you had already moved on in another tab or window, so "
        "this answer was not recorded.",
        hint="Here is where you are now; carry on from here.",
    )


# Compiled designs by (tenant, id, version): published versions never change, so a process may
# keep them (every process builds the same value from the database; nothing here must be
# shared). Two tenants' designs of one id are different designs: the tenant is in the key.
_COMPILED: dict[tuple[int, str, int], CompiledDesign] = {}


_COMPILED_LIMIT = 256


def compiled_design_of(enrolment: Enrolment, session: Session) -> CompiledDesign:
    key = (enrolment.registration_id, enrolment.design_id, enrolment.design_version)
    compiled = _COMPILED.get(key)
    if compiled is None:
        version = design_publishing.get_design_version(
            session,
            Tenant(enrolment.registration_id),
            enrolment.design_id,
            enrolment.design_version,
        )
        compiled = design_publishing.compiled_design(version)
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
        enrolment = enrolment_or_404(session, enrolment_id)
    snapshot = journey_repo.get_snapshot(session, enrolment.id)
    if snapshot is None:
        # An enrolment is created with its first event; a missing snapshot is rebuilt.
        return rebuild_snapshot(session, enrolment.id, now=enrolment.last_launch_at)
    return _view(enrolment, compiled_design_of(enrolment, session), snapshot)


def _not_found() -> NotFoundError:
    return NotFoundError(
        "This learner's progress was not found.",
        hint="Open the activity again from your course page.",
    )


def enrolment_or_404(session: Session, enrolment_id: int) -> Enrolment:
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
    return _view(enrolment, compiled_design_of(enrolment, session), snapshot)


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
    enrolment = enrolment_or_404(session, enrolment_id)
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


def replay_log(
    session: Session, enrolment: Enrolment
) -> tuple[list[journey_repo.StoredEvent], list[tuple[LearnerState, Decision]], CompiledDesign]:
    events = journey_repo.list_events(session, enrolment.id)
    versions = {event.design_version for event in events} | {enrolment.design_version}
    designs = {
        version: design_publishing.compiled_design(
            design_publishing.get_design_version(
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
    enrolment = enrolment_or_404(session, enrolment_id)
    events, steps, design = replay_log(session, enrolment)
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
