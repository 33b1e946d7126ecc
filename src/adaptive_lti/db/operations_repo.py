"""What the operator sees: the outbox's backlog (for /metrics), refused launches counted per hour,
and the registrations summary of ``adaptive-lti status``.

These read across tenants on purpose: they are the administrator's view of the whole tool, and
they return counts, never a tenant's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adaptive_lti.core.grading import OutboxStatus
from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db.tables import Deployment, PlatformRegistration, RefusalCount, ScoreOutbox

# Refusal counts older than this are deleted as new ones are recorded.
REFUSAL_RETENTION = timedelta(days=7)
MAX_REFUSAL_MESSAGE = 300


def _as_utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; every time the tool stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int
    failed: int
    # When the oldest score still waiting was queued (None: nothing waits).
    oldest_pending_at: datetime | None

    def oldest_pending_age_seconds(self, now: datetime) -> float:
        if self.oldest_pending_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_pending_at).total_seconds())


def outbox_backlog(session: Session) -> OutboxBacklog:
    """Pending and failed scores and the oldest pending one, in one query."""
    pending = ScoreOutbox.status == OutboxStatus.pending.value
    row = session.execute(
        select(
            func.count().filter(pending),
            func.count().filter(ScoreOutbox.status == OutboxStatus.failed.value),
            func.min(ScoreOutbox.created_at).filter(pending),
        ).where(ScoreOutbox.status.in_([OutboxStatus.pending.value, OutboxStatus.failed.value]))
    ).one()
    oldest = row[2]
    return OutboxBacklog(
        pending=int(row[0] or 0),
        failed=int(row[1] or 0),
        oldest_pending_at=None if oldest is None else _as_utc(oldest),
    )


def _upsert(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT (SQLite and PostgreSQL spell it the same way)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(RefusalCount)
    return sqlite.insert(RefusalCount)


@dataclass(frozen=True)
class RefusalBatch:
    """Refusals of one step and check counted since the last write, and the last of them."""

    step: str
    check: str
    count: int
    last_message: str
    last_at: datetime


def record_refusals(session: Session, batches: list[RefusalBatch]) -> None:
    """Add each batch to its hour's row, and prune the rows past the retention."""
    newest = None
    for batch in batches:
        last_at = _as_utc(batch.last_at)
        hour = last_at.replace(minute=0, second=0, microsecond=0)
        newest = hour if newest is None else max(newest, hour)
        insert = _upsert(session).values(
            hour=hour,
            step=batch.step[:16],
            check=batch.check[:64],
            count=batch.count,
            last_message=batch.last_message[:MAX_REFUSAL_MESSAGE],
            last_at=last_at,
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["hour", "step", "check"],
                set_={
                    "count": RefusalCount.count + insert.excluded.count,
                    "last_message": insert.excluded.last_message,
                    "last_at": insert.excluded.last_at,
                },
            )
        )
    if newest is not None:
        session.execute(delete(RefusalCount).where(RefusalCount.hour < newest - REFUSAL_RETENTION))


def record_refusal(session: Session, step: str, check: str, message: str, now: datetime) -> None:
    """Count one refusal (``record_refusals`` with one)."""
    record_refusals(session, [RefusalBatch(step, check, 1, message, now)])


@dataclass(frozen=True)
class RefusalSummary:
    step: str
    check: str
    count: int
    last_at: datetime
    last_message: str


def recent_refusals(session: Session, since: datetime) -> list[RefusalSummary]:
    """Refusals since ``since`` (to the hour) by step and check, the most frequent first."""
    since_hour = _as_utc(since).replace(minute=0, second=0, microsecond=0)
    rows = session.execute(
        select(
            RefusalCount.step,
            RefusalCount.check,
            func.sum(RefusalCount.count),
            func.max(RefusalCount.last_at),
        )
        .where(RefusalCount.hour >= since_hour)
        .group_by(RefusalCount.step, RefusalCount.check)
    ).all()
    summaries = []
    for step, check, count, last_at in rows:
        last_message = session.scalar(
            select(RefusalCount.last_message)
            .where(RefusalCount.step == step, RefusalCount.check == check)
            .order_by(RefusalCount.last_at.desc())
            .limit(1)
        )
        summaries.append(
            RefusalSummary(str(step), str(check), int(count), _as_utc(last_at), last_message or "")
        )
    return sorted(summaries, key=lambda item: (-item.count, item.step, item.check))


@dataclass(frozen=True)
class RegistrationsSummary:
    active: int
    awaiting_approval: int
    deployments_active: int
    deployments_inactive: int


def registrations_summary(session: Session) -> RegistrationsSummary:
    statuses = dict(
        session.execute(
            select(PlatformRegistration.status, func.count()).group_by(PlatformRegistration.status)
        ).all()
    )
    deployments = dict(
        session.execute(select(Deployment.active, func.count()).group_by(Deployment.active)).all()
    )
    return RegistrationsSummary(
        active=int(statuses.get(RegistrationStatus.active.value, 0)),
        awaiting_approval=int(statuses.get(RegistrationStatus.awaiting_approval.value, 0)),
        deployments_active=int(deployments.get(True, 0)),
        deployments_inactive=int(deployments.get(False, 0)),
    )
