"""OIDC login initiation: the login rows of lti-security.md."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.settings import UnknownDeploymentPolicy
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import CLIENT_ID, ISSUER, LAUNCH_URL


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def refused_login(h: LtiHarness, status: int, check: str, **params: str | None) -> str:
    before = h.checksums()
    response = h.client.get(
        "/lti/login",
        params=h.login_params(**params),
        headers={"Accept": "application/json"},
        follow_redirects=False,
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["check"] == check
    assert body["hint"]
    assert h.checksums() == before, "a refused login stored something"
    assert "set-cookie" not in response.headers
    message: str = body["message"]
    return message


def test_missing_iss_is_refused(h: LtiHarness) -> None:
    refused_login(h, 400, "issuer (iss)", iss=None)


def test_unknown_iss_is_refused(h: LtiHarness) -> None:
    message = refused_login(h, 400, "issuer (iss)", iss="https://unknown.example")
    assert "https://unknown.example" in message


def test_unknown_client_id_is_refused(h: LtiHarness) -> None:
    refused_login(h, 400, "client id", client_id="not-ours")


def test_missing_login_hint_is_refused(h: LtiHarness) -> None:
    refused_login(h, 400, "login hint", login_hint=None)


def test_missing_target_link_uri_is_refused(h: LtiHarness) -> None:
    refused_login(h, 400, "target link URI", target_link_uri=None)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/lti/launch",
        "http://testserver.evil.example/lti/launch",
        "https://testserver/lti/launch",  # another scheme is another origin
        "javascript:alert(1)",
        "//evil.example/",
    ],
)
def test_target_link_uri_off_the_tools_origin_is_refused(h: LtiHarness, target: str) -> None:
    refused_login(h, 400, "target link URI", target_link_uri=target)


def test_known_inactive_deployment_is_refused(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        found = registrations_repo.find_registration(session, ISSUER, CLIENT_ID)
        assert found is not None
        registrations_repo.set_deployment_active(
            session, found.id, "1", active=False, now=h.clock.now
        )
    message = refused_login(h, 403, "deployment registered")
    # Deliberately deactivated: not "waiting for an administrator" (issue 8).
    assert "was deactivated by an administrator" in message
    assert "not active yet" not in message and "waiting for an administrator" not in message


def test_unknown_deployment_under_reject_policy_is_refused(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with harness(
        session_factory, db_url, unknown_deployment_policy=UnknownDeploymentPolicy.reject
    ) as h:
        refused_login(h, 403, "deployment registered", lti_deployment_id="99")


def test_unknown_deployment_under_record_inactive_policy_continues(h: LtiHarness) -> None:
    # The login's deployment id is not signed: the launch, whose is, records it.
    response = h.login(lti_deployment_id="99")
    assert response.status_code == 302


def test_registration_awaiting_approval_is_refused(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        found = registrations_repo.find_registration(session, ISSUER, CLIENT_ID)
        assert found is not None
        registrations_repo.set_registration_status(
            session, found.id, RegistrationStatus.awaiting_approval
        )
    message = refused_login(h, 403, "registration approved")
    assert "approval" in message


def test_login_without_client_id_uses_the_only_registration(h: LtiHarness) -> None:
    assert h.login(client_id=None).status_code == 302


def test_login_without_client_id_is_refused_when_the_issuer_has_several(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        registrations_repo.add_registration(
            session,
            issuer=ISSUER,
            client_id="second-client",
            auth_login_url=ISSUER + "/mod/lti/auth.php",
            auth_token_url=ISSUER + "/mod/lti/token.php",
            jwks_url=ISSUER + "/mod/lti/certs.php",
            now=h.clock.now,
        )
    refused_login(h, 400, "client id", client_id=None)


def test_two_logins_get_different_random_state_and_nonce(h: LtiHarness) -> None:
    first, second = h.start(), h.start()
    assert first[0] != second[0] and first[1] != second[1]
    for state, nonce in (first, second):
        # token_urlsafe(32): 43 characters of base64url, 256 random bits (>= 128 required).
        assert len(state.removeprefix("state-")) >= 43 and len(nonce) >= 43
    assert h.counts()["lti_login_state"] == 2


def test_redirect_to_the_registered_auth_url_golden(h: LtiHarness) -> None:
    response = h.login()
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://moodle.example.edu/mod/lti/auth.php"
    )
    query = parse_qs(location.query, keep_blank_values=True)
    state, nonce = query.pop("state")[0], query.pop("nonce")[0]
    assert state.startswith("state-") and nonce
    assert query == {
        "scope": ["openid"],
        "response_type": ["id_token"],
        "response_mode": ["form_post"],
        "prompt": ["none"],
        "client_id": [CLIENT_ID],
        "redirect_uri": [LAUNCH_URL],
        "login_hint": ["3"],
        "lti_message_hint": ["1"],
    }


def test_login_by_post_works_like_get(h: LtiHarness) -> None:
    response = h.login(method="POST")
    assert response.status_code == 302
    assert "response_mode=form_post" in response.headers["location"]


def test_state_cookie_on_plain_http_is_lax_and_httponly(h: LtiHarness) -> None:
    response = h.login()
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("lti1p3-state-")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/lti" in lowered
    assert "secure" not in lowered


def test_state_cookie_on_https_is_partitioned_samesite_none_secure(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with harness(session_factory, db_url, base_url="https://testserver") as h:
        response = h.client.get(
            "https://testserver/lti/login",
            params=h.login_params(target_link_uri="https://testserver/lti/launch"),
            follow_redirects=False,
        )
        assert response.status_code == 302
        assert (
            "redirect_uri=https%3A%2F%2Ftestserver%2Flti%2Flaunch" in response.headers["location"]
        )
        lowered = response.headers["set-cookie"].lower()
        for attribute in ("secure", "samesite=none", "partitioned", "httponly"):
            assert attribute in lowered


def test_login_with_lti_storage_target_puts_state_in_platform_storage(h: LtiHarness) -> None:
    response = h.login(lti_storage_target="_parent")
    assert response.status_code == 200
    assert 'data-mode="put"' in response.text and 'data-target="_parent"' in response.text
    assert 'data-origin="https://moodle.example.edu"' in response.text
    assert "lti-storage.js" in response.text
    assert "set-cookie" in response.headers  # the cookie is set too, for browsers that keep it


def test_launch_proved_by_platform_storage_is_accepted(h: LtiHarness) -> None:
    response = h.login(lti_storage_target="_parent")
    state = response.text.split('data-state="')[1].split('"')[0]
    nonce = response.text.split('data-nonce="')[1].split('"')[0]
    h.client.cookies.clear()  # the iframe refused the cookie
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    # Without the proof, the tool asks the platform's storage (a page that re-posts).
    asking = h.launch(token, state)
    assert asking.status_code == 200 and 'data-mode="get"' in asking.text
    assert h.counts()["lti_launch"] == 0
    # The re-post carries the state read back from platform storage.
    accepted = h.launch(token, state, lti_storage_state=state)
    assert accepted.status_code == 200
    assert h.counts()["lti_launch"] == 1


def test_wrong_platform_storage_proof_falls_back_to_a_new_window(h: LtiHarness) -> None:
    response = h.login(lti_storage_target="_parent")
    state = response.text.split('data-state="')[1].split('"')[0]
    nonce = response.text.split('data-nonce="')[1].split('"')[0]
    h.client.cookies.clear()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    answer = h.launch(token, state, lti_storage_state="state-forged")
    assert answer.status_code == 401 and "Open in a new window" in answer.text


def test_login_page_errors_are_html_by_default(h: LtiHarness) -> None:
    response = h.client.get("/lti/login", follow_redirects=False)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Launch refused: issuer (iss)" in response.text
    assert "What to do:" in response.text and "correlation id" in response.text
