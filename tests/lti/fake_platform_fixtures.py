"""Fixtures of the tests that talk to the fake platform (tests/lti/fake_platform.py): its clock,
the platform itself, its registration in the test database, and a database of a test's own (for
workers that open their own connections).

A test module imports the ones it uses by name and lists them in ``__all__`` (so the import
reads as used).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from tests.lti.fake_platform import FakeClock, FakePlatform, add_fake_registration, new_platform


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def platform(clock: FakeClock) -> FakePlatform:
    return new_platform(clock=clock)


@pytest.fixture
def registration_id(session_factory: sessionmaker[Session], clock: FakeClock) -> int:
    with transaction(session_factory) as session:
        return add_fake_registration(session, clock())


@pytest.fixture
def own_database(
    new_database_url: Callable[[str], str], backend: str
) -> Iterator[sessionmaker[Session]]:
    """A migrated database of the test's own, with its own engine (and so its own connections)."""
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()
