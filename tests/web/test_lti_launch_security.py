"""Every launch row of lti-security.md, and certification's known-bad payloads, through the app.

Each refused case checks the status, the check named in the answer, and that the database is
unchanged (row counts of users, contexts, links, launches, login states and deployments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db import migrate, registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory
from adaptive_lti.settings import UnknownDeploymentPolicy
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import CLIENT_ID, LTI, ScriptedPlatform, forge_token, rsa_key

Claims = dict[str, Any]


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def assert_refused(
    h: LtiHarness,
    response: httpx.Response,
    status: int,
    check: str,
    before: dict[str, str],
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert check in body["check"], body
    assert body["message"] and body["hint"] and body["correlation_id"]
    assert h.checksums() == before, "a refused launch changed the database"
    return body


def launch_with(
    h: LtiHarness,
    mutate: Callable[[Claims], None] | None = None,
    **sign_options: Any,
) -> tuple[httpx.Response, dict[str, str]]:
    """Log in, build the claims (mutated), sign, launch; return the answer and the table checksums
    taken after the login (so the login's own state row is part of 'before')."""
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now, mutate=mutate)
    return h.launch(h.platform.sign(claims, **sign_options), state, json=True), before


def remove(*names: str) -> Callable[[Claims], None]:
    def mutate(claims: Claims) -> None:
        for name in names:
            claims.pop(name, None)

    return mutate


def setting(name: str, value: Any) -> Callable[[Claims], None]:
    def mutate(claims: Claims) -> None:
        claims[name] = value

    return mutate


# -- row 1: state ---------------------------------------------------------------------------


def test_missing_state_is_refused(h: LtiHarness) -> None:
    _state, nonce = h.start()
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    assert_refused(h, h.launch(token, None, json=True), 401, "state", before)


def test_wrong_state_is_refused(h: LtiHarness) -> None:
    _state, nonce = h.start()
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    response = h.launch(token, "state-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", json=True)
    assert_refused(h, response, 401, "state", before)


def test_replayed_launch_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    assert h.launch(token, state).status_code == 200
    before = h.checksums()
    # The same browser (cookie jar kept) posts the same id_token and state again.
    h.client.cookies.set(f"lti1p3-{state}", state, path="/lti")
    assert_refused(h, h.launch(token, state, json=True), 401, "state", before)


