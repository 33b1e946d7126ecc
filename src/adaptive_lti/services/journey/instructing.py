"""What an instructor does with a learner's journey: list the enrolments of an activity, read why
each learner was routed as they were (``route_reasons``, and ``decision_trace``: every event
with the decision the engine made after it), and move a learner with ``override`` or ``reset``,
which are events too (who did it, and why).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.errors import ConflictError
from adaptive_lti.core.events import Overridden, Reset
from adaptive_lti.core.journey import (
    DecisionTrace,
    EnrolmentSummary,
    JourneyView,
    TraceItem,
)
from adaptive_lti.db import journey_repo
from adaptive_lti.services.journey.reading import enrolment_or_404, replay_log
from adaptive_lti.services.journey.recording import record


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
    _events, steps, _design_now = replay_log(session, view.enrolment)
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
    enrolment = enrolment_or_404(session, enrolment_id)
    events, steps, _design_now = replay_log(session, enrolment)
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
    enrolment = enrolment_or_404(session, enrolment_id)
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
    enrolment = enrolment_or_404(session, enrolment_id)
    return record(
        session, enrolment, Reset(at=now, by=actor, reason=reason.strip()), now, actor=actor
    )
