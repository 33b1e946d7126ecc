"""The app delivers queued scores from a background worker started with it (and can be told not
to). The worker signs with the tool's own active key and reaches the platform through
``app.state.http_transport`` (a Moodle-shaped fake here)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import ScoreOutbox
from adaptive_lti.lti import keys
from adaptive_lti.settings import Settings
from adaptive_lti.web.app import create_app
from tests.lti.fake_platform import (
    FakePlatform,
    add_fake_registration,
    queue_activity_score,
)


@pytest.fixture
def database(new_database_url, backend: str) -> Iterator[tuple[str, sessionmaker[Session]]]:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    yield url, make_session_factory(engine)
    engine.dispose()


def queue_one_score(factory: sessionmaker[Session], settings: Settings) -> FakePlatform:
    now = datetime.now(UTC)
    with transaction(factory) as session:
        keys.ensure_signing_key(session, settings, now)
        public_key = keys.signing_key(session).private_key.public_key()
        registration_id = add_fake_registration(session, now)
        queue_activity_score(session, registration_id, user_id="3", score_given=9, now=now)
    return FakePlatform(tool_public_key=public_key)


def statuses(factory: sessionmaker[Session]) -> list[str]:
    with transaction(factory) as session:
        return list(session.scalars(select(ScoreOutbox.status)))


def test_the_app_delivers_queued_scores_in_the_background(
    database: tuple[str, sessionmaker[Session]],
) -> None:
    url, factory = database
    settings = Settings(database_url=url, grade_delivery_interval_seconds=0.05)
    platform = queue_one_score(factory, settings)
    app = create_app(settings)
    app.state.http_transport = platform.transport()
    with TestClient(app):
        deadline = time.monotonic() + 10
        while not platform.received_scores and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [s.payload["scoreGiven"] for s in platform.received_scores] == [9]
    assert statuses(factory) == ["delivered"]


def test_the_worker_can_be_turned_off(database: tuple[str, sessionmaker[Session]]) -> None:
    url, factory = database
    settings = Settings(
        database_url=url, grade_delivery_worker=False, grade_delivery_interval_seconds=0.05
    )
    platform = queue_one_score(factory, settings)
    app = create_app(settings)
    app.state.http_transport = platform.transport()
    with TestClient(app):
        time.sleep(0.3)
    assert platform.requests == []
    assert statuses(factory) == ["pending"]
