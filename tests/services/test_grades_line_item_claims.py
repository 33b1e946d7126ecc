"""A line item that is not on the platform yet is created by one worker only.

Its first delivery creates it (find or create in the platform's container). Two workers that
claimed two scores of that line item at once each created it: the course got two gradebook
columns (found by tests/e2e/test_nginx_processes.py, two processes behind nginx). While one
score of such a line item is claimed, the others wait; scores of other line items do not.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import (
    ActivityProgress,
    GradingProgress,
    LineItemSpec,
    Score,
)
from adaptive_lti.db import grades_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.services import grades
from tests.lti.fake_platform import AGS_SCOPES, LINEITEM_URL, LINEITEMS_URL, FakeClock
from tests.lti.fake_platform_fixtures import clock, registration_id

__all__ = ["clock", "registration_id"]

LEASE = timedelta(minutes=10)
NOT_ON_THE_PLATFORM = LineItemSpec(
    label="Created on first delivery",
    score_maximum=10,
    granted_scopes=tuple(AGS_SCOPES),
    lineitems_url=LINEITEMS_URL,
    resource_id="created-on-first-delivery",
)
ON_THE_PLATFORM = LineItemSpec(
    label="Known",
    score_maximum=10,
    granted_scopes=tuple(AGS_SCOPES),
    lineitem_url=LINEITEM_URL,
    lineitems_url=LINEITEMS_URL,
)


def _score(clock: FakeClock, user: str) -> Score:
    return Score(
        user_id=user,
        activity_progress=ActivityProgress.completed,
        grading_progress=GradingProgress.fully_graded,
        timestamp=clock(),
        score_given=5,
        score_maximum=10,
    )


def _claim(
    factory: sessionmaker[Session], clock: FakeClock, worker: str
) -> grades_repo.ClaimedScore | None:
    with transaction(factory) as session:
        return grades_repo.claim_next_due(session, clock(), f"{worker}:token", LEASE)


def test_a_second_score_of_a_line_item_being_created_waits_for_the_first(
    session_factory: sessionmaker[Session], registration_id: int, clock: FakeClock
) -> None:
    with transaction(session_factory) as session:
        for user in ("3", "4"):
            grades.queue_score(
                session,
                registration_id=registration_id,
                line_item=NOT_ON_THE_PLATFORM,
                score=_score(clock, user),
                now=clock(),
            )
        grades.queue_score(
            session,
            registration_id=registration_id,
            line_item=ON_THE_PLATFORM,
            score=_score(clock, "5"),
            now=clock(),
        )
    first = _claim(session_factory, clock, "one")
    assert first is not None and first.user_id == "3"
    # Another worker passes the second score of the same new line item by, not the other item.
    other = _claim(session_factory, clock, "two")
    assert other is not None and other.user_id == "5"
    assert _claim(session_factory, clock, "two") is None
    # Once the first worker has created the item (its URL recorded), the second score goes.
    with transaction(session_factory) as session:
        grades_repo.set_line_item_url(session, first.line_item.id, LINEITEM_URL + "/new", clock())
    second = _claim(session_factory, clock, "two")
    assert second is not None and second.user_id == "4"
    assert second.line_item.spec.lineitem_url == LINEITEM_URL + "/new"


def test_a_creating_worker_whose_claim_expired_does_not_block_the_line_item(
    session_factory: sessionmaker[Session], registration_id: int, clock: FakeClock
) -> None:
    with transaction(session_factory) as session:
        for user in ("3", "4"):
            grades.queue_score(
                session,
                registration_id=registration_id,
                line_item=NOT_ON_THE_PLATFORM,
                score=_score(clock, user),
                now=clock(),
            )
    assert _claim(session_factory, clock, "one") is not None
    clock.advance((LEASE + timedelta(seconds=1)).total_seconds())
    taken_over = _claim(session_factory, clock, "two")
    assert taken_over is not None and taken_over.user_id == "3"
