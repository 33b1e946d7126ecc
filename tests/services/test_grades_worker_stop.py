"""Stopping the score-delivery worker (SIGTERM, the app's shutdown) ends its pass after the
score in hand: the rest stay queued, unclaimed, for the next process, and the stop returns in
about one score's time instead of waiting for the whole batch (or being cut off mid-batch, each
cut claim then waiting out its ten-minute lease)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import ScoreOutbox
from adaptive_lti.services import grades
from tests.lti.fake_platform import (
    FakeClock,
    add_fake_registration,
    new_platform,
    queue_activity_score,
    service_clients,
)
from tests.lti.fake_platform_fixtures import own_database

__all__ = ["own_database"]  # a fixture

SCORE_SECONDS = 0.3


def test_stop_ends_the_pass_after_the_score_in_hand(own_database: sessionmaker[Session]) -> None:
    factory = own_database
    clock = FakeClock()
    platform = new_platform(clock=clock, score_delay=SCORE_SECONDS)
    with transaction(factory) as session:
        registration_id = add_fake_registration(session, clock())
        for number in range(10):
            queue_activity_score(
                session, registration_id, user_id=str(100 + number), score_given=5, now=clock()
            )
    ags = service_clients(factory, platform, clock)[0]
    worker = grades.ScoreDeliveryWorker(factory, ags, interval=60, clock=clock)
    worker.start()
    deadline = time.monotonic() + 10
    while not platform.scores_for("100") and time.monotonic() < deadline:
        time.sleep(0.02)
    began = time.monotonic()
    worker.stop(timeout=30)
    stopped_in = time.monotonic() - began
    assert not worker.running
    assert stopped_in < 3 * SCORE_SECONDS, stopped_in
    with transaction(factory) as session:
        by_status = dict(
            session.execute(
                select(ScoreOutbox.status, func.count()).group_by(ScoreOutbox.status)
            ).all()
        )
        claimed = session.scalar(select(func.count()).where(ScoreOutbox.claim_token.is_not(None)))
    delivered = by_status.get("delivered", 0)
    assert 1 <= delivered <= 3, by_status
    assert by_status.get("pending", 0) == 10 - delivered
    assert claimed == 0, "no score is left claimed by the stopped worker"
    ags.close()


def test_a_database_that_cannot_be_reached_is_one_log_line_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 9 (discard): every pass fails to connect, as when PostgreSQL restarts.
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
    factory = make_session_factory(engine)
    clock = FakeClock()
    ags = service_clients(factory, new_platform(clock=clock), clock)[0]
    worker = grades.ScoreDeliveryWorker(factory, ags, interval=0.05, clock=clock)
    with caplog.at_level("WARNING", logger=grades.log.name):
        worker.start()
        deadline = time.monotonic() + 10
        while worker.passes < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        worker.stop(timeout=10)
    engine.dispose()
    ags.close()
    assert worker.passes >= 2, "the loop survives a database it cannot reach"
    lines = [r for r in caplog.records if r.name == grades.log.name]
    assert lines and all("could not reach the database" in r.getMessage() for r in lines)
    assert all(r.exc_info is None for r in lines), "no traceback for an expected outage"
