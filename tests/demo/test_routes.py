"""The demo platform's HTTP side, in-process: home page, launch button, authorization endpoint."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from adaptive_lti.cli.app import build_app
from adaptive_lti.db import migrate
from adaptive_lti.demo.platform import PENDING_LAUNCH_COOKIE, DemoPlatform
from adaptive_lti.settings import Settings

BASE = "http://testserver"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    database_url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate.upgrade(database_url)
    return Settings(
        environment="test",
        database_url=database_url,
        base_url=BASE,
        demo_platform=True,
        demo_platform_key_file=tmp_path / "keys" / "demo-platform.pem",
        secret_key="s" * 40,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), base_url=BASE) as client:
        yield client


def form_fields(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action is not None, html
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    return unescape(action.group(1)), {name: unescape(value) for name, value in fields.items()}


def start_launch(client: TestClient, person: str) -> dict[str, str]:
    response = client.post("/demo-platform/launch", data={"person": person})
    assert response.status_code == 200
    action, fields = form_fields(response.text)
    assert action == BASE + "/lti/login"
    return fields


def auth_params(login: dict[str, str], **overrides: str) -> dict[str, str]:
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": login["client_id"],
        "redirect_uri": BASE + "/lti/launch",
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        "state": "the-state",
        "nonce": "the-nonce",
    }
    params.update(overrides)
    return params


def test_root_redirects_to_the_platform_home(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/demo-platform/"


def test_home_lists_every_person_with_a_launch_button(client: TestClient) -> None:
    response = client.get("/demo-platform/")
    assert response.status_code == 200
    for name in ("Ana", "Ben", "Chen", "Dara", "Eve", "Femi", "Gabi", "Irene"):
        assert f"Launch as {name}" in response.text
    assert "prior_programming=experienced" in response.text
    assert BASE + "/demo-platform/jwks.json" in response.text


def test_the_launch_button_logs_in_and_starts_a_third_party_login(client: TestClient) -> None:
    response = client.post("/demo-platform/launch", data={"person": "ben"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "data-autosubmit" in response.text and "demo-autosubmit.js" in response.text
    assert '<button type="submit">' in response.text  # works without JavaScript too
    action, fields = form_fields(response.text)
    assert action == BASE + "/lti/login"
    assert fields["login_hint"] == "4"
    assert fields["iss"] == BASE + "/demo-platform"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(PENDING_LAUNCH_COOKIE + "=")
    assert "Path=/demo-platform" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_an_unknown_person_gets_a_404_page(client: TestClient) -> None:
    response = client.post("/demo-platform/launch", data={"person": "mallory"})
    assert response.status_code == 404
    assert "mallory" in response.text and "home page" in response.text


def test_a_launch_button_without_a_person_gets_a_422_page(client: TestClient) -> None:
    response = client.post("/demo-platform/launch", data={})
    assert response.status_code == 422


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_auth_answers_with_a_form_post_of_a_signed_id_token(
    client: TestClient, method: str
) -> None:
    login = start_launch(client, "chen")
    if method == "GET":
        response = client.get("/demo-platform/auth", params=auth_params(login))
    else:
        response = client.post("/demo-platform/auth", data=auth_params(login))
    assert response.status_code == 200
    action, fields = form_fields(response.text)
    assert action == BASE + "/lti/launch"
    assert fields["state"] == "the-state"
    platform: DemoPlatform = client.app.state.demo_platform  # type: ignore[attr-defined]
    jwks = client.get("/demo-platform/jwks.json").json()
    claims = jwt.decode(
        fields["id_token"],
        jwt.PyJWK(jwks["keys"][0]),
        algorithms=["RS256"],
        audience=platform.client_id,
        issuer=BASE + "/demo-platform",
    )
    assert claims["sub"] == "5" and claims["nonce"] == "the-nonce"
    # The pending launch is used up, as Moodle's session entry.
    assert PENDING_LAUNCH_COOKIE in response.headers["set-cookie"]
    again = client.get("/demo-platform/auth", params=auth_params(login))
    assert again.status_code == 400
    assert "no launch in progress" in again.text


def test_auth_posts_errors_back_to_the_tool(client: TestClient) -> None:
    login = start_launch(client, "ana")
    response = client.get("/demo-platform/auth", params=auth_params(login, login_hint="4"))
    assert response.status_code == 200
    action, fields = form_fields(response.text)
    assert action == BASE + "/lti/launch"
    assert fields == {
        "error": "access_denied",
        "error_description": "login_hint is not the logged-in user",
        "state": "the-state",
    }


def test_auth_without_a_launch_in_progress_gets_a_page(client: TestClient) -> None:
    response = client.get(
        "/demo-platform/auth",
        params=auth_params({"client_id": "x", "login_hint": "3", "lti_message_hint": "7"}),
        headers={"accept": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert "no launch in progress" in body["message"]
    assert "home page" in body["hint"]


def test_auth_refuses_an_unregistered_redirect_uri_without_posting(client: TestClient) -> None:
    login = start_launch(client, "ana")
    response = client.get(
        "/demo-platform/auth",
        params=auth_params(login, redirect_uri="https://evil.example/lti/launch"),
    )
    assert response.status_code == 400
    assert "evil.example" in response.text
    assert "id_token" not in response.text


def test_a_forged_pending_launch_cookie_is_ignored(client: TestClient) -> None:
    login = start_launch(client, "ana")
    genuine = client.cookies.get(PENDING_LAUNCH_COOKIE)
    assert genuine
    client.cookies.clear()
    client.cookies.set(PENDING_LAUNCH_COOKIE, genuine[:-4] + "AAAA", path="/demo-platform")
    response = client.get("/demo-platform/auth", params=auth_params(login))
    assert response.status_code == 400


def test_jwks_and_openid_configuration(client: TestClient) -> None:
    jwks = client.get("/demo-platform/jwks.json")
    assert jwks.status_code == 200
    (key,) = jwks.json()["keys"]
    assert key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    configuration = client.get("/demo-platform/.well-known/openid-configuration").json()
    assert configuration["authorization_endpoint"] == BASE + "/demo-platform/auth"


def test_the_platform_is_absent_unless_asked_for(settings: Settings) -> None:
    plain = settings.model_copy(update={"demo_platform": False})
    with TestClient(build_app(plain), base_url=BASE) as client:
        assert client.get("/demo-platform/").status_code == 404


def test_production_refuses_the_demo_platform() -> None:
    with pytest.raises(ValidationError, match="cannot be turned on in production"):
        Settings(environment="production", secret_key="x" * 40, demo_platform=True)