def test_state_not_bound_to_this_browser_offers_a_new_window(
    h: LtiHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Moodle deletes its hint's launchid on first use: the new window restarts the launch
    from Moodle's mod/lti/launch.php for the hint's course module, not with the used hint."""
    state, nonce = h.start(lti_message_hint='{"cmid":7,"launchid":"ltilaunch1_123"}')
    h.client.cookies.clear()  # the browser refused the cookie inside the iframe
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    with caplog.at_level("INFO", logger="adaptive_lti.web.routes.lti"):
        response = h.launch(token, state)
    assert response.status_code == 401
    assert "Open in a new window" in response.text
    assert 'href="https://moodle.example.edu/mod/lti/launch.php?id=7"' in response.text
    assert "launchid" not in response.text and 'target="_blank"' in response.text
    assert h.checksums() == before  # the login is still there for... nobody: it expires
    [record] = [r for r in caplog.records if "new-window fallback" in r.getMessage()]
    assert record.__dict__["reason"] == "state-cookie-missing"
    assert record.__dict__["relaunch_route"] == "moodle-launch-php"
    assert record.__dict__["platform_family"] == "moodle"


def test_a_moodle_hint_that_is_the_bare_course_module_id_relaunches_it(h: LtiHarness) -> None:
    state, nonce = h.start(lti_message_hint="12")
    h.client.cookies.clear()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    response = h.launch(token, state)
    assert 'href="https://moodle.example.edu/mod/lti/launch.php?id=12"' in response.text


def test_another_platform_gets_its_login_initiation_again(h: LtiHarness) -> None:
    state, nonce = h.start()

    def canvas(claims: dict[str, Any]) -> None:
        claims[LTI + "tool_platform"] = {"product_family_code": "canvas"}

    h.client.cookies.clear()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now, mutate=canvas))
    response = h.launch(token, state)
    assert response.status_code == 401
    assert "/lti/login?iss=" in response.text and "mod/lti/launch.php" not in response.text


def test_a_state_cookie_from_another_login_does_not_bind(h: LtiHarness) -> None:
    state_a, _nonce_a = h.start()
    state_b, nonce_b = h.start()
    cookie_a = h.client.cookies.get(f"lti1p3-{state_a}")
    h.client.cookies.clear()
    h.client.cookies.set(f"lti1p3-{state_a}", cookie_a or "", path="/lti")
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce_b, now=h.clock.now))
    response = h.launch(token, state_b)
    assert response.status_code == 401 and "new window" in response.text
    assert h.checksums() == before


# -- row 2: the platform's error POST -------------------------------------------------------


def test_platform_error_post_gets_a_friendly_page(h: LtiHarness) -> None:
    before = h.checksums()
    response = h.client.post(
        "/lti/launch",
        data={
            "error": "invalid_request",
            "error_description": "Invalid redirect URI",
            "state": "x",
        },
    )
    assert response.status_code == 400
    assert "The platform could not open the activity" in response.text
    assert "Invalid redirect URI" in response.text and "invalid_request" in response.text
    assert h.checksums() == before


def test_platform_login_required_error_says_to_log_in(h: LtiHarness) -> None:
    response = h.client.post("/lti/launch", data={"error": "login_required"})
    assert response.status_code == 400
    assert "not logged in" in response.text


# -- row 3: JWT form and algorithm ----------------------------------------------------------


def test_two_part_token_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    two_parts = ".".join(token.split(".")[:2])
    assert_refused(h, h.launch(two_parts, state, json=True), 401, "token format", before)


def test_alg_none_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now)
    token = forge_token({"alg": "none", "kid": h.platform.kid}, claims)
    assert_refused(h, h.launch(token, state, json=True), 401, "signing algorithm", before)


def test_hs256_signed_with_the_public_key_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now)
    public_pem = h.platform.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The classic algorithm-confusion attack: HMAC keyed with the platform's public key.
    import hashlib
    import hmac

    header = {"alg": "HS256", "kid": h.platform.kid, "typ": "JWT"}
    unsigned = forge_token(header, claims).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    token = unsigned + "." + forge_token({}, {}, signature).rsplit(".", 1)[1]
    assert_refused(h, h.launch(token, state, json=True), 401, "signing algorithm", before)


def test_rs384_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, algorithm="RS384")
    assert_refused(h, response, 401, "signing algorithm", before)


# -- row 4: kid and the platform's keys -----------------------------------------------------


def test_token_without_kid_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, kid=None)
    assert_refused(h, response, 401, "key id (kid)", before)


def test_token_with_a_wrong_kid_is_refused_after_one_refetch(h: LtiHarness) -> None:
    assert h.full_launch().status_code == 200  # warms the JWKS cache
    fetches = len(h.platform.server.fetches)
    response, before = launch_with(h, kid="no-such-key")
    assert_refused(h, response, 401, "platform signing key", before)
    assert len(h.platform.server.fetches) == fetches + 1


def test_platform_key_rotation_succeeds_after_one_refetch(h: LtiHarness) -> None:
    assert h.full_launch().status_code == 200
    assert len(h.platform.server.fetches) == 1
    h.platform.rotate(1)
    assert h.full_launch().status_code == 200
    assert len(h.platform.server.fetches) == 2
    assert h.full_launch().status_code == 200  # the new key is cached now
    assert len(h.platform.server.fetches) == 2


def test_a_normal_launch_makes_no_outbound_call_once_the_keys_are_cached(h: LtiHarness) -> None:
    for _ in range(3):
        assert h.full_launch().status_code == 200
    assert len(h.platform.server.fetches) == 1


@pytest.mark.parametrize(
    ("mode", "words"),
    [("down", "could not be fetched"), ("not-json", "not JSON"), ("http-500", "HTTP 500")],
)
def test_jwks_url_down_or_garbage_gives_a_clear_error(h: LtiHarness, mode: str, words: str) -> None:
    h.platform.server.mode = mode
    response, before = launch_with(h)
    # 503: the launch could not be checked, nothing is wrong with it (it may work in a minute).
    body = assert_refused(h, response, 503, "platform signing key", before)
    assert words in body["message"]
    assert "JWKS URL" in body["hint"]


# -- row 5: signature first -----------------------------------------------------------------


def test_tampered_payload_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    header, _payload, signature = token.split(".")
    claims = h.platform.claims(nonce=nonce, now=h.clock.now)
    claims[LTI + "roles"] = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]
    forged_payload = forge_token({}, claims).split(".")[1]
    tampered = f"{header}.{forged_payload}.{signature}"
    assert_refused(h, h.launch(tampered, state, json=True), 401, "signature", before)


def test_forged_token_with_a_valid_nonce_consumes_nothing(h: LtiHarness) -> None:
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now)
    forged = h.platform.sign(claims, key=rsa_key(5))  # right kid, attacker's key
    assert_refused(h, h.launch(forged, state, json=True), 401, "signature", before)
    # State and nonce are untouched: the genuine launch still succeeds with them.
    genuine = h.platform.sign(claims)
    assert h.launch(genuine, state).status_code == 200


# -- row 6: issuer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer", ["https://moodle.example.edu/", "http://moodle.example.edu", "https://evil.example"]
)
def test_issuer_must_match_exactly(h: LtiHarness, issuer: str) -> None:
    response, before = launch_with(h, setting("iss", issuer))
    assert_refused(h, response, 401, "issuer (iss)", before)


# -- rows 7, 8: audience and authorized party ----------------------------------------------


def test_token_for_another_client_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, setting("aud", "other-client"))
    body = assert_refused(h, response, 401, "audience (aud)", before)
    assert CLIENT_ID in body["message"]


def test_moodle_legacy_consumer_key_in_aud_is_explained(h: LtiHarness) -> None:
    response, before = launch_with(h, setting("aud", "12345"))
    body = assert_refused(h, response, 401, "audience (aud)", before)
    assert "aud is '12345', expected the client id 'Xc7CLIENTIDx9'" in body["message"]
    assert "clear the activity's consumer key" in body["hint"]


def test_audience_list_without_us_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, setting("aud", ["a-client", "b-client"]))
    assert_refused(h, response, 401, "audience (aud)", before)


def test_audience_list_with_us_and_azp_is_accepted(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims["aud"] = ["another", CLIENT_ID]
        claims["azp"] = CLIENT_ID

    assert h.full_launch(mutate=mutate).status_code == 200


def test_audience_list_without_azp_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, setting("aud", [CLIENT_ID, "another"]))
    assert_refused(h, response, 401, "authorized party (azp)", before)


def test_other_azp_is_refused(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims["aud"] = [CLIENT_ID, "another"]
        claims["azp"] = "another"

    response, before = launch_with(h, mutate)
    assert_refused(h, response, 401, "audience (aud)", before)


def test_single_audience_with_a_foreign_azp_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, setting("azp", "another"))
    assert_refused(h, response, 401, "authorized party (azp)", before)


# -- row 9: times ---------------------------------------------------------------------------


def test_expired_token_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    h.clock.advance(60 + 6)  # exp = iat + 60, leeway 5 s
    assert_refused(h, h.launch(token, state, json=True), 401, "expiry (exp)", before)


def test_expiry_within_the_leeway_is_accepted(h: LtiHarness) -> None:
    state, nonce = h.start()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    h.clock.advance(60 + 4)
    assert h.launch(token, state).status_code == 200


def test_iat_ten_minutes_ahead_is_refused(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims["iat"] += 600
        claims["exp"] += 600

    response, before = launch_with(h, mutate)
    assert_refused(h, response, 401, "issued at (iat)", before)


def test_iat_one_hour_old_is_refused(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims["iat"] -= 3600  # exp stays in the future: only the age bound catches it

    response, before = launch_with(h, mutate)
    assert_refused(h, response, 401, "issued at (iat)", before)


# -- row 10: nonce --------------------------------------------------------------------------


def test_missing_nonce_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, remove("nonce"))
    assert_refused(h, response, 401, "nonce", before)


def test_unknown_nonce_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, setting("nonce", "a-nonce-we-never-issued"))
    assert_refused(h, response, 401, "nonce", before)


def test_nonce_of_another_login_is_refused(h: LtiHarness) -> None:
    _state_a, nonce_a = h.start()
    state_b, _nonce_b = h.start()
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce_a, now=h.clock.now))
    assert_refused(h, h.launch(token, state_b, json=True), 401, "nonce", before)


def test_same_id_token_posted_twice_second_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    assert h.launch(token, state).status_code == 200
    # A new login gives a fresh state; the old token's nonce is gone with its login.
    state_2, _ = h.start()
    before = h.checksums()
    assert_refused(h, h.launch(token, state_2, json=True), 401, "nonce", before)


# -- rows 11, 12, 13: version, message type, deployment -------------------------------------


@pytest.mark.parametrize("mutate", [setting(LTI + "version", "1.2.0"), remove(LTI + "version")])
def test_lti_version_must_be_1_3_0(h: LtiHarness, mutate: Callable[[Claims], None]) -> None:
    response, before = launch_with(h, mutate)
    assert_refused(h, response, 400, "LTI version", before)


@pytest.mark.parametrize(
    "mutate", [remove(LTI + "message_type"), setting(LTI + "message_type", "LtiStrangeRequest")]
)
def test_message_type_must_be_known(h: LtiHarness, mutate: Callable[[Claims], None]) -> None:
    response, before = launch_with(h, mutate)
    assert_refused(h, response, 400, "message type", before)


def test_missing_deployment_id_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, remove(LTI + "deployment_id"))
    assert_refused(h, response, 400, "deployment id", before)


@contextmanager
def own_database(new_database_url: Any, backend: str, **overrides: Any) -> Iterator[LtiHarness]:
    """An app on a database of its own, for writes that must outlive a refused launch (the
    test's rolled-back connection would undo them along with the request)."""
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with harness(make_session_factory(engine), url, isolate=False, **overrides) as lti:
            yield lti
    finally:
        engine.dispose()


def test_unknown_deployment_is_recorded_inactive_and_explained(
    new_database_url: Any, backend: str
) -> None:
    with own_database(new_database_url, backend) as h:
        state, nonce = h.start(lti_deployment_id=None)
        before = h.checksums()
        claims = h.platform.claims(nonce=nonce, now=h.clock.now)
        claims[LTI + "deployment_id"] = "7"
        response = h.launch(h.platform.sign(claims), state, json=True)
        assert response.status_code == 403
        body = response.json()
        assert body["check"] == "deployment registered"
        registration_id = _registration_id(h)
        assert f"adaptive-lti platform activate-deployment {registration_id} '7'" in body["hint"]
        assert "not active yet" in body["message"] and "deactivated" not in body["message"]
        after = h.checksums()
        assert after.pop("lti_deployment").startswith("2:") and before.pop(
            "lti_deployment"
        ).startswith("1:")
        assert after == before  # only the inactive deployment was recorded
        with h.session_factory() as session:
            recorded = registrations_repo.find_deployment(session, registration_id, "7")
        assert recorded is not None and not recorded.active


def test_unknown_deployment_is_refused_under_the_reject_policy(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with harness(
        session_factory, db_url, unknown_deployment_policy=UnknownDeploymentPolicy.reject
    ) as h:
        state, nonce = h.start(lti_deployment_id=None)
        before = h.checksums()
        claims = h.platform.claims(nonce=nonce, now=h.clock.now)
        claims[LTI + "deployment_id"] = "7"
        response = h.launch(h.platform.sign(claims), state, json=True)
        body = assert_refused(h, response, 403, "deployment registered", before)
        assert "not registered" in body["message"]


def _registration_id(h: LtiHarness) -> int:
    with h.session_factory() as session:
        found = registrations_repo.find_registration(
            session, h.platform.issuer, h.platform.client_id
        )
        assert found is not None
        return found.id


# -- row 14: target_link_uri ----------------------------------------------------------------


def test_target_link_uri_must_equal_the_logins(h: LtiHarness) -> None:
    response, before = launch_with(
        h, setting(LTI + "target_link_uri", "http://testserver/lti/launch?other=1")
    )
    assert_refused(h, response, 401, "target link URI", before)


# -- rows 16, 17, 18 ------------------------------------------------------------------------


def test_missing_sub_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, remove("sub"))
    assert_refused(h, response, 400, "user (sub)", before)


def test_missing_resource_link_id_is_refused(h: LtiHarness) -> None:
    response, before = launch_with(h, setting(LTI + "resource_link", {"title": "no id"}))
    assert_refused(h, response, 400, "resource link id", before)


def deep_linking(settings: dict[str, Any] | None) -> Callable[[Claims], None]:
    def mutate(claims: Claims) -> None:
        claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
        claims.pop(LTI + "resource_link")
        claims[LTI + "roles"] = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]
        if settings is None:
            claims.pop("https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings", None)
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = settings

    return mutate


@pytest.mark.parametrize(
    "settings",
    [
        None,
        {"accept_types": ["ltiResourceLink"]},
        {"deep_link_return_url": "https://moodle.example.edu/mod/lti/contentitem_return.php"},
    ],
)
def test_deep_linking_request_without_its_settings_is_refused(
    h: LtiHarness, settings: dict[str, Any] | None
) -> None:
    response, before = launch_with(h, deep_linking(settings))
    assert_refused(h, response, 400, "deep linking settings", before)


def test_deep_linking_request_with_settings_is_accepted(h: LtiHarness) -> None:
    settings = {
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "deep_link_return_url": "https://moodle.example.edu/mod/lti/contentitem_return.php?course=2",
    }
    response = h.full_launch(mutate=deep_linking(settings))
    assert response.status_code == 200
    assert "Welcome," not in response.text  # not the learner's landing page


# -- certification's known-bad payloads -----------------------------------------------------


def _all_lti_claims_removed(claims: Claims) -> None:
    for name in [name for name in claims if name.startswith("https://purl.imsglobal.org/")]:
        claims.pop(name)


def _timestamps_incorrect(claims: Claims) -> None:
    claims["iat"] -= 7200
    claims["exp"] -= 7200


CERTIFICATION_BAD = {
    "no kid": ({"kid": None}, None, 401, "key id (kid)"),
    "incorrect kid": ({"kid": "imaginary-kid"}, None, 401, "platform signing key"),
    "wrong LTI version": ({}, setting(LTI + "version", "1.2.0"), 400, "LTI version"),
    "no LTI version": ({}, remove(LTI + "version"), 400, "LTI version"),
    "missing LTI claims": ({}, _all_lti_claims_removed, 400, "LTI version"),
    "timestamps incorrect": ({}, _timestamps_incorrect, 401, "expiry (exp)"),
    "message_type missing": ({}, remove(LTI + "message_type"), 400, "message type"),
    "roles missing": ({}, remove(LTI + "roles"), 400, "roles"),
    "deployment_id missing": ({}, remove(LTI + "deployment_id"), 400, "deployment id"),
    "resource_link id missing": ({}, remove(LTI + "resource_link"), 400, "resource link id"),
    "sub missing": ({}, remove("sub"), 400, "user (sub)"),
}


@pytest.mark.parametrize("case", sorted(CERTIFICATION_BAD))
def test_certification_known_bad_payload_is_refused(h: LtiHarness, case: str) -> None:
    sign_options, mutate, status, check = CERTIFICATION_BAD[case]
    response, before = launch_with(h, mutate, **sign_options)
    assert_refused(h, response, status, check, before)


def test_certification_not_a_1_3_jwt_is_refused(h: LtiHarness) -> None:
    """An LTI 1.1-style launch (an OAuth 1 form) or any non-JWT id_token."""
    state, _ = h.start()
    before = h.checksums()
    for token in [
        "not-a-jwt",
        "a.b.c",
        jwt.encode({"x": 1}, "a-shared-secret-long-enough-for-hs256!!", algorithm="HS256"),
    ]:
        response = h.launch(token, state, json=True)
        assert response.status_code == 401, response.text
        assert response.json()["check"] in {"token format", "signing algorithm"}
    assert h.checksums() == before


# -- a login served by one process, the launch by another -----------------------------------


def test_login_on_one_instance_launch_on_another(new_database_url, backend: str) -> None:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    migrate.upgrade(url)
    platform = ScriptedPlatform()
    engine_a, engine_b = make_engine(url), make_engine(url)
    try:
        with (
            harness(make_session_factory(engine_a), url, platform=platform, isolate=False) as first,
            harness(
                make_session_factory(engine_b),
                url,
                platform=platform,
                register=False,
                isolate=False,
            ) as second,
        ):
            state, nonce = first.start()
            # The browser carries its state cookie to whichever instance the balancer picks.
            second.client.cookies.update(first.client.cookies)
            token = platform.sign(platform.claims(nonce=nonce, now=second.clock.now))
            response = second.launch(token, state)
            assert response.status_code == 200, response.text
            # And a replay on the first instance finds the state gone.
            first.client.cookies.set(f"lti1p3-{state}", state, path="/lti")
            assert first.launch(token, state, json=True).status_code == 401
            assert second.counts()["lti_launch"] == 1
    finally:
        engine_a.dispose()
        engine_b.dispose()


def test_forced_refetch_is_rate_limited_across_refused_launches(new_database_url) -> None:  # type: ignore[no-untyped-def]
    url = new_database_url("sqlite")
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with harness(
            make_session_factory(engine), url, isolate=False, jwks_refetch_interval_seconds=60
        ) as h:
            assert h.full_launch().status_code == 200
            assert len(h.platform.server.fetches) == 1
            for _ in range(3):
                response, _before = launch_with(h, kid="flood-kid")
                assert response.status_code == 401
            # One forced refetch for the first unknown kid, then the rate limit answers.
            assert len(h.platform.server.fetches) == 2
            assert "moments ago" in launch_with(h, kid="flood-kid")[0].json()["message"]
            h.clock.advance(61)
            launch_with(h, kid="flood-kid")
            assert len(h.platform.server.fetches) == 3
    finally:
        engine.dispose()


def test_login_older_than_its_ttl_is_refused(h: LtiHarness) -> None:
    state, nonce = h.start()
    h.clock.advance(600 + 1)  # Settings.login_ttl_seconds
    before = h.checksums()
    token = h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now))
    body = assert_refused(h, h.launch(token, state, json=True), 401, "state", before)
    assert "expired" in body["message"]
