"""``adaptive-lti learners export|forget``: one platform user's data out as JSON (an access
request), and erased (an erasure request) only after saying what goes, scores the platform never
received first; both audited, each in one transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.roster import Member
from adaptive_lti.db import audit_repo, roster_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import AuditRecord, LearnerEvent, ScoreOutbox
from tests.cli.running import run
from tests.database_checksum import table_checksums
from tests.design_samples import LEARNER, NOW
from tests.services.test_progress import launch, published_example, walk


@contextmanager
def database_session(url: str) -> Iterator[Session]:
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def checksums(url: str) -> dict[str, str]:
    with database_session(url) as session:
        return table_checksums(session)


def audit_actions(url: str) -> list[tuple[str, str, dict[str, Any]]]:
    with database_session(url) as session:
        rows = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        return [(row.action, row.target, dict(row.details)) for row in rows]


@pytest.fixture
def course(database: str) -> str:
    """Learner 3 finished the example course (intake, checks, a choice, scores queued, one of
    them delivered); learner 4 started it; member 5 is on the roster and never launched."""
    with database_session(database) as session:
        published_example(session)
        view = launch(session, "3", {"prior_programming": "none"})
        walk(
            session,
            view,
            intake={"goal": "interest"},
            right={"diagnostic": [1], "project": [4]},
            elective="elective-games",
            now=NOW,
        )
        other = launch(session, "4", {"prior_programming": "none"})
        context_pk = other.enrolment.context_pk
        assert context_pk is not None
        [queued] = session.scalars(select(ScoreOutbox).where(ScoreOutbox.user_sub == "3"))
        session.add(  # an earlier score of the same learner, delivered
            ScoreOutbox(
                registration_id=queued.registration_id,
                line_item_id=queued.line_item_id,
                user_sub="3",
                payload={**queued.payload, "scoreGiven": 40.0},
                status="delivered",
                attempts=1,
                next_attempt_at=NOW,
                dedupe_key=queued.dedupe_key + "-earlier",
                created_at=NOW,
                delivered_at=NOW,
            )
        )
        audit_repo.append(  # learner 4 teaches another activity, and reset someone there
            session,
            audit_repo.Actor(name="Learner 4", subject="4"),
            audit_repo.AuditAction.learner_reset,
            other.enrolment.registration_id,
            "enrolment 99 (user 7)",
            {"reason": "new term"},
            now=NOW,
        )
        roster_repo.replace_members(
            session,
            other.enrolment.registration_id,
            context_pk,
            [
                Member(sub, (LEARNER,), ("Learner",), name=f"Learner {sub}")
                for sub in ("3", "4", "5")
            ],
            NOW,
        )
    return database


def export(capsys: pytest.CaptureFixture[str], user: str) -> dict[str, Any]:
    code, out, err = run(capsys, "learners", "export", "--platform", "1", "--user", user)
    assert code == 0, err
    value: dict[str, Any] = json.loads(out)
    value.pop("exported_at")
    return value


def test_export_prints_everything_stored_about_one_user(
    course: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = export(capsys, "3")
    assert exported["user_sub"] == "3" and exported["registration_id"] == 1
    assert exported["user"]["subject"] == "3" and exported["user"]["name"] == "Learner 3"
    assert (
        len(exported["launches"]) == 1
        and exported["launches"][0]["user_id"] == (exported["user"]["id"])
    )
    [enrolment] = exported["enrolments"]
    assert enrolment["design_id"] == "intro-programming"
    with database_session(course) as session:
        events = session.scalar(
            select(func.count())
            .select_from(LearnerEvent)
            .where(LearnerEvent.enrolment_id == enrolment["id"])
        )
        scores = session.scalars(
            select(ScoreOutbox.id).where(ScoreOutbox.user_sub == "3").order_by(ScoreOutbox.id)
        ).all()
    assert len(exported["events"]) == events and events > 10
    assert [e["sequence"] for e in exported["events"]] == list(range(events))
    assert len(exported["snapshots"]) == 1 and exported["snapshots"][0]["completed"] is True
    assert exported["intake_answers"] == [
        {
            "enrolment_id": enrolment["id"],
            "activity": "welcome",
            "answers": {"goal": "interest"},
            "occurred_at": exported["intake_answers"][0]["occurred_at"],
        }
    ]
    assert len(scores) == 2
    assert [s["id"] for s in exported["scores"]["queued"]] == scores[:1]
    assert [s["id"] for s in exported["scores"]["delivered"]] == scores[1:]
    assert exported["scores"]["delivered"][0]["payload"]["scoreGiven"] == 40.0
    assert [r["user_sub"] for r in exported["roster"]] == ["3"]
    assert exported["actions"] == []
    [action] = export(capsys, "4")["actions"]
    assert (action["action"], action["target"], action["actor_subject"]) == (
        "learner.reset",
        "enrolment 99 (user 7)",
        "4",
    )
    # Nobody else's rows.
    assert all(e["enrolment_id"] == enrolment["id"] for e in exported["events"])
    assert export(capsys, "5")["roster"][0]["name"] == "Learner 5"
    assert export(capsys, "5")["user"] is None

    exports = [entry for entry in audit_actions(course) if entry[0] == "learner.export"]
    assert [target for _action, target, _details in exports] == [
        "user 3",
        "user 4",
        "user 5",
        "user 5",
    ]
    details = exports[0][2]
    assert details["counts"] == {
        "users": 1,
        "launches": 1,
        "enrolments": 1,
        "events": events,
        "snapshots": 1,
        "scores": len(scores),
        "roster_rows": 1,
    }


def test_forget_says_what_it_would_delete_and_needs_yes(
    course: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = checksums(course)
    others = (export(capsys, "4"), export(capsys, "5"))
    before_export = checksums(course)  # the two exports' audit records
    code, out, err = run(capsys, "learners", "forget", "--platform", "1", "--user", "3")
    assert code == 1
    assert "nothing was deleted" in err and "--yes" in err
    lines = out.splitlines()
    assert "not yet delivered" in lines[0] and "never reach its gradebook" in lines[0]
    assert lines[1].startswith("  score ") and "(pending" in lines[1]
    assert lines[-1].startswith("would delete for user 3 of platform 1: 1 user row, 1 launch")
    assert "1 roster row" in lines[-1]
    assert checksums(course) == before_export != before

    code, out, err = run(
        capsys, "learners", "forget", "--platform", "1", "--user", "3", "--yes", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["deleted"] is True and report["counts"]["users"] == 1
    undelivered = report["undelivered_scores"]
    assert [s["status"] for s in undelivered] == ["pending"]
    assert undelivered[0]["score_given"] == 80.0 and undelivered[0]["line_item"]

    code, _out, err = run(capsys, "learners", "export", "--platform", "1", "--user", "3")
    assert code == 1 and "stores nothing about them" in err
    with database_session(course) as session:
        assert session.scalar(select(func.count()).where(ScoreOutbox.user_sub == "3")) == 0
    # The other learners are exactly as they were.
    assert (export(capsys, "4"), export(capsys, "5")) == others
    forgotten = [entry for entry in audit_actions(course) if entry[0] == "learner.forget"]
    assert forgotten == [
        (
            "learner.forget",
            "user 3",
            {
                "deleted": report["counts"],
                "undelivered_scores": [s["id"] for s in undelivered],
            },
        )
    ]
    assert "Learner 3" not in json.dumps(audit_actions(course))


def test_a_member_who_never_launched_can_be_forgotten(
    course: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "learners", "forget", "--platform", "1", "--user", "5", "--yes")
    assert code == 0, err
    assert out.strip() == (
        "deleted for user 5 of platform 1: 0 user rows, 0 launches, 0 enrolments, 0 events, "
        "0 snapshots, 0 scores, 1 roster row"
    )


def test_a_failure_half_way_leaves_everything_as_it_was(
    course: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = checksums(course)

    def failing_append(*_args: Any, **_kwargs: Any) -> None:
        raise InvalidInputError("the audit record could not be written")

    # The rows are deleted first and the audit entry written last: its failure undoes them.
    monkeypatch.setattr("adaptive_lti.services.privacy.audit_repo.append", failing_append)
    code, _out, err = run(capsys, "learners", "forget", "--platform", "1", "--user", "3", "--yes")
    assert code == 1 and "could not be written" in err
    assert checksums(course) == before


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--platform", "1", "--user", "no-such-user"), "has no user 'no-such-user'"),
        (("--platform", "99", "--user", "3"), "platform list"),
        (("--platform", str(2**40), "--user", "3"), "not a registration id"),
        (("--platform", "-1", "--user", "3"), "not a registration id"),
        (("--platform", "one", "--user", "3"), "platform list"),
        (("--platform", "1", "--user", " "), "platform user id of 1 to 255"),
        (("--platform", "1", "--user", "x" * 300), "platform user id of 1 to 255"),
    ],
)
def test_unknown_people_and_platforms_are_clear_errors_and_change_nothing(
    course: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], words: str
) -> None:
    before = checksums(course)
    for command in (("export",), ("forget", "--yes")):
        code, out, err = run(capsys, "learners", *command, *argv)
        assert code == 1 and out == "", (command, out)
        assert err.startswith("error: ") and words in err, err
    assert checksums(course) == before
