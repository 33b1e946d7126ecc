"""``adaptive-lti status`` on SQLite and PostgreSQL: registrations, deployments, the outbox and
recent refusals, as text and as JSON; refusal counts stay bounded (one row per hour and check,
nothing older than a week)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from adaptive_lti.db import operations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import Deployment, PlatformRegistration, RefusalCount
from tests.cli.running import run


def _registration(session, issuer: str, status: str, now: datetime) -> int:  # type: ignore[no-untyped-def]
    row = PlatformRegistration(
        issuer=issuer,
        client_id="tool",
        auth_login_url="https://lms.example/auth",
        auth_token_url="https://lms.example/token",
        status=status,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def test_status_summarises_an_empty_database(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "status")
    assert (code, err) == (0, "")
    assert "registrations: 0 active, 0 awaiting approval" in out
    assert "score outbox: 0 pending, 0 failed" in out
    assert "refused logins and launches: 0 in the last 24 hours, 0 in the last 7 days" in out


def test_status_counts_registrations_and_refusals(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    engine = make_engine(database)
    try:
        with transaction(make_session_factory(engine)) as session:
            active = _registration(session, "https://a.example", "active", now)
            _registration(session, "https://b.example", "awaiting-approval", now)
            session.add(Deployment(registration_id=active, deployment_id="1", created_at=now))
            session.add(
                Deployment(registration_id=active, deployment_id="2", active=False, created_at=now)
            )
            for _ in range(3):
                operations_repo.record_refusal(
                    session, "launch", "signature", "The id_token's signature does not match", now
                )
            operations_repo.record_refusal(
                session, "login", "iss", "No platform is registered", now - timedelta(days=2)
            )
    finally:
        engine.dispose()
    code, out, _err = run(capsys, "status", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["registrations"] == {"active": 1, "awaiting_approval": 1}
    assert summary["deployments"] == {"active": 1, "inactive": 1}
    assert summary["outbox"]["pending"] == 0
    assert summary["refusals"]["last_24_hours"] == 3
    assert summary["refusals"]["last_7_days"] == 4
    first = summary["refusals"]["by_check"][0]
    assert (first["step"], first["check"], first["count"]) == ("launch", "signature", 3)
    assert "signature does not match" in first["last_message"]
    code, text, _err = run(capsys, "status")
    assert "1 awaiting approval ('adaptive-lti platform list' shows them)" in text
    assert "deployments: 1 active, 1 inactive" in text
    assert "launch: signature" in text


def test_refusal_counts_are_bounded(database: str) -> None:
    now = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
    engine = make_engine(database)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            operations_repo.record_refusal(session, "launch", "exp", "old", now - timedelta(days=8))
        for _ in range(50):
            with transaction(factory) as session:
                operations_repo.record_refusal(session, "launch", "exp", "x" * 5000, now)
        with factory() as session:
            rows = session.scalars(select(RefusalCount)).all()
            assert [(row.count, len(row.last_message)) for row in rows] == [(50, 300)]
            assert session.scalar(select(func.count()).select_from(RefusalCount)) == 1
    finally:
        engine.dispose()


def test_status_on_an_unusable_database_says_what_to_do(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    code, _out, err = run(capsys, "status")
    assert code == 1
    assert "adaptive-lti db upgrade" in err
