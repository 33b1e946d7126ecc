"""Two requests of one learner at once, on separate connections of a real database (SQLite and
PostgreSQL): only one event takes the next sequence number; the other request is told its page
was out of date and writes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, select

from adaptive_lti.core.events import Completed, IntakeAnswered
from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import LearnerEvent, LearnerSnapshot
from adaptive_lti.services.journey import reading, recording
from tests.design_samples import NOW
from tests.services.test_progress import launch, published_example


def test_only_one_of_two_racing_requests_appends(
    new_database_url: Callable[[str], str], backend: str
) -> None:
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        with transaction(factory) as session:
            published_example(session)
            view = launch(session, "3", {"prior_programming": "none"})
            view = recording.record(
                session,
                view.enrolment,
                IntakeAnswered(at=NOW, activity="welcome", answers={"goal": "interest"}),
                NOW,
                expected_sequence=view.event_count,
            )
        enrolment, sequence = view.enrolment, view.event_count
        first = factory()
        # The first request appends and holds its transaction open...
        recording.record(
            first,
            enrolment,
            Completed(at=NOW, activity="diagnostic", score=1.0),
            NOW,
            expected_sequence=sequence,
        )
        outcome: list[BaseException | None] = []

        def second_request() -> None:
            with factory() as second:
                try:
                    recording.record(
                        second,
                        enrolment,
                        Completed(at=NOW, activity="diagnostic", score=0.0),
                        NOW,
                        expected_sequence=sequence,
                    )
                    second.commit()
                    outcome.append(None)
                except BaseException as error:
                    second.rollback()
                    outcome.append(error)

        racer = threading.Thread(target=second_request)
        racer.start()
        racer.join(timeout=0.5)  # ...while the second one waits for it (or already lost)
        first.commit()
        first.close()
        racer.join(timeout=10)
        assert not racer.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], reading.StalePageError)
        with factory() as session:
            count = session.scalar(
                select(func.count())
                .select_from(LearnerEvent)
                .where(LearnerEvent.enrolment_id == enrolment.id)
            )
            snapshot = session.get(LearnerSnapshot, enrolment.id)
            assert snapshot is not None and count == snapshot.event_count == sequence + 1
            assert snapshot.state["outcomes"]["diagnostic"]["score"] == 1.0
    finally:
        engine.dispose()
