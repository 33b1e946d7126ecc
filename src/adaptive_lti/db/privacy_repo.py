"""One platform user's rows, read in full (access requests) or deleted (erasure requests).

A person is named as the platform knows them: a registration (the tenant) and their ``sub``.
Their rows are the ``lti_user`` row, their launches, their enrolments with the events and
snapshots of each, the scores queued for them, and the roster rows that list them (a course member
who never launched has roster rows and no user row). Callers own the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from adaptive_lti.db.grades_repo import as_utc
from adaptive_lti.db.tables import (
    Base,
    Launch,
    LearnerEnrolment,
    LearnerEvent,
    LearnerSnapshot,
    LineItem,
    RosterMember,
    ScoreOutbox,
    User,
)


def _plain(row: Base) -> dict[str, Any]:
    """A row as a JSON-ready dict of its columns (times in UTC, ISO 8601)."""
    values: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        values[column.key] = as_utc(value).isoformat() if isinstance(value, datetime) else value
    return values


@dataclass(frozen=True)
class LearnerRows:
    """Everything stored about one platform user, table by table, as plain values."""

    user: dict[str, Any] | None
    launches: list[dict[str, Any]]
    enrolments: list[dict[str, Any]]
    events: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    roster: list[dict[str, Any]]

    @property
    def found(self) -> bool:
        return self.user is not None or bool(self.roster) or bool(self.scores)

    def counts(self) -> dict[str, int]:
        return {
            "users": 0 if self.user is None else 1,
            "launches": len(self.launches),
            "enrolments": len(self.enrolments),
            "events": len(self.events),
            "snapshots": len(self.snapshots),
            "scores": len(self.scores),
            "roster_rows": len(self.roster),
        }


def learner_rows(session: Session, registration_id: int, subject: str) -> LearnerRows:
    user = session.scalars(
        select(User).where(User.registration_id == registration_id, User.subject == subject)
    ).one_or_none()
    launches: list[Launch] = []
    enrolments: list[LearnerEnrolment] = []
    events: list[LearnerEvent] = []
    snapshots: list[LearnerSnapshot] = []
    if user is not None:
        launches = list(
            session.scalars(select(Launch).where(Launch.user_id == user.id).order_by(Launch.id))
        )
        enrolments = list(
            session.scalars(
                select(LearnerEnrolment)
                .where(LearnerEnrolment.user_id == user.id)
                .order_by(LearnerEnrolment.id)
            )
        )
        enrolment_ids = [enrolment.id for enrolment in enrolments]
        events = list(
            session.scalars(
                select(LearnerEvent)
                .where(LearnerEvent.enrolment_id.in_(enrolment_ids))
                .order_by(LearnerEvent.enrolment_id, LearnerEvent.sequence)
            )
        )
        snapshots = list(
            session.scalars(
                select(LearnerSnapshot)
                .where(LearnerSnapshot.enrolment_id.in_(enrolment_ids))
                .order_by(LearnerSnapshot.enrolment_id)
            )
        )
    scores = session.execute(
        select(ScoreOutbox, LineItem.label)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .where(ScoreOutbox.registration_id == registration_id, ScoreOutbox.user_sub == subject)
        .order_by(ScoreOutbox.id)
    ).all()
    roster = session.scalars(
        select(RosterMember)
        .where(RosterMember.registration_id == registration_id, RosterMember.user_sub == subject)
        .order_by(RosterMember.id)
    )
    return LearnerRows(
        user=None if user is None else _plain(user),
        launches=[_plain(row) for row in launches],
        enrolments=[_plain(row) for row in enrolments],
        events=[_plain(row) for row in events],
        snapshots=[_plain(row) for row in snapshots],
        scores=[{**_plain(score), "line_item_label": label} for score, label in scores],
        roster=[_plain(row) for row in roster],
    )


def delete_learner(session: Session, rows: LearnerRows) -> None:
    """Delete the rows ``learner_rows`` read (children first, so no cascade is relied on)."""
    enrolment_ids = [row["id"] for row in rows.enrolments]
    if enrolment_ids:
        session.execute(
            delete(LearnerSnapshot).where(LearnerSnapshot.enrolment_id.in_(enrolment_ids))
        )
        session.execute(delete(LearnerEvent).where(LearnerEvent.enrolment_id.in_(enrolment_ids)))
        session.execute(delete(LearnerEnrolment).where(LearnerEnrolment.id.in_(enrolment_ids)))
    if rows.launches:
        session.execute(delete(Launch).where(Launch.id.in_([row["id"] for row in rows.launches])))
    if rows.scores:
        session.execute(
            delete(ScoreOutbox).where(ScoreOutbox.id.in_([row["id"] for row in rows.scores]))
        )
    if rows.roster:
        session.execute(
            delete(RosterMember).where(RosterMember.id.in_([row["id"] for row in rows.roster]))
        )
    if rows.user is not None:
        session.execute(delete(User).where(User.id == rows.user["id"]))
    session.flush()
