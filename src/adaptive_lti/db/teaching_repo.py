"""What the instructor's pages read: the people of an activity and where each one is.

One activity (resource link) gathers people from three places, matched by the platform's user id
(the launch's ``sub``, NRPS's ``user_id``): the course roster as last synced (people who may never
have launched), the launches of the activity, and the learners' enrolments with their snapshot.
The latest score queued for each person on the activity's gradebook columns comes from the
outbox, with its delivery status. Every function here is a handful of set-based queries, never a
query per person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.db.base import as_utc
from adaptive_lti.db.tables import (
    Context,
    Launch,
    LearnerEnrolment,
    LearnerEvent,
    LearnerSnapshot,
    LineItem,
    ResourceLink,
    RosterMember,
    ScoreOutbox,
    User,
)


@dataclass(frozen=True)
class ActivityPlace:
    """The course and activity an instructor's session names."""

    context_pk: int | None
    context_id: str | None
    context_title: str | None
    context_label: str | None
    resource_link_pk: int | None
    resource_link_id: str | None
    resource_link_title: str | None


@dataclass(frozen=True)
class LatestScore:
    """The newest score queued for a person on the activity's gradebook columns."""

    score_given: float | None
    score_maximum: float | None
    status: str  # "pending", "delivered" or "failed"
    attempts: int
    last_error: str | None
    queued_at: datetime
    delivered_at: datetime | None


@dataclass
class PersonRecord:
    """One person of the activity, as the three sources know them (any may be missing)."""

    user_sub: str
    name: str | None = None
    email: str | None = None
    roles_short: tuple[str, ...] = ()
    roster_status: str | None = None  # None: not in the synced roster
    user_pk: int | None = None
    last_launch_at: datetime | None = None
    launch_count: int = 0
    enrolment_id: int | None = None
    design_id: str | None = None
    design_version: int | None = None
    started_at: datetime | None = None
    snapshot: dict[str, Any] | None = None
    latest_score: LatestScore | None = None


def activity_place(
    session: Session, context_pk: int | None, resource_link_pk: int | None
) -> ActivityPlace:
    context = session.get(Context, context_pk) if context_pk is not None else None
    link = session.get(ResourceLink, resource_link_pk) if resource_link_pk is not None else None
    return ActivityPlace(
        context_pk=context_pk if context is not None else None,
        context_id=context.context_id if context else None,
        context_title=context.title if context else None,
        context_label=context.label if context else None,
        resource_link_pk=resource_link_pk if link is not None else None,
        resource_link_id=link.resource_link_id if link else None,
        resource_link_title=link.title if link else None,
    )


def user_display_name(session: Session, user_pk: int | None) -> str | None:
    """The name an instructor's actions are recorded under ("Irene Ibsen (user 10)")."""
    if user_pk is None:
        return None
    user = session.get(User, user_pk)
    if user is None:
        return None
    name = user.name or " ".join(p for p in (user.given_name, user.family_name) if p)
    return f"{name or 'User'} (user {user.subject})"


def _full_name(name: str | None, given: str | None, family: str | None) -> str | None:
    return name or (" ".join(part for part in (given, family) if part) or None)


def _snapshot_dict(row: LearnerSnapshot) -> dict[str, Any]:
    return {
        "state": row.state,
        "decision": row.decision,
        "decision_kind": row.decision_kind,
        "activity": row.activity,
        "route": row.route,
        "flags": list(row.flags or []),
        "needs_help": row.needs_help,
        "progress": row.progress,
        "grade": row.grade,
        "completed": row.completed,
        "passed": row.passed,
        "event_count": row.event_count,
        "updated_at": as_utc(row.updated_at),
    }


def people_of_activity(
    session: Session, tenant: Tenant, context_pk: int | None, resource_link_pk: int | None
) -> list[PersonRecord]:
    """Everyone the roster, the launches or the enrolments of the tenant know for this
    activity."""
    people: dict[str, PersonRecord] = {}

    def person(sub: str) -> PersonRecord:
        found = people.get(sub)
        if found is None:
            found = people[sub] = PersonRecord(user_sub=sub)
        return found

    if context_pk is not None:
        for member in session.scalars(
            select(RosterMember).where(
                RosterMember.registration_id == tenant.registration_id,
                RosterMember.context_id == context_pk,
            )
        ):
            record = person(member.user_sub)
            record.name = _full_name(member.name, member.given_name, member.family_name)
            record.email = member.email
            record.roles_short = tuple(member.roles_short or ())
            record.roster_status = member.status

    if resource_link_pk is None:
        return list(people.values())

    launches = (
        select(
            Launch.user_id,
            func.count().label("launches"),
            func.max(Launch.launched_at).label("last_launch"),
            func.max(Launch.id).label("last_launch_id"),
        )
        .where(
            Launch.registration_id == tenant.registration_id,
            Launch.resource_link_id == resource_link_pk,
            Launch.user_id.is_not(None),
        )
        .group_by(Launch.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User, launches.c.launches, launches.c.last_launch, Launch.roles_short)
        .join(launches, launches.c.user_id == User.id)
        .join(Launch, Launch.id == launches.c.last_launch_id)
    )
    for user, count, last_launch, roles_short in rows:
        record = person(user.subject)
        record.user_pk = user.id
        record.name = _full_name(user.name, user.given_name, user.family_name) or record.name
        record.email = user.email or record.email
        if not record.roles_short:
            record.roles_short = tuple(roles_short or ())
        record.launch_count = int(count)
        record.last_launch_at = as_utc(last_launch)

    enrolments = session.execute(
        select(LearnerEnrolment, LearnerSnapshot, User)
        .join(User, User.id == LearnerEnrolment.user_id)
        .outerjoin(LearnerSnapshot, LearnerSnapshot.enrolment_id == LearnerEnrolment.id)
        .where(
            LearnerEnrolment.registration_id == tenant.registration_id,
            LearnerEnrolment.resource_link_id == resource_link_pk,
        )
        .order_by(LearnerEnrolment.last_launch_at)
    )
    for enrolment, snapshot, user in enrolments:
        record = person(enrolment.user_sub)
        record.user_pk = user.id
        record.name = record.name or _full_name(user.name, user.given_name, user.family_name)
        # The latest enrolment wins (an activity rebound to another design starts a new one).
        record.enrolment_id = enrolment.id
        record.design_id = enrolment.design_id
        record.design_version = enrolment.design_version
        record.started_at = as_utc(enrolment.started_at)
        record.snapshot = _snapshot_dict(snapshot) if snapshot is not None else None

    for sub, score in latest_scores(session, resource_link_pk).items():
        if sub in people:
            people[sub].latest_score = score
    return list(people.values())


