"""Recording one event of a learner's journey (an answer, a completion, a choice, an override):
``record`` folds it into the learner's state and asks the engine for the next decision; the
event, the new snapshot and any score for the platform's gradebook are written in the caller's
transaction, and the decision comes back at once. A page submitted from a stale view is refused
(``StalePageError``), so two tabs cannot both move the learner.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.engine import Decision, DesignCompleted, decide, start
from adaptive_lti.core.events import Event
from adaptive_lti.core.grading import (
    SCOPE_SCORE,
    ActivityProgress,
    GradingProgress,
    LineItemSpec,
    Score,
)
from adaptive_lti.core.journey import Enrolment, JourneyView, Snapshot, outline
from adaptive_lti.core.learner import LearnerState
from adaptive_lti.db import journey_repo
from adaptive_lti.db.journey_repo import SnapshotValues, StaleJourney
from adaptive_lti.metrics import ROUTING_DECISIONS
from adaptive_lti.services import grades as grade_service
from adaptive_lti.services.journey.reading import compiled_design_of, stale_page

# The gradebook column's maximum: Moodle's default for a new grade item. The design's grade
# (0..1) is sent as a share of it; platforms rescale to their own maximum (AGS 2.0 §3.4.3).
SCORE_MAXIMUM = 100.0


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
        design = compiled_design_of(enrolment, session)
        state, snapshot = _state_and_count(session, enrolment, design)
        count = 0 if snapshot is None else snapshot.event_count
        old_grade = None if snapshot is None else snapshot.grade
        was_completed = snapshot is not None and snapshot.completed
    if expected_sequence is not None and expected_sequence != count:
        raise stale_page()
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
        raise stale_page() from None
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
