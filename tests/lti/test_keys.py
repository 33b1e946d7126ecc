"""The tool's signing keys: first start, rotation, retirement, JWKS, files with mode 0600."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import ConflictError, NotFoundError
from adaptive_lti.db import tool_keys_repo
from adaptive_lti.lti import keys
from tests.lti.harness import tool_settings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_first_start_creates_one_key_and_publishes_it(session: Session, db_url: str) -> None:
    settings = tool_settings(db_url)
    keys.ensure_signing_key(session, settings, NOW)
    keys.ensure_signing_key(session, settings, NOW)  # idempotent
    published = keys.published_jwks(session)["keys"]
    assert len(published) == 1
    jwk = published[0]
    assert jwk["alg"] == "RS256" and jwk["use"] == "sig" and jwk["kty"] == "RSA"
    assert "d" not in jwk and "p" not in jwk
    # The kid is the RFC 7638 thumbprint of the key.
    assert jwk["kid"] == keys._thumbprint_kid(jwk)


def test_signing_key_verifies_against_the_published_jwks(session: Session, db_url: str) -> None:
    keys.ensure_signing_key(session, tool_settings(db_url), NOW)
    signing = keys.signing_key(session)
    token = jwt.encode(
        {"x": 1}, signing.private_key, algorithm="RS256", headers={"kid": signing.kid}
    )
    jwk = keys.published_jwks(session)["keys"][0]
    public = jwt.PyJWK(jwk)
    assert jwt.decode(token, public.key, algorithms=["RS256"]) == {"x": 1}
    assert "PRIVATE" not in repr(signing) and signing.kid in repr(signing)
    assert keys.signing_key(session).private_key is signing.private_key  # parsed once


def test_rotate_keeps_the_old_key_published_until_retired(session: Session, db_url: str) -> None:
    settings = tool_settings(db_url)
    keys.ensure_signing_key(session, settings, NOW)
    old = keys.signing_key(session).kid
    new = keys.rotate(session, settings, NOW + timedelta(days=90)).kid
    assert keys.signing_key(session).kid == new  # the newest signs
    assert {k["kid"] for k in keys.published_jwks(session)["keys"]} == {old, new}
    keys.retire(session, old, NOW)
    assert [k["kid"] for k in keys.published_jwks(session)["keys"]] == [new]
    listed = {key.kid: key for key in keys.list_keys(session)}
    assert not listed[old].active and listed[old].retired_at is not None
    assert listed[old].private_key_pem == ""  # listings never carry private keys
    with pytest.raises(ConflictError):
        keys.retire(session, old, NOW)
    with pytest.raises(ConflictError, match="only active key"):
        keys.retire(session, new, NOW)
    with pytest.raises(NotFoundError):
        keys.retire(session, "nope", NOW)


def test_key_dir_keeps_private_keys_in_0600_files(
    session: Session, db_url: str, tmp_path: Path
) -> None:
    settings = tool_settings(db_url, key_dir=tmp_path / "keys")
    info = keys.rotate(session, settings, NOW)
    path = tmp_path / "keys" / f"{info.kid}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = tool_keys_repo.list_tool_keys(session)[0]
    assert stored.private_key_path == str(path) and stored.info.private_key_pem == ""
    assert keys.signing_key(session).kid == info.kid
    path.unlink()
    keys._load_private_key.cache_clear()
    with pytest.raises(Exception, match="cannot be read"):
        keys.signing_key(session)


def test_app_start_makes_the_first_key(session_factory, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.lti.harness import harness

    with harness(session_factory, db_url) as h, h.session_factory() as session:
        assert len(tool_keys_repo.list_tool_keys(session, active_only=True)) == 1


def test_start_on_an_unmigrated_database_only_warns(
    new_database_url, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from adaptive_lti.db.session import make_engine, make_session_factory

    url = new_database_url("sqlite")
    engine = make_engine(url)
    try:
        keys.ensure_signing_key_on_start(make_session_factory(engine), tool_settings(url), NOW)
    finally:
        engine.dispose()
    assert "adaptive-lti db upgrade" in caplog.text
