"""Learner-journey repository: enrolments, the append-only event log and snapshots <-> the values
of ``core/journey.py``.

Functions flush but never commit. Appending is optimistic: the event takes the sequence number
the caller read from the snapshot, inside a savepoint, and the snapshot is updated only where its
``event_count`` is still the one read. Two requests of one learner racing each other: one wins,
the other gets ``StaleJourney`` and nothing of it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.engine import DECISION_ADAPTER, Decision
from adaptive_lti.core.events import Event, event_from_dict, event_to_dict
from adaptive_lti.core.journey import Enrolment, Snapshot
from adaptive_lti.core.learner import LearnerState
from adaptive_lti.db.base import as_utc
from adaptive_lti.db.tables import (
    LearnerEnrolment,
    LearnerEvent,
    LearnerSnapshot,
    ResourceLink,
    User,
)


class StaleJourney(Exception):
    """Another request appended to this learner's log first (the page was out of date)."""


class SnapshotOutOfStep(RuntimeError):
    """The snapshot's event count differs from the log's: a bug or a manual edit; the request
    fails (its transaction is rolled back) and the snapshot must be rebuilt from the log."""


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    event: Event
    design_version: int
    occurred_at: datetime
    actor: str | None
    note: str | None


def _enrolment(row: LearnerEnrolment, platform_resource_link_id: str) -> Enrolment:
    return Enrolment(
        id=row.id,
        registration_id=row.registration_id,
        deployment_pk=row.deployment_id,
        context_pk=row.context_id,
        resource_link_pk=row.resource_link_id,
        platform_resource_link_id=platform_resource_link_id,
        user_pk=row.user_id,
        user_sub=row.user_sub,
        binding_id=row.binding_id,
        design_id=row.design_id,
        design_version=row.design_version,
        ags_endpoint=row.ags_endpoint,
        locale=row.locale,
        started_at=as_utc(row.started_at),
        last_launch_at=as_utc(row.last_launch_at),
    )


def _snapshot(row: LearnerSnapshot) -> Snapshot:
    return Snapshot(
        enrolment_id=row.enrolment_id,
        state=LearnerState.from_dict(row.state),
        decision=decision_from_dict(row.decision),
        event_count=row.event_count,
        progress=row.progress,
        grade=row.grade,
        completed=row.completed,
        passed=row.passed,
        flags=tuple(row.flags),
        route=row.route,
        updated_at=as_utc(row.updated_at),
    )


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    dumped: dict[str, Any] = DECISION_ADAPTER.dump_python(decision, mode="json")
    return dumped


def decision_from_dict(data: Mapping[str, Any]) -> Decision:
    return DECISION_ADAPTER.validate_python(data)


def _select_enrolment() -> Any:
    return select(LearnerEnrolment, ResourceLink.resource_link_id).join(
        ResourceLink, ResourceLink.id == LearnerEnrolment.resource_link_id
    )


def get_enrolment(session: Session, enrolment_id: int) -> Enrolment | None:
    row = session.execute(_select_enrolment().where(LearnerEnrolment.id == enrolment_id)).first()
    return None if row is None else _enrolment(row[0], row[1])


