"""Grade passback through a transactional outbox (AGS 2.0 §3.4 scores).

Flow: the use case that produces a score calls ``queue_score`` in its own transaction (the score
is stored with the event that caused it, or not at all). A worker (``ScoreDeliveryWorker`` in
the app process, or ``adaptive-lti grades deliver``) calls ``deliver_due_scores``: it claims one
due row at a time (a short transaction), finds or creates the line item on the platform when
needed, posts the score, and records the outcome (another short transaction). No transaction
stays open while the platform is called, and a claimed row belongs to one worker only, so two
workers in two processes never post the same row; a worker that dies mid-delivery loses its
claim when the lease runs out and the row is delivered again.

Outcomes: a newer score for the same learner and line item is queued -> ``superseded`` (not
sent: the platform keeps only the latest); accepted -> ``delivered``; refused by the platform (a user who is not gradable, a
scope not granted) -> ``failed`` with the reason; unreachable, 5xx, timeouts, a stripped
Authorization header -> retried with exponential back-off and jitter, then ``failed`` after the
last attempt. ``requeue_failed`` gives failed scores a new set of attempts once the cause is fixed.

Use from a use case (the launch's AGS claim is ``Launch.ags_endpoint``)::

    spec = line_item_spec_from_claim(
        launch.ags_endpoint, label=design.title, score_maximum=100,
        resource_id=f"design:{design.id}", platform_resource_link_id=resource_link.id,
    )
    if spec is not None:  # None: the launch grants no grade passback
        queue_score(session, registration_id=..., line_item=spec, now=now,
                    resource_link_id=resource_link_pk,
                    score=Score(user_id=launch_sub, activity_progress=ActivityProgress.completed,
                                grading_progress=GradingProgress.fully_graded, timestamp=now,
                                score_given=0.8 * 100, score_maximum=100))
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import AdaptiveLtiError
from adaptive_lti.core.grading import (
    DeliveryReport,
    LineItemSpec,
    OutboxEntry,
    OutboxStatus,
    PlatformLineItem,
    RetryPolicy,
    Score,
    ServiceCallRefused,
    ServiceUnavailable,
    score_dedupe_key,
)
from adaptive_lti.db import grades_repo, launches_repo
from adaptive_lti.db.session import transaction

log = logging.getLogger("adaptive_lti.services.grades")

# Longer than the slowest delivery (token, line-item look-up and creation, score, each with a
# bounded timeout), so a live worker never loses its claim.
DEFAULT_CLAIM_LEASE = timedelta(minutes=10)


class ScoreDeliveryClient(Protocol):
    """What delivery needs from the platform (``lti.ags.AgsClient`` provides it)."""

    def find_or_create_line_item(
        self, registration_id: int, spec: LineItemSpec
    ) -> PlatformLineItem: ...

    def post_score(
        self,
        registration_id: int,
        lineitem_url: str,
        payload: Mapping[str, Any],
        granted_scopes: Iterable[str],
    ) -> None: ...


@dataclass(frozen=True)
class QueuedScore:
    outbox_id: int
    line_item_id: int
    # False when the same score had been queued before (nothing new was written).
    created: bool


def _utcnow() -> datetime:
    return datetime.now(UTC)


def queue_score(
    session: Session,
    *,
    registration_id: int,
    line_item: LineItemSpec,
    score: Score,
    now: datetime,
    dedupe_key: str | None = None,
    resource_link_id: int | None = None,
) -> QueuedScore:
    """Queue a score for delivery, in the caller's transaction (flushes, never commits).

    ``dedupe_key`` defaults to a hash of the registration, the line item and the score itself
    (timestamp included): queueing the same score twice stores it once. Pass your own key (an
    event id) when the same values may legitimately be sent twice.
    """
    if resource_link_id is not None and not line_item.lineitem_url:
        # A column the tool makes is named after the activity (the resource link's title, what
        # the teacher sees in the course), not after the design several activities may share.
        title = launches_repo.resource_link_title(session, resource_link_id)
        if title:
            line_item = replace(line_item, label=title[:255])
    stored = grades_repo.get_or_create_line_item(
        session, registration_id, line_item, now, resource_link_id=resource_link_id
    )
    key = dedupe_key or score_dedupe_key(registration_id, line_item.binding_key(), score)
    outbox_id, created = grades_repo.insert_score(
        session, registration_id, stored.id, score, key, now
    )
    return QueuedScore(outbox_id=outbox_id, line_item_id=stored.id, created=created)


def _attempt(
    session_factory: sessionmaker[Session],
    client: ScoreDeliveryClient,
    claimed: grades_repo.ClaimedScore,
    now: datetime,
) -> None:
    """Post one claimed score; raises the platform's refusal or failure."""
    spec = claimed.line_item.spec
    lineitem_url = spec.lineitem_url
    if not lineitem_url:
        item = client.find_or_create_line_item(claimed.registration_id, spec)
        lineitem_url = item.url
        with transaction(session_factory) as session:
            grades_repo.set_line_item_url(session, claimed.line_item.id, lineitem_url, now)
    client.post_score(claimed.registration_id, lineitem_url, claimed.payload, spec.granted_scopes)


