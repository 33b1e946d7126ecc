"""The tool session token: bound values, signature, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from adaptive_lti.core.errors import PermissionDeniedError
from adaptive_lti.lti import session as tool_session

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SECRET = "s" * 40


def make() -> tool_session.ToolSession:
    return tool_session.new_session(
        launch_id=7,
        registration_id=1,
        deployment_pk=2,
        context_pk=3,
        resource_link_pk=4,
        user_pk=5,
        subject="3",
        roles=("Instructor", "TeachingAssistant"),
        is_instructor=True,
        now=NOW,
        ttl_seconds=3600,
    )


def test_round_trip_keeps_every_bound_value() -> None:
    original = make()
    token = tool_session.issue(original, SECRET, NOW)
    assert tool_session.verify(token, SECRET, NOW + timedelta(minutes=59)) == original


def test_expired_session_is_refused() -> None:
    token = tool_session.issue(make(), SECRET, NOW)
    with pytest.raises(PermissionDeniedError, match="expired"):
        tool_session.verify(token, SECRET, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        jwt.encode({"lid": 1}, "another-secret-that-is-long-enough-1234", algorithm="HS256"),
        "x" * 10_000,
    ],
)
def test_invalid_tokens_are_refused(token: str) -> None:
    with pytest.raises(PermissionDeniedError):
        tool_session.verify(token, SECRET, NOW)


def test_token_signed_with_another_secret_is_refused() -> None:
    token = tool_session.issue(make(), "t" * 40, NOW)
    with pytest.raises(PermissionDeniedError, match="not valid"):
        tool_session.verify(token, SECRET, NOW)


def test_the_secret_itself_does_not_sign_sessions() -> None:
    """A token made with the raw secret (as a naive implementation would) is refused."""
    claims = {
        "iss": "adaptive-lti",
        "aud": "adaptive-lti/tool-session",
        "iat": 1,
        "exp": 2**31,
        "lid": 1,
        "reg": 1,
        "dep": 1,
        "ins": True,
    }
    forged = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(PermissionDeniedError):
        tool_session.verify(forged, SECRET, NOW)
