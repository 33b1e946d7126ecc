"""No default secret: without ADAPTIVE_LTI_SECRET_KEY the tool makes a random one on first start
and keeps it beside its keys (the database, or a 0600 file in key_dir), so a session token
signed with a guessable constant is refused, and every process on the database agrees."""

from __future__ import annotations

import hashlib
import hmac
import stat
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import transaction
from adaptive_lti.lti import keys
from adaptive_lti.lti import session as tool_session
from adaptive_lti.settings import Environment, Settings
from tests.lti.harness import LtiHarness, harness, tool_settings
from tests.lti.scripted_platform import INSTRUCTOR

GUESSABLE = ["change-me", "", "secret"]


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    # No secret configured: what 'adaptive-lti serve' gets from an environment without one.
    with harness(session_factory, db_url, secret_key=None) as lti:
        yield lti


def _instructor_token(h: LtiHarness) -> str:
    assert h.full_launch(role=INSTRUCTOR, subject="4").status_code == 200
    token = h.client.cookies.get(tool_session.COOKIE)
    assert token
    h.client.cookies.clear()
    real = h.client.get("/lti/session", headers={tool_session.HEADER: token})
    assert real.status_code == 200 and real.json()["is_instructor"] is True
    return token


def _forge(token: str, constant: str) -> str:
    """The same claims signed as the tool would sign them with ``constant`` as its secret."""
    claims = jwt.decode(token, options={"verify_signature": False})
    key = hmac.new(constant.encode(), b"adaptive-lti tool session v1", hashlib.sha256).digest()
    return jwt.encode(claims, key, algorithm="HS256")


@pytest.mark.parametrize("constant", GUESSABLE)
def test_a_token_signed_with_a_constant_is_refused(h: LtiHarness, constant: str) -> None:
    token = _instructor_token(h)
    forged = _forge(token, constant)
    for path in ("/lti/session", "/lti/course"):
        response = h.client.get(path, headers={tool_session.HEADER: forged})
        assert response.status_code == 403, (constant, path, response.text)
    # The real token still works: the refusal is the signature, nothing else.
    assert h.client.get("/lti/session", headers={tool_session.HEADER: token}).status_code == 200


def test_the_generated_secret_is_random_and_long(h: LtiHarness) -> None:
    _instructor_token(h)
    secret = h.app.state.settings.secret_key
    assert secret not in GUESSABLE and len(secret) >= 48


def test_processes_sharing_the_database_share_the_secret(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with harness(session_factory, db_url, secret_key=None) as first:
        token = _instructor_token(first)
        # A second app process on the same database (isolate=False: the same rows).
        with harness(
            first.session_factory, db_url, secret_key=None, register=False, isolate=False
        ) as second:
            response = second.client.get("/lti/session", headers={tool_session.HEADER: token})
            assert response.status_code == 200, response.text
            assert second.app.state.settings.secret_key == first.app.state.settings.secret_key


def test_key_dir_keeps_the_secret_in_a_0600_file(
    session_factory: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    settings = tool_settings(db_url, secret_key=None, key_dir=tmp_path / "keys")
    with transaction(session_factory) as session:
        secret = keys.tool_secret(session, settings)
    path = tmp_path / "keys" / keys.SECRET_FILE_NAME
    assert path.read_text(encoding="ascii").strip() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with transaction(session_factory) as session:
        assert keys.tool_secret(session, settings) == secret  # read back, not made again


def test_a_configured_secret_is_used_as_it_is(session: Session, db_url: str) -> None:
    settings = tool_settings(db_url, secret_key="configured-" + "x" * 40)
    assert keys.tool_secret(session, settings) == "configured-" + "x" * 40


def test_no_change_me_default_and_production_refuses_a_short_secret() -> None:
    assert Settings(_env_file=None).secret_key is None  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(_env_file=None, environment=Environment.production, secret_key="short")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="placeholder"):
        Settings(_env_file=None, secret_key="change-me")  # type: ignore[call-arg]
    # A blank variable (ADAPTIVE_LTI_SECRET_KEY= in a compose file) means "not configured".
    assert Settings(_env_file=None, secret_key="  ").secret_key is None  # type: ignore[call-arg]


def test_production_without_a_configured_secret_starts_with_a_generated_one() -> None:
    settings = Settings(_env_file=None, environment=Environment.production)  # type: ignore[call-arg]
    assert settings.secret_key is None
