"""``adaptive-lti grades deliver|status|retry`` against a real database and a fake Moodle."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adaptive_lti.cli import grades as grades_cli
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.lti import keys
from adaptive_lti.settings import Settings
from tests.cli.running import run
from tests.lti.fake_platform import (
    LINEITEM_URL,
    FakePlatform,
    add_fake_registration,
    queue_activity_score,
)


def queue_scores(url: str, *users: str) -> FakePlatform:
    """Queue one score per user on Moodle's activity column; returns the fake Moodle."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    try:
        with transaction(make_session_factory(engine)) as session:
            keys.ensure_signing_key(session, Settings(database_url=url), now)
            public_key = keys.signing_key(session).private_key.public_key()
            registration_id = add_fake_registration(session, now)
            for user in users:
                queue_activity_score(session, registration_id, user_id=user, score_given=8, now=now)
    finally:
        engine.dispose()
    return FakePlatform(tool_public_key=public_key)


def test_deliver_once_then_status_shows_what_happened_and_why(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = queue_scores(database, "3", "4")
    assert grades_cli.deliver(Settings(), once=True, transport=platform.transport()) == 0
    out = capsys.readouterr().out
    assert "delivered 1, will retry 0, failed 1" in out
    assert "Moodle refused the score for user 4" in out
    assert [s.payload["userId"] for s in platform.received_scores] == ["3"]

    code, out, _ = run(capsys, "grades", "status")
    assert code == 0
    assert out.startswith("pending 0, delivered 1, failed 1, superseded 0")
    assert "user 4 8/10 'Harness activity'" in out
    assert "they are not a gradable student in this course" in out

    code, out, _ = run(capsys, "grades", "status", "--status", "failed", "--json")
    report = json.loads(out)
    assert report["counts"] == {"pending": 0, "delivered": 1, "failed": 1, "superseded": 0}
    [failed] = report["scores"]
    assert failed["user_id"] == "4"
    assert failed["lineitem_url"] == LINEITEM_URL

    code, out, _ = run(capsys, "grades", "retry")
    assert (code, out.strip()) == (
        0,
        "1 failed score(s) queued again; the delivery worker will send them",
    )
    code, out, _ = run(capsys, "grades", "status", "--json")
    assert json.loads(out)["counts"] == {
        "pending": 1,
        "delivered": 1,
        "failed": 0,
        "superseded": 0,
    }


def test_deliver_once_with_nothing_due(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "grades", "deliver", "--once")
    assert (code, out.strip()) == (0, "delivered 0, will retry 0, failed 0")


def test_a_database_without_the_tables_is_a_clear_error(
    new_database_url: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", new_database_url("sqlite"))
    code, _, err = run(capsys, "grades", "status")
    assert code == 1
    assert "cannot be used" in err
    assert "adaptive-lti db upgrade" in err