def deliver_due_scores(
    session_factory: sessionmaker[Session],
    client: ScoreDeliveryClient,
    now: datetime,
    *,
    policy: RetryPolicy | None = None,
    random_fraction: Callable[[], float] = random.random,
    limit: int = 100,
    lease: timedelta = DEFAULT_CLAIM_LEASE,
    worker_id: str | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Deliver up to ``limit`` due scores, each claimed and recorded in its own transaction.

    ``stop_requested`` is asked before each claim: a worker being stopped finishes the score
    in hand and leaves the others queued and unclaimed."""
    policy = policy or RetryPolicy()
    now = grades_repo.as_utc(now)
    worker = worker_id or uuid.uuid4().hex[:12]
    delivered = retrying = failed = superseded = 0
    errors: list[str] = []
    for _ in range(limit):
        if stop_requested is not None and stop_requested():
            break
        claim_token = f"{worker}:{uuid.uuid4().hex}"
        with transaction(session_factory) as session:
            claimed = grades_repo.claim_next_due(session, now, claim_token, lease)
            if claimed is not None and grades_repo.newer_score_queued(session, claimed):
                grades_repo.record_superseded(session, claimed)
                superseded += 1
                continue
        if claimed is None:
            break
        error: str | None = None
        permanent = False
        try:
            _attempt(session_factory, client, claimed, now)
        except ServiceCallRefused as refusal:
            error, permanent = str(refusal), True
        except (ServiceUnavailable, AdaptiveLtiError) as failure:
            error = str(failure)
        except Exception as unexpected:  # a bug must not stop the other scores
            log.exception("unexpected error delivering score %s", claimed.outbox_id)
            error = (
                f"Unexpected error ({unexpected.__class__.__name__}: {unexpected}); "
                "see the tool's log."
            )
        with transaction(session_factory) as session:
            if error is None:
                kept = grades_repo.record_delivered(session, claimed, now)
                delivered += 1
            elif permanent or claimed.attempts >= policy.max_attempts:
                if not permanent:
                    error = f"Gave up after {claimed.attempts} attempts. Last error: {error}"
                kept = grades_repo.record_failed(session, claimed, error)
                failed += 1
                errors.append(f"score {claimed.outbox_id}: {error}")
            else:
                retry_at = now + policy.delay(claimed.attempts, random_fraction())
                kept = grades_repo.record_retry(session, claimed, retry_at, error)
                retrying += 1
                errors.append(f"score {claimed.outbox_id}: {error}")
        if not kept:
            log.warning("score %s: the claim expired before delivery finished", claimed.outbox_id)
        if error is not None:
            log.warning("score %s not delivered: %s", claimed.outbox_id, error)
    return DeliveryReport(
        delivered=delivered,
        retrying=retrying,
        failed=failed,
        superseded=superseded,
        errors=tuple(errors),
    )


def requeue_failed(session: Session, now: datetime, *, registration_id: int | None = None) -> int:
    """Give every failed score a fresh set of attempts, due now (after the cause was fixed)."""
    return grades_repo.requeue_failed(session, now, registration_id=registration_id)


@dataclass(frozen=True)
class OutboxStatusReport:
    counts: Mapping[str, int]
    entries: tuple[OutboxEntry, ...]


def outbox_status(
    session: Session,
    *,
    status: OutboxStatus | None = None,
    registration_id: int | None = None,
    user_id: str | None = None,
    resource_link_id: int | None = None,
    limit: int = 50,
) -> OutboxStatusReport:
    """Counts per status, and the newest entries (filtered), for the CLI and instructor pages.

    ``resource_link_id`` (the tool's ``lti_resource_link.id``, as given to ``queue_score``)
    narrows both to one activity."""
    return OutboxStatusReport(
        counts=grades_repo.outbox_counts(
            session, registration_id=registration_id, resource_link_id=resource_link_id
        ),
        entries=tuple(
            grades_repo.list_outbox(
                session,
                status=status,
                registration_id=registration_id,
                user_id=user_id,
                resource_link_id=resource_link_id,
                limit=limit,
            )
        ),
    )


class ScoreDeliveryWorker:
    """Delivers due scores in a background thread until ``stop()``.

    Runs a delivery pass every ``interval`` seconds (at once again when a pass was full). Any
    error is logged and the loop goes on: a database or platform outage must not kill it.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: ScoreDeliveryClient,
        *,
        interval: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        policy: RetryPolicy | None = None,
        batch_size: int = 100,
    ) -> None:
        self._session_factory = session_factory
        self._client = client
        self._interval = interval
        self._clock = clock or _utcnow
        self._policy = policy
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="adaptive-lti-score-delivery", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to end and wait for the score in hand to be delivered and recorded."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> DeliveryReport:
        return deliver_due_scores(
            self._session_factory,
            self._client,
            self._clock(),
            policy=self._policy,
            limit=self._batch_size,
            stop_requested=self._stopping.is_set,
        )

    def _run(self) -> None:
        while not self._stopping.is_set():
            full = False
            try:
                report = self.run_once()
                full = report.attempted >= self._batch_size
            except (OperationalError, InterfaceError) as error:
                # The database is down or restarting: expected in operations, one line suffices.
                log.warning(
                    "score delivery pass could not reach the database (%s); trying again in %ss",
                    type(error.orig).__name__ if error.orig is not None else type(error).__name__,
                    self._interval,
                )
            except Exception:  # the loop must survive anything; the log says what happened
                log.exception("score delivery pass failed; trying again in %ss", self._interval)
            self.passes += 1
            if not full:
                self._stopping.wait(self._interval)
