"""Access and erasure requests for one platform user (GDPR articles 15 and 17).

``export_learner`` returns everything the tool stores about a person of one registration;
``forget_plan`` says what erasing them would delete, and ``forget_learner`` deletes it. Each
records itself in the audit record, in the caller's transaction: the export and its audit entry
commit together, and an erasure either happens whole, with its entry, or not at all.

The audit record keeps the person's platform id (``sub``, an opaque identifier the platform
gave), never their name, so that it can show an erasure happened after the erasure.
Services flush but never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from adaptive_lti.core.errors import NotFoundError
from adaptive_lti.db import audit_repo, privacy_repo, registrations_repo
from adaptive_lti.db.audit_repo import Actor, AuditAction
from adaptive_lti.db.privacy_repo import LearnerRows

UNDELIVERED = ("pending", "failed")


@dataclass(frozen=True)
class ForgetPlan:
    """What erasing a person deletes: counts per table, and the scores the platform never got."""

    registration_id: int
    subject: str
    counts: dict[str, int]
    undelivered_scores: tuple[dict[str, Any], ...]


def _rows(session: Session, registration_id: int, subject: str) -> LearnerRows:
    registration = registrations_repo.get_registration(session, registration_id)
    rows = privacy_repo.learner_rows(session, registration_id, subject)
    if not rows.found:
        raise NotFoundError(
            f"Platform {registration_id} ({registration.issuer}) has no user {subject!r}: the "
            "tool stores nothing about them.",
            hint="Check the user's id (the 'sub' the platform sends, e.g. Moodle's user id) and "
            "the platform id ('adaptive-lti platform list').",
        )
    return rows


def export_learner(
    session: Session, registration_id: int, subject: str, actor: Actor, *, now: datetime
) -> dict[str, Any]:
    """Everything stored about ``subject`` of ``registration_id``, as JSON-ready values."""
    rows = _rows(session, registration_id, subject)
    intake = [
        {
            "enrolment_id": event["enrolment_id"],
            "activity": event["payload"].get("activity"),
            "answers": event["payload"].get("answers", {}),
            "occurred_at": event["occurred_at"],
        }
        for event in rows.events
        if event["event_type"] == "intake_answered"
    ]
    exported: dict[str, Any] = {
        "registration_id": registration_id,
        "user_sub": subject,
        "exported_at": now.isoformat(),
        "user": rows.user,
        "enrolments": rows.enrolments,
        "events": rows.events,
        "snapshots": rows.snapshots,
        "intake_answers": intake,
        "scores": {
            "queued": [s for s in rows.scores if s["status"] == "pending"],
            "delivered": [s for s in rows.scores if s["status"] == "delivered"],
            "failed": [s for s in rows.scores if s["status"] == "failed"],
        },
        "roster": rows.roster,
        "launches": rows.launches,
        # Their own actions as an instructor (the audit record keeps these after an erasure).
        "actions": [
            entry.to_dict()
            for entry in audit_repo.entries_by_actor(session, registration_id, subject)
        ],
    }
    audit_repo.append(
        session,
        actor,
        AuditAction.learner_export,
        registration_id,
        f"user {subject}",
        {"counts": rows.counts()},
        now=now,
    )
    return exported


def _plan(registration_id: int, subject: str, rows: LearnerRows) -> ForgetPlan:
    return ForgetPlan(
        registration_id=registration_id,
        subject=subject,
        counts=rows.counts(),
        undelivered_scores=tuple(
            {
                "id": score["id"],
                "line_item": score["line_item_label"],
                "status": score["status"],
                "score_given": score["payload"].get("scoreGiven"),
                "score_maximum": score["payload"].get("scoreMaximum"),
                "created_at": score["created_at"],
            }
            for score in rows.scores
            if score["status"] in UNDELIVERED
        ),
    )


def forget_plan(session: Session, registration_id: int, subject: str) -> ForgetPlan:
    """What ``forget_learner`` would delete; reads only."""
    return _plan(registration_id, subject, _rows(session, registration_id, subject))


def forget_learner(
    session: Session, registration_id: int, subject: str, actor: Actor, *, now: datetime
) -> ForgetPlan:
    """Delete every row about ``subject`` of ``registration_id`` and record it; returns what
    was deleted (the same as ``forget_plan`` read in this transaction)."""
    rows = _rows(session, registration_id, subject)
    plan = _plan(registration_id, subject, rows)
    privacy_repo.delete_learner(session, rows)
    audit_repo.append(
        session,
        actor,
        AuditAction.learner_forget,
        registration_id,
        f"user {subject}",
        {
            "deleted": plan.counts,
            "undelivered_scores": [score["id"] for score in plan.undelivered_scores],
        },
        now=now,
    )
    return plan
