"""``adaptive-lti platform ...`` and ``adaptive-lti keys ...`` against a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.running import run

MOODLE = "https://moodle.example.edu"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_add_moodle_list_show_remove(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    added = run_json(
        capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc", "--deployment", "1"
    )
    assert added["issuer"] == MOODLE
    assert added["auth_login_url"] == MOODLE + "/mod/lti/auth.php"
    assert added["auth_token_url"] == MOODLE + "/mod/lti/token.php"
    assert added["jwks_url"] == MOODLE + "/mod/lti/certs.php"
    assert added["deployments"][0] == {
        "deployment_id": "1",
        "active": True,
        "created_at": added["deployments"][0]["created_at"],
    }
    listed = run_json(capsys, "platform", "list")
    assert [item["client_id"] for item in listed] == ["abc"]
    code, out, _ = run(capsys, "platform", "list")
    assert code == 0 and MOODLE in out and "abc" in out
    shown = run_json(capsys, "platform", "show", str(added["id"]))
    assert shown["status"] == "active" and shown["deployments"][0]["deployment_id"] == "1"
    removed = run_json(capsys, "platform", "remove", str(added["id"]), "--yes")
    assert removed["removed"]["id"] == added["id"]
    assert run_json(capsys, "platform", "list") == []


def test_duplicate_registration_is_a_clear_error(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc")
    code, _out, err = run(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc")
    assert code == 1
    assert "already registered" in err and "platform list" in err


def test_unknown_ids_are_clear_errors(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ("platform", "show", "999"),
        ("platform", "remove", "999"),
        ("platform", "approve", "999"),
        ("platform", "activate-deployment", "999", "1"),
        ("keys", "retire", "no-such-kid"),
    ):
        code, _out, err = run(capsys, *argv)
        assert code == 1, argv
        assert err.startswith("error: ") and ("list" in err), err


def test_explicit_endpoints_and_static_key_set(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}))
    added = run_json(
        capsys,
        "platform",
        "add",
        "--issuer",
        "https://canvas.example",
        "--client-id",
        "10000000000001",
        "--auth-login-url",
        "https://canvas.example/api/lti/authorize_redirect",
        "--auth-token-url",
        "https://canvas.example/login/oauth2/token",
        "--jwks-file",
        str(jwks),
    )
    assert added["static_key_set"] is True and added["jwks_url"] is None
    code, _out, err = run(
        capsys, "platform", "add", "--issuer", "x", "--client-id", "y", "--jwks-url", "nope"
    )
    assert code == 1 and "URL" in err
    jwks.write_text("not json")
    code, _out, err = run(
        capsys,
        "platform",
        "add",
        "--moodle",
        "https://other.example",
        "--client-id",
        "z",
        "--jwks-file",
        str(jwks),
    )
    assert code == 1 and "not JSON" in err


def test_deployment_management_and_approval(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    added = run_json(
        capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc", "--awaiting-approval"
    )
    registration = str(added["id"])
    assert added["status"] == "awaiting-approval"
    assert run_json(capsys, "platform", "approve", registration)["status"] == "active"
    assert run_json(capsys, "platform", "activate-deployment", registration, "3")["active"] is True
    assert (
        run_json(capsys, "platform", "deactivate-deployment", registration, "3")["active"] is False
    )
    shown = run_json(capsys, "platform", "show", registration)
    assert shown["deployments"] == [
        {"deployment_id": "3", "active": False, "created_at": shown["deployments"][0]["created_at"]}
    ]
    run_json(capsys, "platform", "remove-deployment", registration, "3")
    assert run_json(capsys, "platform", "show", registration)["deployments"] == []
    code, _out, err = run(capsys, "platform", "remove-deployment", registration, "3")
    assert code == 1 and "not known" in err


def test_keys_list_rotate_retire(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "keys", "list")
    assert len(first) == 1 and first[0]["status"] == "active"
    assert "d" not in first[0]["public_jwk"]  # never the private exponent
    old_kid = first[0]["kid"]
    # The last active key cannot be retired.
    code, _out, err = run(capsys, "keys", "retire", old_kid)
    assert code == 1 and "keys rotate" in err
    new = run_json(capsys, "keys", "rotate")
    assert new["kid"] != old_kid
    assert {key["status"] for key in run_json(capsys, "keys", "list")} == {"active"}
    assert run_json(capsys, "keys", "retire", old_kid) == {"retired": old_kid}
    statuses = {key["kid"]: key["status"] for key in run_json(capsys, "keys", "list")}
    assert statuses == {old_kid: "retired", new["kid"]: "active"}
    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and "PRIVATE" not in out and old_kid in out


def test_missing_database_tables_are_explained(
    new_database_url: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", new_database_url("sqlite"))
    code, _out, err = run(capsys, "platform", "list")
    assert code == 1 and "adaptive-lti db upgrade" in err


def test_a_key_id_starting_with_a_dash_is_a_kid_not_an_option(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Thumbprints are base64url: about one kid in 64 begins with "-".
    code, _out, err = run(capsys, "keys", "retire", "-no-such-key", "--json")
    assert code == 1 and "-no-such-key" in err and "required" not in err


def _record_people(database: str, registration_id: int, subjects: list[str]) -> None:
    """Users and launches recorded under a registration, as launches leave them."""
    from datetime import UTC, datetime

    from adaptive_lti.db.session import make_engine, make_session_factory, transaction
    from adaptive_lti.db.tables import Deployment, Launch, User

    now = datetime.now(UTC)
    engine = make_engine(database)
    try:
        with transaction(make_session_factory(engine)) as session:
            deployment = Deployment(
                registration_id=registration_id, deployment_id="9", active=True, created_at=now
            )
            session.add(deployment)
            for subject in subjects:
                user = User(
                    registration_id=registration_id,
                    subject=subject,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                session.add(user)
                session.flush()
                session.add(
                    Launch(
                        registration_id=registration_id,
                        deployment_id=deployment.id,
                        user_id=user.id,
                        message_type="LtiResourceLinkRequest",
                        target_link_uri="https://tool.example.org/lti/launch",
                        roles=[],
                        roles_short=[],
                        custom={},
                        launched_at=now,
                    )
                )
    finally:
        engine.dispose()


def test_remove_says_what_it_would_delete_and_needs_yes(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 8: 'platform remove' deleted everything recorded under the registration without
    asking. Without --yes it now counts what would go and deletes nothing."""
    added = run_json(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc")
    _record_people(database, added["id"], ["3", "4"])

    code, out, _err = run(capsys, "platform", "remove", str(added["id"]))
    assert code == 1
    assert "Nothing was deleted" in out and f"platform remove {added['id']} --yes" in out
    assert "2 users" in " ".join(out.split()) and "2 launches" in " ".join(out.split())
    assert "learner enrolments" in out and "design bindings" in out
    assert [item["id"] for item in run_json(capsys, "platform", "list")] == [added["id"]]

    code, out, _err = run(capsys, "platform", "remove", str(added["id"]), "--json")
    assert code == 1
    assert json.loads(out)["records"]["users"] == 2

    removed = run_json(capsys, "platform", "remove", str(added["id"]), "--yes")
    assert removed["removed"]["id"] == added["id"]
    assert removed["records"]["launches"] == 2 and removed["records"]["deployments"] == 1
    assert run_json(capsys, "platform", "list") == []


def test_update_edits_endpoints_in_place(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 8: a token URL had to be edited in SQL."""
    added = run_json(
        capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc", "--deployment", "1"
    )
    _record_people(database, added["id"], ["3"])
    updated = run_json(
        capsys,
        "platform",
        "update",
        str(added["id"]),
        "--token-url",
        MOODLE + "/moodle/mod/lti/token.php",
        "--token-audience",
        MOODLE + "/audience",
    )
    assert updated["id"] == added["id"]
    assert updated["auth_token_url"] == MOODLE + "/moodle/mod/lti/token.php"
    assert updated["auth_token_audience"] == MOODLE + "/audience"
    assert updated["auth_login_url"] == added["auth_login_url"]  # unchanged
    assert [d["deployment_id"] for d in updated["deployments"]] == ["1", "9"]
    again = run_json(
        capsys,
        "platform",
        "update",
        str(added["id"]),
        "--auth-login-url",
        MOODLE + "/moodle/mod/lti/auth.php",
        "--jwks-url",
        MOODLE + "/moodle/mod/lti/certs.php",
        "--client-id",
        "new-client",
        "--token-audience",
        "",
    )
    assert again["auth_login_url"] == MOODLE + "/moodle/mod/lti/auth.php"
    assert again["jwks_url"] == MOODLE + "/moodle/mod/lti/certs.php"
    assert again["client_id"] == "new-client" and again["auth_token_audience"] is None

    assert again["static_key_set"] is False

    for argv, words in (
        (("platform", "update", str(added["id"])), "Nothing to change"),
        (("platform", "update", "999", "--name", "x"), "platform list"),
        (("platform", "update", str(added["id"]), "--token-url", "ftp://x"), "http(s) URL"),
    ):
        code, _out, err = run(capsys, *argv)
        assert code == 1, argv
        assert words in err, err


def test_production_refuses_plain_http_platform_urls(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTIVE_LTI_ENVIRONMENT", "production")
    monkeypatch.setenv("ADAPTIVE_LTI_SECRET_KEY", "a-production-secret-that-is-long-enough-0123")
    monkeypatch.setenv("ADAPTIVE_LTI_BASE_URL", "https://tool.example.org")
    code, _out, err = run(
        capsys, "platform", "add", "--moodle", "http://moodle.example.edu", "--client-id", "abc"
    )
    assert code == 1
    assert "http://" in err and "must be https://" in err
    code, _out, err = run(
        capsys,
        "platform",
        "add",
        "--issuer",
        MOODLE,
        "--client-id",
        "abc",
        "--auth-login-url",
        MOODLE + "/auth",
        "--auth-token-url",
        "http://moodle.example.edu/token",
        "--jwks-url",
        MOODLE + "/certs",
    )
    assert code == 1 and "--auth-token-url" in err and "must be https://" in err
    added = run_json(capsys, "platform", "add", "--moodle", MOODLE, "--client-id", "abc")
    code, _out, err = run(
        capsys, "platform", "update", str(added["id"]), "--jwks-url", "http://moodle.example.edu/c"
    )
    assert code == 1 and "must be https://" in err


def test_update_replaces_a_static_key_set_in_place(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old_keys, new_keys = tmp_path / "old.json", tmp_path / "new.json"
    old_keys.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "old", "n": "x", "e": "AQAB"}]}))
    new_keys.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "new", "n": "y", "e": "AQAB"}]}))
    added = run_json(
        capsys,
        "platform",
        "add",
        "--moodle",
        MOODLE,
        "--client-id",
        "abc",
        "--jwks-file",
        str(old_keys),
    )
    assert added["static_key_set"] is True
    updated = run_json(capsys, "platform", "update", str(added["id"]), "--jwks-file", str(new_keys))
    assert updated["id"] == added["id"] and updated["static_key_set"] is True
    back_to_url = run_json(
        capsys, "platform", "update", str(added["id"]), "--jwks-url", MOODLE + "/mod/lti/certs.php"
    )
    assert back_to_url["static_key_set"] is False
    assert back_to_url["jwks_url"] == MOODLE + "/mod/lti/certs.php"
    code, _out, err = run(
        capsys,
        "platform",
        "update",
        str(added["id"]),
        "--jwks-file",
        str(new_keys),
        "--jwks-url",
        MOODLE + "/x",
    )
    assert code == 1 and "not both" in err
