"""``adaptive-lti audit``: the administrator's commands leave one record each, with who, when,
which platform, what and to what; failed commands leave none; the listing filters by platform,
time and action, and refuses what it cannot read (SQLite and PostgreSQL)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adaptive_lti.cli.audit import parse_since
from adaptive_lti.db.session import make_engine, make_session_factory
from adaptive_lti.db.tables import AuditRecord
from tests.cli.running import run
from tests.design_samples import intro

MOODLE = "https://moodle.example.edu"
CLI_ACTOR = f"cli:{getpass.getuser()}"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def audit_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return session.scalar(select(func.count()).select_from(AuditRecord)) or 0
    finally:
        engine.dispose()


def test_every_admin_command_is_recorded_with_who_and_where(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = run_json(
        capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "a", "--awaiting-approval"
    )
    second = run_json(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "b")
    run_json(capsys, "platform", "approve", str(first["id"]))
    run_json(capsys, "platform", "activate-deployment", str(first["id"]), "7")
    run_json(capsys, "platform", "deactivate-deployment", str(first["id"]), "7")
    run_json(capsys, "platform", "remove-deployment", str(first["id"]), "7")
    key = run_json(capsys, "keys", "rotate")
    newer = run_json(capsys, "keys", "rotate")
    run_json(capsys, "keys", "retire", key["kid"])
    design = tmp_path / "intro.yaml"
    design.write_text(intro(1), encoding="utf-8")
    published = run(
        capsys, "design", "publish", str(design), "--by", "Dana", "--platform", str(first["id"])
    )
    assert published[0] == 0
    run_json(capsys, "platform", "remove", str(second["id"]), "--yes")

    records = run_json(capsys, "audit")
    assert [(r["action"], r["registration_id"], r["target"]) for r in records] == [
        ("registration.add", first["id"], f"registration {first['id']}"),
        ("registration.add", second["id"], f"registration {second['id']}"),
        ("registration.approve", first["id"], f"registration {first['id']}"),
        ("deployment.activate", first["id"], "deployment 7"),
        ("deployment.deactivate", first["id"], "deployment 7"),
        ("deployment.remove", first["id"], "deployment 7"),
        ("key.rotate", None, f"key {key['kid']}"),
        ("key.rotate", None, f"key {newer['kid']}"),
        ("key.retire", None, f"key {key['kid']}"),
        ("design.publish", first["id"], "sample-programming@1"),
        ("registration.remove", second["id"], f"registration {second['id']}"),
    ]
    assert {(r["actor_name"], r["actor_subject"]) for r in records} == {(CLI_ACTOR, None)}
    assert records[0]["details"] == {
        "issuer": MOODLE,
        "client_id": "a",
        "status": "awaiting-approval",
        "deployments": [],
    }
    assert records[9]["details"]["published_by"] == "Dana"
    moments = [datetime.fromisoformat(r["occurred_at"]) for r in records]
    assert moments == sorted(moments)
    assert datetime.now(UTC) - moments[0] < timedelta(minutes=5)

    # One platform's records (the registration removed last keeps its record), then actions.
    mine = run_json(capsys, "audit", "--platform", str(first["id"]))
    assert {r["registration_id"] for r in mine} == {first["id"]} and len(mine) == 6
    removed = run_json(capsys, "audit", "--platform", str(second["id"]))
    assert [r["action"] for r in removed] == ["registration.add", "registration.remove"]
    keys = run_json(capsys, "audit", "--action", "key.rotate", "--action", "key.retire")
    assert [r["action"] for r in keys] == ["key.rotate", "key.rotate", "key.retire"]
    assert run_json(capsys, "audit", "--since", "1h") == records
    assert run_json(capsys, "audit", "--since", "2999-01-01") == []

    code, out, _ = run(capsys, "audit", "--platform", str(first["id"]))
    assert code == 0
    assert "registration.approve" in out and CLI_ACTOR in out and "deployment 7" in out


def test_failed_commands_leave_no_record(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "a")
    assert audit_rows(database) == 1
    for argv in (
        ("platform", "add", "--moodle", MOODLE, "--client-id", "a"),  # a duplicate
        ("platform", "approve", "999"),
        ("platform", "remove", "999"),
        ("platform", "activate-deployment", "999", "1"),
        ("platform", "remove-deployment", "1", "no-such-deployment"),
        ("keys", "retire", "no-such-kid"),
    ):
        code, _out, err = run(capsys, *argv)
        assert code == 1 and err.startswith("error: "), (argv, err)
    assert audit_rows(database) == 1


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--since", "yesterday"), "neither a date or time"),
        (("--since", "99999999999w"), "too far"),
        (("--action", "learner.delete"), "learner.forget"),
        (("--platform", "one"), "platform list"),
        (("--platform", "0"), "not a registration id"),
        (("--platform", str(2**40)), "not a registration id"),
    ],
)
def test_listing_refuses_what_it_cannot_read(
    database: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], words: str
) -> None:
    code, out, err = run(capsys, "audit", *argv)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and words in err, err


def test_empty_record_says_so(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "audit")[:2] == (0, "no audit records match\n")
    assert run_json(capsys, "audit", "--platform", "all") == []


def test_since_reads_dates_times_and_durations() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T09:30+01:00", now) == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2w", now) == now - timedelta(weeks=2)


def test_requeueing_failed_scores_is_recorded(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = run_json(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "a")
    assert run(capsys, "grades", "retry")[0] == 0
    assert run(capsys, "grades", "retry", "--registration", str(platform["id"]))[0] == 0
    retries = run_json(capsys, "audit", "--action", "scores.retry")
    assert [(r["registration_id"], r["details"], r["actor_name"]) for r in retries] == [
        (None, {"requeued": 0}, CLI_ACTOR),
        (platform["id"], {"requeued": 0}, CLI_ACTOR),
    ]


@pytest.mark.parametrize("registration", [str(2**40), "-3", "one"])
def test_requeueing_for_an_impossible_registration_is_a_clear_error(
    database: str, capsys: pytest.CaptureFixture[str], registration: str
) -> None:
    with pytest.raises(SystemExit) as exit_code:
        run(capsys, "grades", "retry", f"--registration={registration}")
    err = capsys.readouterr().err
    assert exit_code.value.code == 2 and "is not a registration id" in err, err
    assert "platform list" in err
    assert audit_rows(database) == 0