def latest_scores(session: Session, resource_link_pk: int) -> dict[str, LatestScore]:
    """The newest queued score per person on the activity's gradebook columns."""
    newest = (
        select(func.max(ScoreOutbox.id).label("id"))
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .where(LineItem.resource_link_id == resource_link_pk)
        .group_by(ScoreOutbox.user_sub)
        .subquery()
    )
    scores: dict[str, LatestScore] = {}
    for row in session.scalars(select(ScoreOutbox).join(newest, newest.c.id == ScoreOutbox.id)):
        payload = row.payload or {}
        given, maximum = payload.get("scoreGiven"), payload.get("scoreMaximum")
        scores[row.user_sub] = LatestScore(
            score_given=float(given) if isinstance(given, int | float) else None,
            score_maximum=float(maximum) if isinstance(maximum, int | float) else None,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            queued_at=as_utc(row.created_at),
            delivered_at=as_utc(row.delivered_at) if row.delivered_at is not None else None,
        )
    return scores


@dataclass(frozen=True)
class EnrolmentRecord:
    """One learner's enrolment on an activity, for the instructor's learner page."""

    enrolment_id: int
    resource_link_pk: int
    context_pk: int | None
    user_pk: int
    user_sub: str
    name: str
    email: str | None
    design_id: str
    design_version: int
    started_at: datetime
    last_launch_at: datetime
    snapshot: dict[str, Any] | None


def find_enrolment(session: Session, tenant: Tenant, enrolment_id: int) -> EnrolmentRecord | None:
    """One of the tenant's enrolments (None for another tenant's, as for none at all)."""
    row = session.execute(
        select(LearnerEnrolment, User, LearnerSnapshot)
        .join(User, User.id == LearnerEnrolment.user_id)
        .outerjoin(LearnerSnapshot, LearnerSnapshot.enrolment_id == LearnerEnrolment.id)
        .where(
            LearnerEnrolment.registration_id == tenant.registration_id,
            LearnerEnrolment.id == enrolment_id,
        )
    ).one_or_none()
    if row is None:
        return None
    enrolment, user, snapshot = row
    return EnrolmentRecord(
        enrolment_id=enrolment.id,
        resource_link_pk=enrolment.resource_link_id,
        context_pk=enrolment.context_id,
        user_pk=user.id,
        user_sub=enrolment.user_sub,
        name=_full_name(user.name, user.given_name, user.family_name) or f"User {user.subject}",
        email=user.email,
        design_id=enrolment.design_id,
        design_version=enrolment.design_version,
        started_at=as_utc(enrolment.started_at),
        last_launch_at=as_utc(enrolment.last_launch_at),
        snapshot=_snapshot_dict(snapshot) if snapshot is not None else None,
    )


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    event_type: str
    payload: dict[str, Any]
    design_version: int
    occurred_at: datetime
    actor: str | None
    decision_kind: str
    decision_rule: str


def events_of(session: Session, enrolment_id: int) -> list[StoredEvent]:
    """A learner's log, oldest first."""
    return [
        StoredEvent(
            sequence=row.sequence,
            event_type=row.event_type,
            payload=dict(row.payload),
            design_version=row.design_version,
            occurred_at=as_utc(row.occurred_at),
            actor=row.actor,
            decision_kind=row.decision_kind,
            decision_rule=row.decision_rule,
        )
        for row in session.scalars(
            select(LearnerEvent)
            .where(LearnerEvent.enrolment_id == enrolment_id)
            .order_by(LearnerEvent.sequence)
        )
    ]


def latest_launch_with_memberships(
    session: Session, context_pk: int, registration_id: int
) -> str | None:
    """The NRPS ``context_memberships_url`` of the course's newest launch that carried one."""
    for nrps in session.scalars(
        select(Launch.nrps)
        .where(
            Launch.context_id == context_pk,
            Launch.registration_id == registration_id,
            Launch.nrps.is_not(None),
        )
        .order_by(Launch.id.desc())
        .limit(5)
    ):
        url = (nrps or {}).get("context_memberships_url")
        if isinstance(url, str) and url:
            return url
    return None
