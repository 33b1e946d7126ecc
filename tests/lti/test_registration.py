"""LTI Dynamic Registration client: configuration checks, the request, storage (no web layer)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.tables import PlatformRegistration
from adaptive_lti.lti import registration
from adaptive_lti.settings import Settings
from tests.design_samples import NOW
from tests.lti.fake_registration_platform import (
    CONFIGURATION_URL,
    SITE,
    FakeMoodle,
    moodle_configuration,
)


def settings(**values: object) -> Settings:
    base: dict[str, object] = {"base_url": "https://tool.example.org", "environment": "test"}
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def fetch(
    moodle: FakeMoodle, url: str = CONFIGURATION_URL, **values: object
) -> registration.PlatformConfiguration:
    with registration.http_client(moodle.transport()) as client:
        return registration.fetch_platform_configuration(client, url, settings(**values))


def test_moodles_configuration_is_read() -> None:
    found = fetch(FakeMoodle())
    assert found.issuer == SITE
    assert found.registration_endpoint == SITE + "/mod/lti/openid-registration.php"
    assert found.product_family_code == "moodle"
    assert found.authorization_server is None


def test_a_moodle_in_a_subdirectory_and_on_a_port_is_accepted() -> None:
    site = "https://example.edu:8443/moodle"
    moodle = FakeMoodle(site=site, configuration=moodle_configuration(site))
    assert fetch(moodle, site + "/mod/lti/openid-configuration.php").issuer == site


@pytest.mark.parametrize(
    "issuer",
    [
        "https://moodle.example.edu:8443",  # another port
        "http://moodle.example.edu",  # another scheme
        "https://moodle.example.edu.evil.org",
    ],
)
def test_an_issuer_on_another_origin_is_refused(issuer: str) -> None:
    moodle = FakeMoodle()
    moodle.configuration["issuer"] = issuer
    with pytest.raises(registration.RegistrationError, match="not on the same site"):
        fetch(moodle)


def test_an_issuer_with_a_query_is_refused() -> None:
    moodle = FakeMoodle()
    moodle.configuration["issuer"] = SITE + "?x=1"
    with pytest.raises(registration.RegistrationError, match="query or fragment"):
        fetch(moodle)


def test_production_requires_https_endpoints() -> None:
    moodle = FakeMoodle()
    moodle.configuration["jwks_uri"] = "http://moodle.example.edu/mod/lti/certs.php"
    secret = "x" * 40
    with pytest.raises(registration.RegistrationError, match="jwks_uri"):
        fetch(moodle, environment="production", secret_key=secret)
    assert fetch(moodle).jwks_uri.startswith("http://")  # development and tests allow http


def test_a_slow_platform_is_reported_as_such() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    moodle = FakeMoodle(configuration_response=slow)
    with pytest.raises(registration.RegistrationError, match="did not answer in time") as raised:
        fetch(moodle)
    assert raised.value.status_code == 502


def test_an_oversized_configuration_is_refused() -> None:
    moodle = FakeMoodle(
        configuration_response=lambda request: httpx.Response(
            200, content=b'{"a": "' + b"x" * (600 * 1024) + b'"}'
        )
    )
    with pytest.raises(registration.RegistrationError, match="larger than"):
        fetch(moodle)


def test_without_a_token_no_authorization_header_is_sent() -> None:
    moodle = FakeMoodle(tokens={""})
    with registration.http_client(moodle.transport()) as client:
        configuration = registration.fetch_platform_configuration(
            client, CONFIGURATION_URL, settings()
        )
        body = registration.tool_registration_request(settings(), ("openid",))
        result = registration.post_registration(client, configuration, None, body)
    assert moodle.authorizations == [None]
    assert (result.client_id, result.deployment_id) == ("DynClient42", "7")


def test_numeric_client_and_deployment_ids_become_strings() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201,
            json={
                "client_id": 12345,
                registration.TOOL_CONFIGURATION: {"deployment_id": 3},
                "scope": "openid",
            },
        )

    moodle = FakeMoodle()
    configuration = fetch(moodle)
    with registration.http_client(httpx.MockTransport(answer)) as client:
        result = registration.post_registration(client, configuration, "t", {})
    assert (result.client_id, result.deployment_id, result.scope) == ("12345", "3", "openid")


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PlatformRegistration)) or 0


def test_register_with_platform_stores_the_token_audience(session: Session) -> None:
    moodle = FakeMoodle()
    moodle.configuration["authorization_server"] = SITE + "/oauth2/audience"
    with registration.http_client(moodle.transport()) as client:
        done = registration.register_with_platform(
            session,
            client,
            settings(registration_requires_approval=True),
            openid_configuration=CONFIGURATION_URL,
            registration_token="single-use-token",
            now=NOW,
        )
    stored = registrations_repo.get_registration(session, done.registration.id)
    assert stored.auth_token_audience == SITE + "/oauth2/audience"
    assert stored.status is RegistrationStatus.awaiting_approval
    assert stored.name == "moodle (dynamic registration)"
    assert done.requested_scopes == settings().registration_scopes  # Moodle supports them all
    assert done.deployment_id == "7"


def test_a_client_id_registered_already_is_updated_in_place(session: Session) -> None:
    """Moodle's "Update" answers with the client id the tool had: the registration is updated
    (endpoints from the configuration, the deployment added), its status and deployments kept."""
    existing = registrations_repo.add_registration(
        session,
        issuer=SITE,
        client_id="DynClient42",
        auth_login_url=SITE + "/old/auth.php",
        auth_token_url=SITE + "/old/token.php",
        jwks_url=SITE + "/old/certs.php",
        status=RegistrationStatus.awaiting_approval,
        deployment_ids=["2"],
        now=NOW,
    )
    with registration.http_client(FakeMoodle().transport()) as client:
        done = registration.register_with_platform(
            session,
            client,
            settings(),
            openid_configuration=CONFIGURATION_URL,
            registration_token="single-use-token",
            now=NOW,
        )
    assert done.updated
    assert count(session) == 1
    stored = registrations_repo.get_registration(session, existing.id)
    assert stored.status is RegistrationStatus.awaiting_approval
    assert stored.auth_login_url == SITE + "/mod/lti/auth.php"
    assert stored.auth_token_url == SITE + "/mod/lti/token.php"
    assert stored.jwks_url == SITE + "/mod/lti/certs.php"
    deployments = registrations_repo.list_deployments(session, existing.id)
    assert [(d.deployment_id, d.active) for d in deployments] == [("2", True), ("7", True)]


def _moodle_update_token(client_id: str, scope: str = "reg-update") -> str:
    import base64
    import json

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return ".".join([part({"alg": "RS256"}), part({"sub": client_id, "scope": scope}), "sig"])


def test_moodles_update_token_names_the_registration_whose_client_id_changes(
    session: Session,
) -> None:
    """Moodle's "Update" token (scope reg-update) names the tool it updates: should the
    platform answer with another client id, that registration takes it, in place."""
    existing = registrations_repo.add_registration(
        session,
        issuer=SITE,
        client_id="OldClient1",
        auth_login_url=SITE + "/mod/lti/auth.php",
        auth_token_url=SITE + "/mod/lti/token.php",
        jwks_url=SITE + "/mod/lti/certs.php",
        deployment_ids=["7"],
        now=NOW,
    )
    token = _moodle_update_token("OldClient1")
    with registration.http_client(FakeMoodle(tokens={token}).transport()) as client:
        done = registration.register_with_platform(
            session,
            client,
            settings(),
            openid_configuration=CONFIGURATION_URL,
            registration_token=token,
            now=NOW,
        )
    assert done.updated and done.registration.id == existing.id
    assert done.registration.client_id == "DynClient42"
    assert count(session) == 1


def test_a_new_registration_token_adds_a_registration(session: Session) -> None:
    registrations_repo.add_registration(
        session,
        issuer=SITE,
        client_id="OldClient1",
        auth_login_url=SITE + "/mod/lti/auth.php",
        auth_token_url=SITE + "/mod/lti/token.php",
        jwks_url=SITE + "/mod/lti/certs.php",
        now=NOW,
    )
    token = _moodle_update_token("OldClient1", scope="reg")
    with registration.http_client(FakeMoodle(tokens={token}).transport()) as client:
        done = registration.register_with_platform(
            session,
            client,
            settings(),
            openid_configuration=CONFIGURATION_URL,
            registration_token=token,
            now=NOW,
        )
    assert not done.updated and done.registration.client_id == "DynClient42"
    assert count(session) == 2
