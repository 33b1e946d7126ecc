"""Grade passback through the outbox: queued once, delivered exactly once, failures explained.

The platform is the Moodle-shaped fake (tests/lti/fake_platform.py) behind an httpx
MockTransport; it fails, times out and expires tokens on demand. Every test runs on SQLite and
PostgreSQL; the concurrency tests build their own database so two workers really run at once.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import (
    ActivityProgress,
    GradingProgress,
    LineItemSpec,
    OutboxStatus,
    RetryPolicy,
    Score,
)
from adaptive_lti.db import grades_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import LineItem, ScoreOutbox
from adaptive_lti.services import grades
from tests.lti.fake_platform import (
    AGS_SCOPES,
    LINEITEM_URL,
    LINEITEMS_URL,
    FakeClock,
    FakePlatform,
    add_fake_registration,
    new_platform,
    service_clients,
)
from tests.lti.fake_platform_fixtures import clock, own_database, platform, registration_id

# Fixtures, shared with the other fake-platform tests.
__all__ = ["clock", "own_database", "platform", "registration_id"]

ACTIVITY = LineItemSpec(
    label="Harness activity",
    score_maximum=100,
    granted_scopes=tuple(AGS_SCOPES),
    lineitem_url=LINEITEM_URL,
    lineitems_url=LINEITEMS_URL,
)
NO_JITTER = RetryPolicy(base_seconds=30, cap_seconds=3600, floor_seconds=5, max_attempts=6)


def a_score(clock: FakeClock, user: str = "3", given: float = 7.5, seconds: int = 0) -> Score:
    return Score(
        user_id=user,
        activity_progress=ActivityProgress.completed,
        grading_progress=GradingProgress.fully_graded,
        timestamp=clock() + timedelta(seconds=seconds),
        score_given=given,
        score_maximum=10,
        comment="well done",
    )


def queue(
    session_factory: sessionmaker[Session],
    registration_id: int,
    *scores: Score,
    line_item: LineItemSpec = ACTIVITY,
) -> list[grades.QueuedScore]:
    with transaction(session_factory) as session:
        return [
            grades.queue_score(
                session,
                registration_id=registration_id,
                line_item=line_item,
                score=score,
                now=min(s.timestamp for s in scores),
            )
            for score in scores
        ]


def outbox_rows(session_factory: sessionmaker[Session]) -> list[ScoreOutbox]:
    with transaction(session_factory) as session:
        rows = list(session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)))
        session.expunge_all()
        return rows


def deliver(
    session_factory: sessionmaker[Session],
    platform: FakePlatform,
    clock: FakeClock,
    policy: RetryPolicy = NO_JITTER,
) -> grades.DeliveryReport:
    ags = service_clients(session_factory, platform, clock)[0]
    return grades.deliver_due_scores(
        session_factory, ags, clock(), policy=policy, random_fraction=lambda: 0.5
    )


def test_the_same_score_is_queued_once(
    session_factory: sessionmaker[Session], registration_id: int, clock: FakeClock
) -> None:
    score = a_score(clock)
    first, again = queue(session_factory, registration_id, score, score)
    assert first.created and not again.created
    assert again.outbox_id == first.outbox_id
    [row] = outbox_rows(session_factory)
    assert row.status == "pending"
    assert row.payload["scoreGiven"] == 7.5
    assert row.payload["activityProgress"] == "Completed"
    assert row.payload["gradingProgress"] == "FullyGraded"


def test_scores_are_delivered_and_recorded(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    queue(session_factory, registration_id, a_score(clock), a_score(clock, "5", 3, seconds=1))
    report = deliver(session_factory, platform, clock)
    assert (report.delivered, report.retrying, report.failed) == (2, 0, 0)
    assert [s.payload["userId"] for s in platform.received_scores] == ["3", "5"]
    assert {s.lineitem_url for s in platform.received_scores} == {LINEITEM_URL}
    for row in outbox_rows(session_factory):
        assert row.status == "delivered"
        assert row.attempts == 1
        assert row.delivered_at is not None
        assert row.claim_token is None
    # Nothing left to do: a second pass posts nothing.
    assert deliver(session_factory, platform, clock).attempted == 0
    assert len(platform.received_scores) == 2


def test_a_platform_that_fails_times_out_and_expires_tokens_gets_each_score_once(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    scores = [a_score(clock, str(user), user, seconds=user) for user in range(10, 14)]
    queue(session_factory, registration_id, *scores)
    platform.score_faults.extend(["500", "timeout", "expire", "503", "connect", "429", "timeout"])
    for _ in range(20):
        report = deliver(session_factory, platform, clock)
        if report.attempted == 0 and not platform.score_faults:
            break
        clock.advance(120)  # past the back-off (15, 30, 60 s with the jitter at 0.5)
    received = sorted(s.payload["userId"] for s in platform.received_scores)
    assert received == ["10", "11", "12", "13"]
    rows = outbox_rows(session_factory)
    assert {row.status for row in rows} == {"delivered"}
    assert all(row.last_error is None for row in rows)
    # Six failed attempts (the expired token was refreshed within its attempt) + four good ones.
    assert sum(row.attempts for row in rows) == 10
    assert len(platform.token_requests) == 2


def test_retries_back_off_exponentially_with_jitter_and_say_why(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    queue(session_factory, registration_id, a_score(clock))
    platform.score_faults.extend(["500", "timeout", "500"])
    expected_waits = [15, 30, 60]  # 0.5 x 30 x 2**n (the injected jitter is 0.5)
    for wait in expected_waits:
        start = clock()
        report = deliver(session_factory, platform, clock)
        assert report.retrying == 1
        [row] = outbox_rows(session_factory)
        assert grades_repo.as_utc(row.next_attempt_at) == start + timedelta(seconds=wait)
        assert row.last_error
        # Not due yet: nothing is attempted before the back-off ends.
        clock.advance(wait - 1)
        assert deliver(session_factory, platform, clock).attempted == 0
        clock.advance(1)
    [row] = outbox_rows(session_factory)
    assert "did not answer in time" not in (row.last_error or "")
    assert "HTTP 500" in (row.last_error or "")
    assert deliver(session_factory, platform, clock).delivered == 1
    assert RetryPolicy().delay(20, 1.0) == timedelta(hours=1)  # capped
    assert RetryPolicy().delay(1, 0.0) == timedelta(seconds=5)  # floored


def test_moodle_refusing_a_teacher_is_a_permanent_failure_with_a_clear_message(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    queue(session_factory, registration_id, a_score(clock, user="4"))
    report = deliver(session_factory, platform, clock)
    assert (report.failed, report.retrying) == (1, 0)
    [row] = outbox_rows(session_factory)
    assert row.status == "failed"
    assert row.attempts == 1
    assert (row.last_error or "").startswith(
        "Moodle refused the score for user 4: they are not a gradable student in this course"
    )
    clock.advance(86400)
    assert deliver(session_factory, platform, clock).attempted == 0
    assert platform.received_scores == []
    with transaction(session_factory) as session:
        status = grades.outbox_status(session, status=OutboxStatus.failed)
    assert status.counts["failed"] == 1
    [entry] = status.entries
    assert entry.user_id == "4"
    assert entry.line_item_label == "Harness activity"
    assert entry.last_error == row.last_error


def test_delivery_gives_up_after_the_last_attempt_and_can_be_requeued(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    queue(session_factory, registration_id, a_score(clock))
    policy = RetryPolicy(base_seconds=1, floor_seconds=1, max_attempts=3)
    platform.score_faults.extend(["500"] * 3)
    for _ in range(3):
        deliver(session_factory, platform, clock, policy)
        clock.advance(60)
    [row] = outbox_rows(session_factory)
    assert row.status == "failed"
    assert (row.last_error or "").startswith("Gave up after 3 attempts. Last error: ")
    assert "HTTP 500" in (row.last_error or "")
    with transaction(session_factory) as session:
        assert grades.requeue_failed(session, clock()) == 1
    assert deliver(session_factory, platform, clock, policy).delivered == 1
    assert len(platform.received_scores) == 1


def test_a_stripped_authorization_header_is_retried_with_the_fix_in_the_message(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    queue(session_factory, registration_id, a_score(clock))
    platform.strip_authorization = True
    assert deliver(session_factory, platform, clock).retrying == 1
    [row] = outbox_rows(session_factory)
    assert "strips the Authorization header" in (row.last_error or "")
    assert "CGIPassAuth On" in (row.last_error or "")
    platform.strip_authorization = False  # the administrator fixed Apache
    clock.advance(3600)
    assert deliver(session_factory, platform, clock).delivered == 1


def test_a_line_item_is_found_or_created_before_the_first_score(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    own_column = LineItemSpec(
        label="Adaptive route",
        score_maximum=100,
        granted_scopes=tuple(AGS_SCOPES),
        lineitems_url=LINEITEMS_URL,
        resource_id="design:stats-101",
        platform_resource_link_id="99",  # an activity without a column on the platform
    )
    queue(
        session_factory,
        registration_id,
        a_score(clock),
        a_score(clock, "5", seconds=1),
        line_item=own_column,
    )
    assert deliver(session_factory, platform, clock).delivered == 2
    [created] = platform.created_line_items
    assert {s.lineitem_url for s in platform.received_scores} == {created["id"]}
    with transaction(session_factory) as session:
        [line_item] = session.scalars(
            select(LineItem).where(LineItem.resource_id == "design:stats-101")
        ).all()
        assert line_item.lineitem_url == created["id"]


def test_a_claim_that_expired_is_taken_over_and_the_old_worker_cannot_overwrite(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    queue(session_factory, registration_id, a_score(clock))
    with transaction(session_factory) as session:
        stale = grades_repo.claim_next_due(session, clock(), "dead-worker", timedelta(minutes=1))
    assert stale is not None
    # While the claim holds, nobody else takes the row.
    assert deliver(session_factory, platform, clock).attempted == 0
    clock.advance(61)
    assert deliver(session_factory, platform, clock).delivered == 1
    with transaction(session_factory) as session:
        assert not grades_repo.record_failed(session, stale, "too late")
    [row] = outbox_rows(session_factory)
    assert row.status == "delivered"


# --- two workers at once, each with its own connections ------------------------------------


def test_two_concurrent_workers_post_every_score_exactly_once(
    own_database: sessionmaker[Session], clock: FakeClock
) -> None:
    factory = own_database
    platform = new_platform(clock=clock, score_delay=0.002)
    platform.score_faults.extend(["500", "timeout", "expire", "503"] * 3)
    with transaction(factory) as session:
        registration_id = add_fake_registration(session, clock())
    scores = [a_score(clock, str(100 + n), n % 10, seconds=n) for n in range(60)]
    queue(factory, registration_id, *scores)
    immediate_retry = RetryPolicy(base_seconds=0, floor_seconds=0, max_attempts=50)
    problems: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        # Its own clients, as a second process would have; the database is the only link.
        ags = service_clients(factory, platform, clock)[0]
        try:
            start.wait()
            for _ in range(200):
                report = grades.deliver_due_scores(
                    factory, ags, clock(), policy=immediate_retry, limit=5
                )
                if report.attempted == 0:
                    return
        except BaseException as error:  # surfaced by the assertion below
            problems.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert problems == []
    received = [s.payload["userId"] for s in platform.received_scores]
    assert sorted(received) == sorted(str(100 + n) for n in range(60))
    assert len(received) == len(set(received)) == 60
    with transaction(factory) as session:
        counts = grades_repo.outbox_counts(session)
        assert counts == {"pending": 0, "delivered": 60, "failed": 0, "superseded": 0}
        assert session.scalar(select(func.count()).select_from(ScoreOutbox)) == 60


def test_queue_score_never_commits(own_database: sessionmaker[Session], clock: FakeClock) -> None:
    factory = own_database
    with transaction(factory) as session:
        registration_id = add_fake_registration(session, clock())
    session = factory()
    try:
        grades.queue_score(
            session,
            registration_id=registration_id,
            line_item=ACTIVITY,
            score=a_score(clock),
            now=clock(),
        )
        session.rollback()  # the caller's transaction failed: the score must go with it
    finally:
        session.close()
    assert outbox_rows(factory) == []


def test_the_background_worker_delivers_and_stops(
    own_database: sessionmaker[Session], clock: FakeClock
) -> None:
    factory = own_database
    platform = new_platform(clock=clock)
    with transaction(factory) as session:
        registration_id = add_fake_registration(session, clock())
    ags = service_clients(factory, platform, clock)[0]
    worker = grades.ScoreDeliveryWorker(factory, ags, interval=0.02, clock=clock)
    worker.start()
    try:
        queue(factory, registration_id, a_score(clock))
        for _ in range(250):
            if platform.received_scores:
                break
            threading.Event().wait(0.02)
    finally:
        worker.stop()
    assert not worker.running
    assert len(platform.received_scores) == 1
    assert [row.status for row in outbox_rows(factory)] == ["delivered"]


def test_a_platform_without_the_tools_key_is_retried_not_failed(
    session_factory: sessionmaker[Session], registration_id: int, clock: FakeClock
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    platform = FakePlatform(tool_public_key=stranger, clock=clock)
    queue(session_factory, registration_id, a_score(clock))
    assert deliver(session_factory, platform, clock).retrying == 1
    [row] = outbox_rows(session_factory)
    assert row.status == "pending"
    assert "token endpoint refused the tool" in (row.last_error or "")
    assert "public key" in (row.last_error or "")


def test_after_an_outage_only_the_latest_score_of_a_learner_is_sent(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    started = Score(
        user_id="3",
        activity_progress=ActivityProgress.started,
        grading_progress=GradingProgress.pending,
        timestamp=clock(),
    )
    halfway = a_score(clock, given=4, seconds=60)
    done = a_score(clock, given=9, seconds=120)
    other_learner = a_score(clock, user="5", given=2, seconds=30)
    queue(session_factory, registration_id, started, halfway, other_learner, done)
    report = deliver(session_factory, platform, clock)
    assert (report.superseded, report.delivered) == (2, 2)
    assert [
        (s.payload["userId"], s.payload.get("scoreGiven")) for s in platform.received_scores
    ] == [
        ("5", 2),
        ("3", 9),
    ]
    with transaction(session_factory) as session:
        counts = grades.outbox_status(session).counts
    assert counts == {"pending": 0, "delivered": 2, "failed": 0, "superseded": 2}


def test_status_for_one_activity(
    session_factory: sessionmaker[Session], registration_id: int, clock: FakeClock
) -> None:
    from adaptive_lti.db.tables import Deployment, ResourceLink

    with transaction(session_factory) as session:
        deployment = session.scalars(
            select(Deployment).where(Deployment.registration_id == registration_id)
        ).one()
        link = ResourceLink(
            deployment_id=deployment.id,
            resource_link_id="1",
            first_seen_at=clock(),
            last_seen_at=clock(),
        )
        session.add(link)
        session.flush()
        link_pk = link.id
        grades.queue_score(
            session,
            registration_id=registration_id,
            line_item=ACTIVITY,
            score=a_score(clock),
            now=clock(),
            resource_link_id=link_pk,
        )
        other_column = LineItemSpec(
            label="Other", score_maximum=10, granted_scopes=(), lineitem_url=LINEITEM_URL + "&x=2"
        )
        grades.queue_score(
            session,
            registration_id=registration_id,
            line_item=other_column,
            score=a_score(clock, user="5"),
            now=clock(),
        )
    with transaction(session_factory) as session:
        one = grades.outbox_status(session, resource_link_id=link_pk)
        every = grades.outbox_status(session)
    assert [e.user_id for e in one.entries] == ["3"]
    assert one.counts["pending"] == 1
    assert every.counts["pending"] == 2


def _resource_link(session: Session, registration_id: int, link_id: str, title: str) -> int:
    from adaptive_lti.db.tables import Deployment, ResourceLink

    deployment = session.scalars(
        select(Deployment).where(Deployment.registration_id == registration_id)
    ).one()
    now = FakeClock()()
    link = ResourceLink(
        deployment_id=deployment.id,
        resource_link_id=link_id,
        title=title,
        first_seen_at=now,
        last_seen_at=now,
    )
    session.add(link)
    session.flush()
    return link.id


def test_an_activity_with_a_column_gets_no_second_one_and_a_new_one_is_named_after_it(
    session_factory: sessionmaker[Session],
    registration_id: int,
    platform: FakePlatform,
    clock: FakeClock,
) -> None:
    """Issue 8: with Moodle's "Delegate to teacher" the launch has no lineitem, and the tool made
    its own column named after the design for every activity: the gradebook ended with three
    columns named "Introduction to Programming"."""
    spec = LineItemSpec(
        label="Introduction to Programming",  # the design's title
        score_maximum=100,
        granted_scopes=tuple(AGS_SCOPES),
        lineitems_url=LINEITEMS_URL,
        resource_id="design:intro-programming",
        tag="adaptive-lti",
        platform_resource_link_id="1",  # Moodle's "Harness activity" has its column
    )
    with transaction(session_factory) as session:
        harness = _resource_link(session, registration_id, "1", "Harness activity")
        essay = _resource_link(session, registration_id, "77", "Week 4 essay")
        for link_pk, link_id, user in ((harness, "1", "3"), (essay, "77", "5")):
            grades.queue_score(
                session,
                registration_id=registration_id,
                line_item=replace(spec, platform_resource_link_id=link_id),
                score=a_score(clock, user),
                now=clock(),
                resource_link_id=link_pk,
            )
    assert deliver(session_factory, platform, clock).delivered == 2
    # One column made, for the activity that had none, named after the activity.
    assert len(platform.created_line_items) == 1, platform.created_line_items
    [created] = platform.created_line_items
    assert created["label"] == "Week 4 essay" and created["resourceLinkId"] == "77"
    posted = {s.payload["userId"]: s.lineitem_url for s in platform.received_scores}
    assert posted == {"3": LINEITEM_URL, "5": created["id"]}
