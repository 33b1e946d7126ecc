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
    removed = run_json(capsys, "platform", "remove", str(added["id"]))
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
