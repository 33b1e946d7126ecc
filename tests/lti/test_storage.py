"""The OIDC login store: random values, single use, expiry and purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.db import login_states_repo
from adaptive_lti.lti import storage
from tests.lti.scripted_platform import LAUNCH_URL, ScriptedPlatform

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def login(session: Session, registration_id: int, at: datetime, ttl: int = 600):  # type: ignore[no-untyped-def]
    return storage.begin_login(
        session,
        storage.LoginRequest(registration_id, LAUNCH_URL, "3", "1", "1", None),
        now=at,
        ttl_seconds=ttl,
    )


def test_consume_works_once_and_checks_everything(session: Session) -> None:
    registration = ScriptedPlatform().register(session, NOW)
    first = login(session, registration.id, NOW)
    assert storage.valid_state_shape(first.state)
    kwargs = {"registration_id": registration.id, "target_link_uri": LAUNCH_URL, "now": NOW}
    used = storage.consume_login(session, state=first.state, nonce=first.nonce, **kwargs)
    assert used.nonce == first.nonce
    with pytest.raises(LaunchError, match="already used"):
        storage.consume_login(session, state=first.state, nonce=first.nonce, **kwargs)
    second = login(session, registration.id, NOW)
    with pytest.raises(LaunchError) as wrong_nonce:
        storage.consume_login(session, state=second.state, nonce="other", **kwargs)
    assert wrong_nonce.value.check == "nonce"


def test_expired_logins_are_purged(session: Session) -> None:
    registration = ScriptedPlatform().register(session, NOW)
    old = login(session, registration.id, NOW - timedelta(hours=2))
    fresh = login(session, registration.id, NOW)
    assert login_states_repo.purge_expired_login_states(session, NOW) == 1
    assert login_states_repo.peek_login_state(session, old.state) is None
    assert login_states_repo.peek_login_state(session, fresh.state) is not None


@pytest.mark.parametrize(
    "state", [None, "", "nostateprefix", "state-" + "a" * 200, "state-abc;def", "state-é"]
)
def test_state_shape(state: str | None) -> None:
    assert not storage.valid_state_shape(state)