def get_enrolment_with_snapshot(
    session: Session, enrolment_id: int
) -> tuple[Enrolment, Snapshot | None] | None:
    """An enrolment and its snapshot in one query (a learner's request reads both)."""
    row = session.execute(
        select(LearnerEnrolment, ResourceLink.resource_link_id, LearnerSnapshot)
        .join(ResourceLink, ResourceLink.id == LearnerEnrolment.resource_link_id)
        .outerjoin(LearnerSnapshot, LearnerSnapshot.enrolment_id == LearnerEnrolment.id)
        .where(LearnerEnrolment.id == enrolment_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    enrolment, link_id, snapshot = row
    return _enrolment(enrolment, link_id), None if snapshot is None else _snapshot(snapshot)


def find_enrolment(
    session: Session, tenant: Tenant, *, resource_link_pk: int, user_pk: int, design_id: str
) -> Enrolment | None:
    """The learner's enrolment on the tenant's design ``design_id`` on this activity."""
    row = session.execute(
        _select_enrolment().where(
            LearnerEnrolment.registration_id == tenant.registration_id,
            LearnerEnrolment.resource_link_id == resource_link_pk,
            LearnerEnrolment.user_id == user_pk,
            LearnerEnrolment.design_id == design_id,
        )
    ).first()
    return None if row is None else _enrolment(row[0], row[1])


def latest_enrolment(session: Session, *, resource_link_pk: int, user_pk: int) -> Enrolment | None:
    """The learner's enrolment on this activity launched most recently (the design it runs)."""
    row = session.execute(
        _select_enrolment()
        .where(
            LearnerEnrolment.resource_link_id == resource_link_pk,
            LearnerEnrolment.user_id == user_pk,
        )
        .order_by(LearnerEnrolment.last_launch_at.desc(), LearnerEnrolment.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _enrolment(row[0], row[1])


def insert_enrolment(
    session: Session,
    *,
    registration_id: int,
    deployment_pk: int,
    context_pk: int | None,
    resource_link_pk: int,
    user_pk: int,
    user_sub: str,
    binding_id: int | None,
    design_id: str,
    design_version: int,
    ags_endpoint: Mapping[str, Any] | None,
    locale: str | None,
    now: datetime,
) -> Enrolment | None:
    """A new enrolment, or None when a concurrent first launch created it first."""
    row = LearnerEnrolment(
        registration_id=registration_id,
        deployment_id=deployment_pk,
        context_id=context_pk,
        resource_link_id=resource_link_pk,
        user_id=user_pk,
        user_sub=user_sub,
        binding_id=binding_id,
        design_id=design_id,
        design_version=design_version,
        ags_endpoint=None if ags_endpoint is None else dict(ags_endpoint),
        locale=locale,
        started_at=now,
        last_launch_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return get_enrolment(session, row.id)


def note_launch(
    session: Session,
    enrolment_id: int,
    *,
    ags_endpoint: Mapping[str, Any] | None,
    locale: str | None,
    now: datetime,
) -> None:
    """The latest launch's AGS claim and locale win (where scores go, how pages are written)."""
    session.execute(
        update(LearnerEnrolment)
        .where(LearnerEnrolment.id == enrolment_id)
        .values(
            ags_endpoint=None if ags_endpoint is None else dict(ags_endpoint),
            locale=locale,
            last_launch_at=now,
        )
    )


def set_design_version(session: Session, enrolment_id: int, version: int) -> None:
    session.execute(
        update(LearnerEnrolment)
        .where(LearnerEnrolment.id == enrolment_id)
        .values(design_version=version)
    )


def get_snapshot(session: Session, enrolment_id: int) -> Snapshot | None:
    row = session.get(LearnerSnapshot, enrolment_id, populate_existing=True)
    return None if row is None else _snapshot(row)


@dataclass(frozen=True)
class SnapshotValues:
    state: LearnerState
    decision: Decision
    progress: float
    completed: bool
    passed: bool | None


def _snapshot_columns(values: SnapshotValues, event_count: int, now: datetime) -> dict[str, Any]:
    decision = values.decision
    activity = getattr(decision, "activity", None)
    return {
        "state": values.state.to_dict(),
        "decision": decision_to_dict(decision),
        "decision_kind": decision.kind,
        "activity": activity if isinstance(activity, str) else None,
        "route": " / ".join(decision.routes) or None,
        "flags": list(decision.flags),
        "needs_help": "needs-help" in decision.flags,
        "progress": values.progress,
        "grade": decision.grade,
        "completed": values.completed,
        "passed": values.passed,
        "event_count": event_count,
        "updated_at": now,
    }


def append_event(
    session: Session,
    enrolment_id: int,
    *,
    expected_sequence: int,
    event: Event,
    design_version: int,
    actor: str | None,
    note: str | None,
    decision: Decision,
    snapshot: SnapshotValues,
    now: datetime,
) -> None:
    """Add the event with sequence ``expected_sequence`` and move the snapshot past it.

    Raises ``StaleJourney`` (nothing written) when another request appended that sequence first.
    The event's insert is the lock: ``ON CONFLICT DO NOTHING`` on (enrolment, sequence), so on
    PostgreSQL a second request waits for the first to commit and then finds the sequence taken
    (no savepoint round trips on the path of every answer); SQLite writers are serialised.
    """
    values = {
        "enrolment_id": enrolment_id,
        "sequence": expected_sequence,
        "event_type": event.type,
        "payload": event_to_dict(event),
        "design_version": design_version,
        "occurred_at": event.at,
        "actor": actor,
        "note": note,
        "decision_kind": decision.kind,
        "decision_rule": decision.explanation.rule,
    }
    if not _insert_event(session, values):
        raise StaleJourney
    columns = _snapshot_columns(snapshot, expected_sequence + 1, now)
    if expected_sequence == 0:
        session.add(LearnerSnapshot(enrolment_id=enrolment_id, **columns))
        session.flush()
        return
    result = session.execute(
        update(LearnerSnapshot)
        .where(
            LearnerSnapshot.enrolment_id == enrolment_id,
            LearnerSnapshot.event_count == expected_sequence,
        )
        .values(**columns)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # The event went in but the snapshot is not where the log is: never commit that.
        raise SnapshotOutOfStep(
            f"the snapshot of enrolment {enrolment_id} is not at event {expected_sequence}; "
            "rebuild it from the log (services.journey.reading.rebuild_snapshot)"
        )


def _insert_event(session: Session, values: dict[str, Any]) -> bool:
    """Insert the event unless its (enrolment, sequence) is taken; True when inserted."""
    dialect = session.get_bind().dialect.name
    if dialect in {"postgresql", "sqlite"}:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(LearnerEvent)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["enrolment_id", "sequence"])
            .returning(LearnerEvent.id)
        )
        return session.execute(statement).first() is not None
    try:
        with session.begin_nested():
            session.add(LearnerEvent(**values))
    except IntegrityError:
        return False
    return True


def replace_snapshot(
    session: Session, enrolment_id: int, snapshot: SnapshotValues, event_count: int, now: datetime
) -> None:
    """Write the snapshot rebuilt from the log (``services.journey.reading.rebuild_snapshot``)."""
    columns = _snapshot_columns(snapshot, event_count, now)
    existing = session.get(LearnerSnapshot, enrolment_id)
    if existing is None:
        session.add(LearnerSnapshot(enrolment_id=enrolment_id, **columns))
    else:
        for name, value in columns.items():
            setattr(existing, name, value)
    session.flush()


def list_events(session: Session, enrolment_id: int) -> list[StoredEvent]:
    rows = session.scalars(
        select(LearnerEvent)
        .where(LearnerEvent.enrolment_id == enrolment_id)
        .order_by(LearnerEvent.sequence)
    ).all()
    return [
        StoredEvent(
            sequence=row.sequence,
            event=event_from_dict(row.payload),
            design_version=row.design_version,
            occurred_at=as_utc(row.occurred_at),
            actor=row.actor,
            note=row.note,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class EnrolmentRow:
    enrolment: Enrolment
    snapshot: Snapshot | None
    learner_name: str


def _learner_name(user: User) -> str:
    if user.name:
        return user.name
    parts = [part for part in (user.given_name, user.family_name) if part]
    if parts:
        return " ".join(parts)
    return user.email or f"User {user.subject}"


def list_enrolments(
    session: Session,
    tenant: Tenant,
    *,
    resource_link_pk: int | None = None,
    context_pk: int | None = None,
) -> list[EnrolmentRow]:
    """The tenant's enrolments of an activity or of a course, with their snapshots, by learner
    name."""
    query = (
        select(LearnerEnrolment, ResourceLink.resource_link_id, User, LearnerSnapshot)
        .join(ResourceLink, ResourceLink.id == LearnerEnrolment.resource_link_id)
        .join(User, User.id == LearnerEnrolment.user_id)
        .outerjoin(LearnerSnapshot, LearnerSnapshot.enrolment_id == LearnerEnrolment.id)
        .where(LearnerEnrolment.registration_id == tenant.registration_id)
    )
    if resource_link_pk is not None:
        query = query.where(LearnerEnrolment.resource_link_id == resource_link_pk)
    if context_pk is not None:
        query = query.where(LearnerEnrolment.context_id == context_pk)
    rows = session.execute(query.order_by(LearnerEnrolment.id)).all()
    result = [
        EnrolmentRow(
            enrolment=_enrolment(enrolment, link_id),
            snapshot=None if snapshot is None else _snapshot(snapshot),
            learner_name=_learner_name(user),
        )
        for enrolment, link_id, user, snapshot in rows
    ]
    return sorted(result, key=lambda row: (row.learner_name.lower(), row.enrolment.id))


def learner_name(session: Session, user_pk: int) -> str:
    user = session.get(User, user_pk)
    return "Unknown learner" if user is None else _learner_name(user)


@dataclass(frozen=True)
class EarlierRecord:
    """What the tool recorded for the same person in another enrolment (another course or
    activity of the same platform): for attributes whose source is ``outcome`` or ``intake``."""

    design_id: str
    state: LearnerState
    grade: float | None
    completed: bool
    passed: bool | None


def earlier_records(
    session: Session, tenant: Tenant, *, user_pk: int, except_enrolment: int
) -> list[EarlierRecord]:
    """The person's other enrolments in the tenant (users are per platform registration),
    newest first."""
    rows = session.execute(
        select(LearnerEnrolment.design_id, LearnerSnapshot)
        .join(LearnerSnapshot, LearnerSnapshot.enrolment_id == LearnerEnrolment.id)
        .where(
            LearnerEnrolment.registration_id == tenant.registration_id,
            LearnerEnrolment.user_id == user_pk,
            LearnerEnrolment.id != except_enrolment,
        )
        .order_by(LearnerSnapshot.updated_at.desc())
    ).all()
    return [
        EarlierRecord(
            design_id=design_id,
            state=LearnerState.from_dict(snapshot.state),
            grade=snapshot.grade,
            completed=snapshot.completed,
            passed=snapshot.passed,
        )
        for design_id, snapshot in rows
    ]
