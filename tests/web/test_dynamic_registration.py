"""Dynamic registration through the app against a fake Moodle (httpx.MockTransport).

The administrator's browser opens ``/lti/register?openid_configuration=...&registration_token=...``;
the tool reads the configuration, registers, stores the registration and its deployment, and shows
the page that closes the window. Every failure leaves the database as it was.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import AuditRecord, Deployment, Launch, PlatformRegistration, User
from tests.lti.fake_registration_platform import (
    CONFIGURATION_URL,
    SITE,
    TOOL_CONFIGURATION,
    FakeMoodle,
)
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import INSTRUCTOR, ScriptedPlatform

STATIC = Path(__file__).resolve().parents[2] / "src/adaptive_lti/web/static"
TOKEN = "single-use-token"


@pytest.fixture
def moodle() -> FakeMoodle:
    return FakeMoodle()


@contextmanager
def make_harness(
    session_factory: sessionmaker[Session], db_url: str, moodle: FakeMoodle, **settings: Any
) -> Iterator[LtiHarness]:
    platform = ScriptedPlatform(client_id=moodle.client_id)
    with harness(session_factory, db_url, platform=platform, register=False, **settings) as h:
        # The fake Moodle answers registration; the scripted platform serves the JWKS (certs.php).
        moodle.fallback = platform.server.handle
        h.app.state.http_transport = moodle.transport()
        h.mark()  # no registration yet: a refused one must leave every table like this
        yield h


@pytest.fixture
def h(
    session_factory: sessionmaker[Session], db_url: str, moodle: FakeMoodle
) -> Iterator[LtiHarness]:
    with make_harness(session_factory, db_url, moodle) as lti:
        yield lti


def stored(h: LtiHarness) -> tuple[PlatformRegistration, list[Deployment]]:
    """The one registration stored, and its deployments."""
    with h.session_factory() as session:
        [registration] = session.scalars(select(PlatformRegistration)).all()
        deployments = session.scalars(
            select(Deployment).where(Deployment.registration_id == registration.id)
        ).all()
        return registration, list(deployments)


def recorded_launch(h: LtiHarness) -> tuple[int, str, str | None]:
    """(registration id, deployment id, user sub) of the one launch recorded."""
    with h.session_factory() as session:
        [row] = session.execute(
            select(Launch.registration_id, Deployment.deployment_id, User.subject)
            .join(Deployment, Deployment.id == Launch.deployment_id)
            .outerjoin(User, User.id == Launch.user_id)
        ).all()
        return row[0], row[1], row[2]


def counts(h: LtiHarness) -> tuple[int, int]:
    with h.session_factory() as session:
        return (
            session.scalar(select(func.count()).select_from(PlatformRegistration)) or 0,
            session.scalar(select(func.count()).select_from(Deployment)) or 0,
        )


def register(
    h: LtiHarness, *, url: str = CONFIGURATION_URL, token: str | None = TOKEN, json: bool = False
) -> httpx.Response:
    params = {"openid_configuration": url}
    if token is not None:
        params["registration_token"] = token
    headers = {"Accept": "application/json"} if json else {}
    return h.client.get("/lti/register", params=params, headers=headers)


def test_registers_with_every_field_moodle_requires(h: LtiHarness, moodle: FakeMoodle) -> None:
    response = register(h)
    assert response.status_code == 200, response.text
    assert moodle.authorizations == [f"Bearer {TOKEN}"]
    [body] = moodle.registrations
    assert body["application_type"] == "web"
    assert body["response_types"] == ["id_token"]
    assert body["grant_types"] == ["implicit", "client_credentials"]
    assert body["initiate_login_uri"] == "http://testserver/lti/login"
    assert body["redirect_uris"] == ["http://testserver/lti/launch"]
    assert body["client_name"] == "Adaptive learning paths"
    assert body["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["scope"].split() == [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    ]
    tool = body[TOOL_CONFIGURATION]
    assert tool["domain"] == "testserver"
    assert tool["target_link_uri"] == "http://testserver/lti/launch"
    assert tool["claims"] == ["iss", "sub", "name", "given_name", "family_name", "email"]
    assert tool["description"]
    assert [m["type"] for m in tool["messages"]] == [
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    ]
    deep_linking = tool["messages"][1]
    assert deep_linking["label"] and deep_linking["placements"] == ["ContentArea"]

    with h.session_factory() as session:
        stored = registrations_repo.find_registration(session, SITE, "DynClient42")
        assert stored is not None
        assert stored.status is RegistrationStatus.active  # no approval outside production
        assert stored.auth_login_url == SITE + "/mod/lti/auth.php"
        assert stored.auth_token_url == SITE + "/mod/lti/token.php"
        assert stored.jwks_url == SITE + "/mod/lti/certs.php"
        deployment = registrations_repo.find_deployment(session, stored.id, "7")
        assert deployment is not None and deployment.active
        [audit] = session.scalars(select(AuditRecord)).all()
    assert (audit.action, audit.registration_id, audit.target) == (
        "registration.add",
        stored.id,
        f"registration {stored.id}",
    )
    assert (audit.actor_name, audit.actor_subject) == (f"dynamic registration by {SITE}", None)
    assert audit.details == {
        "issuer": SITE,
        "client_id": "DynClient42",
        "status": "active",
        "deployments": ["7"],
    }


def test_the_final_page_closes_the_window_as_the_spec_says(h: LtiHarness) -> None:
    response = register(h)
    page = response.text
    assert "is registered with https://moodle.example.edu" in page
    assert "DynClient42" in page and ">7<" in page
    assert "registration-close.js" in page and "data-lti-close" in page
    assert response.headers["cache-control"] == "no-store"
    # What Moodle really shows: the tool is a preconfigured tool, not in the activity chooser.
    words = " ".join(html.unescape(page).split())
    assert '"Show as preconfigured tool": it is not in the activity chooser itself' in words
    assert 'under "Preconfigured tool"' in words
    assert "Registration updated" not in words  # a first registration
    script = (STATIC / "registration-close.js").read_text()
    assert 'postMessage({ subject: "org.imsglobal.lti.close" }, "*")' in script
    assert "window.opener || " in script and "window.parent" in script
    assert h.client.get("/static/registration-close.js").status_code == 200


def test_a_launch_from_the_new_registration_is_accepted(h: LtiHarness) -> None:
    assert register(h).status_code == 200
    h.platform.deployment_id = "7"
    response = h.full_launch(role=INSTRUCTOR, subject="4")
    assert response.status_code == 200, response.text
    registration, _deployments = stored(h)
    assert recorded_launch(h) == (registration.id, "7", "4")


def test_configured_scopes_and_claims_are_asked_for(
    session_factory: sessionmaker[Session], db_url: str, moodle: FakeMoodle
) -> None:
    settings = {
        "registration_scopes": (
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://example.org/scope/not-offered-by-moodle",
        ),
        "registration_claims": ("iss", "sub"),
        "tool_name": "Paths",
    }
    with make_harness(session_factory, db_url, moodle, **settings) as h:
        assert register(h).status_code == 200
        registration, deployments = stored(h)
    assert (registration.issuer, registration.client_id) == (SITE, "DynClient42")
    assert registration.name == "moodle (dynamic registration)"
    assert registration.status == RegistrationStatus.active.value
    assert [(d.deployment_id, d.active) for d in deployments] == [("7", True)]
    [body] = moodle.registrations
    # A scope the platform does not list in scopes_supported is not asked for.
    assert body["scope"] == "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    assert body[TOOL_CONFIGURATION]["claims"] == ["iss", "sub"]
    assert body["client_name"] == "Paths"


def test_approval_flow(
    session_factory: sessionmaker[Session], db_url: str, moodle: FakeMoodle
) -> None:
    with make_harness(session_factory, db_url, moodle, registration_requires_approval=True) as h:
        response = register(h)
        assert response.status_code == 200
        with h.session_factory() as session:
            stored = registrations_repo.find_registration(session, SITE, "DynClient42")
        assert stored is not None and stored.status is RegistrationStatus.awaiting_approval
        assert f"adaptive-lti platform approve {stored.id}" in response.text
        assert "Waiting for approval" in response.text

        h.platform.deployment_id = "7"
        # Refused from the login on, with the command that approves it.
        refused = h.login()
        assert refused.status_code == 403
        assert f"adaptive-lti platform approve {stored.id}" in refused.text

        with transaction(h.session_factory) as session:
            registrations_repo.set_registration_status(
                session, stored.id, RegistrationStatus.active
            )
        accepted = h.full_launch(role=INSTRUCTOR, subject="4")
        assert accepted.status_code == 200, accepted.text
        assert recorded_launch(h) == (stored.id, "7", "4")


def test_production_requires_approval_by_default(db_url: str) -> None:
    from tests.lti.harness import tool_settings

    assert tool_settings(db_url, environment="production").approval_required_for_registrations
    assert not tool_settings(db_url).approval_required_for_registrations
    assert not tool_settings(
        db_url, environment="production", registration_requires_approval=False
    ).approval_required_for_registrations


# --- failures store nothing ----------------------------------------------------------------


def assert_refused(h: LtiHarness, response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    for word in words:
        assert word in body["message"], body
    assert body["hint"]
    assert counts(h) == (0, 0)
    assert h.unchanged_since_mark()


def test_without_parameters_the_page_says_where_to_paste_the_url(h: LtiHarness) -> None:
    response = h.client.get("/lti/register", headers={"Accept": "application/json"})
    assert response.status_code == 422
    assert "Manage tools" in response.json()["hint"]
    assert "http://testserver/lti/register" in response.json()["hint"]
    assert counts(h) == (0, 0)
    assert h.unchanged_since_mark()


def test_an_unreachable_configuration(h: LtiHarness, moodle: FakeMoodle) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    moodle.configuration_response = down
    assert_refused(h, register(h, json=True), 502, "could not reach", "OpenID configuration")


def test_a_configuration_that_is_not_json(h: LtiHarness, moodle: FakeMoodle) -> None:
    moodle.configuration_response = lambda request: httpx.Response(
        200, text="<html>Log in</html>", headers={"Content-Type": "text/html"}
    )
    assert_refused(h, register(h, json=True), 502, "is not JSON")


def test_a_configuration_that_answers_404(h: LtiHarness, moodle: FakeMoodle) -> None:
    moodle.configuration_response = lambda request: httpx.Response(404, text="gone")
    assert_refused(h, register(h, json=True), 502, "HTTP 404")


def test_an_issuer_on_another_site(h: LtiHarness, moodle: FakeMoodle) -> None:
    moodle.configuration["issuer"] = "https://evil.example.org"
    assert_refused(h, register(h, json=True), 400, "not on the same site")


@pytest.mark.parametrize(
    "field", ["registration_endpoint", "jwks_uri", "token_endpoint", "authorization_endpoint"]
)
def test_a_configuration_without_an_endpoint(h: LtiHarness, moodle: FakeMoodle, field: str) -> None:
    del moodle.configuration[field]
    assert_refused(h, register(h, json=True), 400, field)


def test_a_platform_that_does_not_sign_with_rs256(h: LtiHarness, moodle: FakeMoodle) -> None:
    moodle.configuration["id_token_signing_alg_values_supported"] = ["HS256"]
    assert_refused(h, register(h, json=True), 400, "RS256")


def test_a_refused_registration_reports_the_platforms_words(
    h: LtiHarness, moodle: FakeMoodle
) -> None:
    response = register(h, token="not-the-token", json=True)
    assert_refused(h, response, 502, "refused the registration (HTTP 401)", "Unknown or used token")


def test_a_registration_token_works_once(h: LtiHarness, moodle: FakeMoodle) -> None:
    assert register(h).status_code == 200
    h.mark()
    again = register(h, json=True)
    assert again.status_code == 502
    assert counts(h) == (1, 1)
    assert h.unchanged_since_mark()  # the first registration, exactly as it was


def test_an_answer_without_client_id(h: LtiHarness, moodle: FakeMoodle) -> None:
    def no_client_id(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"response_types": ["id_token"]})

    moodle.fallback = None
    original = moodle.handle

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return no_client_id(request)
        return original(request)

    h.app.state.http_transport = httpx.MockTransport(handle)
    assert_refused(h, register(h, json=True), 502, "no client_id")


def test_production_refuses_a_plain_http_configuration_url(
    session_factory: sessionmaker[Session], db_url: str, moodle: FakeMoodle
) -> None:
    with make_harness(session_factory, db_url, moodle, environment="production") as h:
        response = register(h, url="http://moodle.example.edu/mod/lti/openid-configuration.php")
        assert response.status_code == 400
        assert counts(h) == (0, 0)
        assert h.unchanged_since_mark()
        assert moodle.registrations == []


def test_registration_can_be_turned_off(
    session_factory: sessionmaker[Session], db_url: str, moodle: FakeMoodle
) -> None:
    with make_harness(session_factory, db_url, moodle, dynamic_registration_enabled=False) as h:
        response = register(h, json=True)
        assert response.status_code == 404
        assert "turned off" in response.json()["message"]
        assert counts(h) == (0, 0)
        assert h.unchanged_since_mark()
        assert moodle.registrations == [] and moodle.authorizations == []


def test_a_failure_page_in_the_browser_also_offers_to_close_the_window(
    h: LtiHarness, moodle: FakeMoodle
) -> None:
    moodle.configuration["issuer"] = "https://evil.example.org"
    response = register(h)
    assert response.status_code == 400
    assert "could not be registered" in response.text
    assert "not on the same site" in response.text
    assert "Nothing was stored" in response.text
    assert "data-lti-close" in response.text and "registration-close.js" in response.text
    assert counts(h) == (0, 0)
    assert h.unchanged_since_mark()
