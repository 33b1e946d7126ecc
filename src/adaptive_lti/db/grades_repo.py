"""Rows of grade delivery as values: line items, the score outbox, cached service tokens.

Callers own the transaction: these functions flush, never commit. The outbox claim is the one
place that differs by database: PostgreSQL picks the next due row with ``FOR UPDATE SKIP
LOCKED`` so concurrent workers pass each other by; SQLite, which has one writer at a time,
claims with a single conditional ``UPDATE``. Either way a row is claimed by one worker only,
until its claim expires (a worker that died mid-delivery), and a line item that is not on the
platform yet is created by one worker only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from adaptive_lti.core.grading import (
    LineItemSpec,
    OutboxEntry,
    OutboxStatus,
    Score,
)
from adaptive_lti.db.tables import LineItem, ScoreOutbox, ServiceAccessToken


def as_utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; every time the tool stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


@dataclass(frozen=True)
class StoredLineItem:
    id: int
    registration_id: int
    spec: LineItemSpec


@dataclass(frozen=True)
class ClaimedScore:
    """An outbox row this worker holds until ``claim_expires_at``."""

    outbox_id: int
    claim_token: str
    registration_id: int
    line_item: StoredLineItem
    payload: dict[str, Any]
    user_id: str
    # Attempts made so far, this one included.
    attempts: int


def _insert_unless_present(
    session: Session, table: type[Any], values: dict[str, Any], conflict: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: a row another transaction inserted first wins.

    Not a savepoint: on SQLite, pysqlite opens transactions lazily, so a SAVEPOINT before the
    first write would start (and its RELEASE commit) a transaction of its own, behind the
    caller's back.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return session.execute(statement.returning(table.id)).scalar_one_or_none() is not None


# --- line items ---------------------------------------------------------------------------


def _line_item_value(row: LineItem) -> StoredLineItem:
    return StoredLineItem(
        id=row.id,
        registration_id=row.registration_id,
        spec=LineItemSpec(
            label=row.label,
            score_maximum=row.score_maximum,
            granted_scopes=tuple(row.granted_scopes),
            lineitem_url=row.lineitem_url,
            lineitems_url=row.lineitems_url,
            resource_id=row.resource_id,
            tag=row.tag,
            platform_resource_link_id=row.platform_resource_link_id,
        ),
    )


def _find_line_item(session: Session, registration_id: int, binding_key: str) -> LineItem | None:
    return session.scalars(
        select(LineItem).where(
            LineItem.registration_id == registration_id, LineItem.binding_key == binding_key
        )
    ).one_or_none()


def get_or_create_line_item(
    session: Session,
    registration_id: int,
    spec: LineItemSpec,
    now: datetime,
    *,
    resource_link_id: int | None = None,
) -> StoredLineItem:
    """The local record of a line item, created on first use. Newly granted scopes are kept."""
    binding_key = spec.binding_key()
    row = _find_line_item(session, registration_id, binding_key)
    if row is None:
        _insert_unless_present(
            session,
            LineItem,
            {
                "registration_id": registration_id,
                "resource_link_id": resource_link_id,
                "binding_key": binding_key,
                "lineitems_url": spec.lineitems_url,
                "lineitem_url": spec.lineitem_url,
                "label": spec.label,
                "score_maximum": spec.score_maximum,
                "resource_id": spec.resource_id,
                "tag": spec.tag,
                "platform_resource_link_id": spec.platform_resource_link_id,
                "granted_scopes": sorted(spec.granted_scopes),
                "created_at": now,
                "updated_at": now,
            },
            ["registration_id", "binding_key"],
        )
        row = _find_line_item(session, registration_id, binding_key)
        assert row is not None  # inserted now, or by a concurrent transaction first
    elif sorted(spec.granted_scopes) != sorted(row.granted_scopes):
        # The latest launch says what the platform grants now (an admin may have changed it).
        row.granted_scopes = sorted(spec.granted_scopes)
        row.updated_at = now
        session.flush()
    return _line_item_value(row)


def set_line_item_url(
    session: Session, line_item_id: int, lineitem_url: str, now: datetime
) -> None:
    """Remember the URL of a line item found or created on the platform."""
    session.execute(
        update(LineItem)
        .where(LineItem.id == line_item_id)
        .values(lineitem_url=lineitem_url, updated_at=now)
    )


# --- the outbox ----------------------------------------------------------------------------


def _find_score(session: Session, dedupe_key: str) -> ScoreOutbox | None:
    return session.scalars(
        select(ScoreOutbox).where(ScoreOutbox.dedupe_key == dedupe_key)
    ).one_or_none()


def insert_score(
    session: Session,
    registration_id: int,
    line_item_id: int,
    score: Score,
    dedupe_key: str,
    now: datetime,
) -> tuple[int, bool]:
    """Queue a score; (outbox id, True) when new, (id of the earlier row, False) when the same
    dedupe key was queued before."""
    existing = _find_score(session, dedupe_key)
    if existing is not None:
        return existing.id, False
    inserted = _insert_unless_present(
        session,
        ScoreOutbox,
        {
            "registration_id": registration_id,
            "line_item_id": line_item_id,
            "user_sub": score.user_id,
            "payload": score.payload(),
            "status": OutboxStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": as_utc(now),
            "dedupe_key": dedupe_key,
            "created_at": now,
        },
        ["dedupe_key"],
    )
    row = _find_score(session, dedupe_key)
    assert row is not None  # inserted now, or by a concurrent transaction first
    return row.id, inserted


def _due(now: datetime) -> Any:
    return and_(
        ScoreOutbox.status == OutboxStatus.pending.value,
        ScoreOutbox.next_attempt_at <= now,
        or_(ScoreOutbox.claim_expires_at.is_(None), ScoreOutbox.claim_expires_at <= now),
    )


def _creation_claimed(now: datetime, line_item_id: Any, other_than: Any) -> Any:
    """A live claim on another score of the line item: its worker may be creating the item."""
    other = aliased(ScoreOutbox)
    return (
        select(other.id)
        .where(
            other.line_item_id == line_item_id,
            other.id != other_than,
            other.status == OutboxStatus.pending.value,
            other.claim_expires_at > now,
        )
        .exists()
    )


def claim_next_due(
    session: Session, now: datetime, claim_token: str, lease: timedelta
) -> ClaimedScore | None:
    """Claim the oldest due score for this worker, or None when nothing is due.

    ``UPDATE ... WHERE id = (next due id) AND still due RETURNING id``: on PostgreSQL the inner
    select locks the row it picks and skips rows other workers hold (``FOR UPDATE SKIP
    LOCKED``); on SQLite the transaction holds the write lock, so the "still due" test and the
    claim cannot interleave with another worker's.

    A score whose line item is not on the platform yet (no ``lineitem_url``: its first delivery
    creates it) is not claimed while another score of that line item is: two workers would
    each create the item, and the course would get two gradebook columns. On PostgreSQL the
    line item's row is locked for the claim, so two claims for it happen one after the other
    and the second sees the first.
    """
    now = as_utc(now)
    # A plain read first: an idle worker polling an empty outbox takes no write lock (SQLite
    # has one writer for the whole database).
    if session.execute(select(ScoreOutbox.id).where(_due(now)).limit(1)).first() is None:
        return None
    postgres = session.get_bind().dialect.name == "postgresql"
    creating = and_(
        LineItem.lineitem_url.is_(None),
        _creation_claimed(now, ScoreOutbox.line_item_id, ScoreOutbox.id),
    )
    skipped: list[int] = []
    for _ in range(20):
        next_due = (
            select(ScoreOutbox.id, ScoreOutbox.line_item_id, LineItem.lineitem_url)
            .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
            .where(_due(now), ~creating, ScoreOutbox.line_item_id.not_in(skipped))
            .order_by(ScoreOutbox.next_attempt_at, ScoreOutbox.id)
            .limit(1)
        )
        if postgres:
            next_due = next_due.with_for_update(skip_locked=True, of=ScoreOutbox)
        candidate = session.execute(next_due).first()
        if candidate is None:
            return None
        outbox_id, line_item_id, lineitem_url = candidate
        if lineitem_url is None:
            if postgres:
                # Waits for a concurrent claim of the same line item to commit, then sees it.
                # NO KEY UPDATE: scores being queued for the item (their foreign key takes KEY
                # SHARE) do not wait, nor make the claim wait.
                session.execute(
                    select(LineItem.id)
                    .where(LineItem.id == line_item_id)
                    .with_for_update(key_share=True)
                )
            if session.execute(
                select(_creation_claimed(now, line_item_id, outbox_id))
            ).scalar_one():
                skipped.append(line_item_id)
                continue
        claimed_id = session.execute(
            update(ScoreOutbox)
            .where(ScoreOutbox.id == outbox_id, _due(now))
            .values(
                claim_token=claim_token,
                claim_expires_at=now + lease,
                attempts=ScoreOutbox.attempts + 1,
            )
            .returning(ScoreOutbox.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if claimed_id is None:
            return None
        break
    else:
        return None
    row = session.execute(
        select(ScoreOutbox, LineItem)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .where(ScoreOutbox.id == claimed_id)
        .execution_options(populate_existing=True)
    ).one()
    outbox, line_item = row
    return ClaimedScore(
        outbox_id=outbox.id,
        claim_token=claim_token,
        registration_id=outbox.registration_id,
        line_item=_line_item_value(line_item),
        payload=dict(outbox.payload),
        user_id=outbox.user_sub,
        attempts=outbox.attempts,
    )


def _finish(session: Session, claimed: ClaimedScore, **values: Any) -> bool:
    """Record an outcome if this worker still holds the claim; False if it lost it."""
    result = session.execute(
        update(ScoreOutbox)
        .where(
            ScoreOutbox.id == claimed.outbox_id,
            ScoreOutbox.claim_token == claimed.claim_token,
        )
        .values(claim_token=None, claim_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def record_delivered(session: Session, claimed: ClaimedScore, now: datetime) -> bool:
    return _finish(
        session,
        claimed,
        status=OutboxStatus.delivered.value,
        delivered_at=as_utc(now),
        last_error=None,
    )


def newer_score_queued(session: Session, claimed: ClaimedScore) -> bool:
    """True when a score queued after this one, for the same learner and line item, is pending
    or delivered: this one need not be sent."""
    newer = session.execute(
        select(ScoreOutbox.id)
        .where(
            ScoreOutbox.line_item_id == claimed.line_item.id,
            ScoreOutbox.user_sub == claimed.user_id,
            ScoreOutbox.id > claimed.outbox_id,
            ScoreOutbox.status.in_([OutboxStatus.pending.value, OutboxStatus.delivered.value]),
        )
        .limit(1)
    ).first()
    return newer is not None


def record_superseded(session: Session, claimed: ClaimedScore) -> bool:
    return _finish(session, claimed, status=OutboxStatus.superseded.value, last_error=None)


def record_retry(
    session: Session, claimed: ClaimedScore, next_attempt_at: datetime, error: str
) -> bool:
    return _finish(session, claimed, next_attempt_at=as_utc(next_attempt_at), last_error=error)


def record_failed(session: Session, claimed: ClaimedScore, error: str) -> bool:
    return _finish(session, claimed, status=OutboxStatus.failed.value, last_error=error)


def requeue_failed(session: Session, now: datetime, *, registration_id: int | None = None) -> int:
    """Give failed scores a fresh set of attempts (after the cause was fixed). Returns how many."""
    statement = (
        update(ScoreOutbox)
        .where(ScoreOutbox.status == OutboxStatus.failed.value)
        .values(
            status=OutboxStatus.pending.value,
            attempts=0,
            next_attempt_at=as_utc(now),
            claim_token=None,
            claim_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if registration_id is not None:
        statement = statement.where(ScoreOutbox.registration_id == registration_id)
    return int(getattr(session.execute(statement), "rowcount", 0))


def outbox_counts(
    session: Session,
    *,
    registration_id: int | None = None,
    resource_link_id: int | None = None,
) -> dict[str, int]:
    """How many scores are in each status (for one platform, or one activity)."""
    query = select(ScoreOutbox.status, func.count()).group_by(ScoreOutbox.status)
    if registration_id is not None:
        query = query.where(ScoreOutbox.registration_id == registration_id)
    if resource_link_id is not None:
        query = query.join(LineItem, LineItem.id == ScoreOutbox.line_item_id).where(
            LineItem.resource_link_id == resource_link_id
        )
    counts = {status.value: 0 for status in OutboxStatus}
    for status, count in session.execute(query):
        counts[str(status)] = int(count)
    return counts


def list_outbox(
    session: Session,
    *,
    status: OutboxStatus | None = None,
    registration_id: int | None = None,
    user_id: str | None = None,
    resource_link_id: int | None = None,
    limit: int = 50,
) -> list[OutboxEntry]:
    """The newest queued scores first, with their line item's label and URL."""
    query = (
        select(ScoreOutbox, LineItem)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .order_by(ScoreOutbox.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(ScoreOutbox.status == status.value)
    if registration_id is not None:
        query = query.where(ScoreOutbox.registration_id == registration_id)
    if user_id is not None:
        query = query.where(ScoreOutbox.user_sub == user_id)
    if resource_link_id is not None:
        query = query.where(LineItem.resource_link_id == resource_link_id)
    entries = []
    for outbox, line_item in session.execute(query):
        payload = outbox.payload
        entries.append(
            OutboxEntry(
                id=outbox.id,
                registration_id=outbox.registration_id,
                line_item_label=line_item.label,
                lineitem_url=line_item.lineitem_url,
                user_id=outbox.user_sub,
                score_given=payload.get("scoreGiven"),
                score_maximum=payload.get("scoreMaximum"),
                status=OutboxStatus(outbox.status),
                attempts=outbox.attempts,
                next_attempt_at=as_utc(outbox.next_attempt_at),
                last_error=outbox.last_error,
                created_at=as_utc(outbox.created_at),
                delivered_at=_as_utc_or_none(outbox.delivered_at),
            )
        )
    return entries


# --- service access tokens -------------------------------------------------------------------


def scope_key(scopes: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    return " ".join(sorted(set(scopes)))


def load_access_token(
    session: Session, registration_id: int, scopes: str, valid_after: datetime
) -> str | None:
    """A cached token for exactly this scope set that is still valid after ``valid_after``."""
    row = session.scalars(
        select(ServiceAccessToken).where(
            ServiceAccessToken.registration_id == registration_id,
            ServiceAccessToken.scopes == scopes,
        )
    ).one_or_none()
    if row is None or as_utc(row.expires_at) <= as_utc(valid_after):
        return None
    return row.access_token


def store_access_token(
    session: Session,
    registration_id: int,
    scopes: str,
    access_token: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    values = {"access_token": access_token, "expires_at": as_utc(expires_at), "created_at": now}
    changed = session.execute(
        update(ServiceAccessToken)
        .where(
            ServiceAccessToken.registration_id == registration_id,
            ServiceAccessToken.scopes == scopes,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0):
        return
    # Another worker may store a token for the same scopes at the same moment: either is fine.
    _insert_unless_present(
        session,
        ServiceAccessToken,
        {"registration_id": registration_id, "scopes": scopes, **values},
        ["registration_id", "scopes"],
    )
