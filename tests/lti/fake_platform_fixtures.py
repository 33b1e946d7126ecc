"""Fixtures of the tests that talk to the fake platform (tests/lti/fake_platform.py): its clock,
the platform itself and its registration in the test database.

A test module imports the ones it uses by name and lists them in ``__all__`` (so the import
reads as used).
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import transaction
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
