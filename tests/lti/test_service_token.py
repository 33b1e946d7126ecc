"""Service access tokens: the client-credentials assertion, DB caching, refresh once on 401."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import ServiceCallRefused, ServiceSetupProblem, ServiceUnavailable
from adaptive_lti.lti.service_http import authorised_get
from adaptive_lti.lti.service_token import ServiceTokenProvider
from tests.lti.fake_platform import (
    AGS_SCOPES,
    CLIENT_ID,
    MEMBERSHIPS_URL,
    NRPS_SCOPE,
    TOKEN_URL,
    FakeClock,
    FakePlatform,
    service_clients,
    tool_private_key,
)
from tests.lti.fake_platform_fixtures import clock, platform, registration_id

# Fixtures, shared with the other fake-platform tests.
__all__ = ["clock", "platform", "registration_id"]

NRPS_ACCEPT = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@pytest.fixture
def tokens(session_factory: sessionmaker[Session], platform: FakePlatform) -> ServiceTokenProvider:
    return service_clients(session_factory, platform)[2]


def test_the_assertion_has_the_claims_of_security_framework_4_1(
    tokens: ServiceTokenProvider, platform: FakePlatform, registration_id: int, clock: FakeClock
) -> None:
    tokens.access_token(registration_id, [NRPS_SCOPE])
    tokens.access_token(registration_id, [AGS_SCOPES[3]])
    assert len(platform.token_requests) == 2
    first, second = platform.token_requests
    assert first["grant_type"] == "client_credentials"
    assert (
        first["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert first["scope"] == NRPS_SCOPE
    header = jwt.get_unverified_header(first["client_assertion"])
    assert header["alg"] == "RS256"
    assert header["kid"] == "tool-test-kid"
    claims = jwt.decode(
        first["client_assertion"],
        tool_private_key().public_key(),
        algorithms=["RS256"],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == int(clock().timestamp())
    assert 0 < claims["exp"] - claims["iat"] <= 300
    other = jwt.decode(
        second["client_assertion"], options={"verify_signature": False}, algorithms=["RS256"]
    )
    assert other["jti"] != claims["jti"]


def test_a_text_html_token_response_is_read_as_json(
    tokens: ServiceTokenProvider, platform: FakePlatform, registration_id: int
) -> None:
    token = tokens.access_token(registration_id, [NRPS_SCOPE])
    assert token in platform.tokens
    assert platform.tokens[token].scopes == {NRPS_SCOPE}


def test_tokens_are_cached_in_the_database_until_shortly_before_they_expire(
    session_factory: sessionmaker[Session],
    platform: FakePlatform,
    registration_id: int,
    clock: FakeClock,
) -> None:
    first_process = service_clients(session_factory, platform)[2]
    token = first_process.access_token(registration_id, [NRPS_SCOPE])
    # Another provider (another app process) shares the cached token through the database.
    second_process = service_clients(session_factory, platform)[2]
    assert second_process.access_token(registration_id, [NRPS_SCOPE]) == token
    clock.advance(3600 - 61)
    assert first_process.access_token(registration_id, [NRPS_SCOPE]) == token
    assert len(platform.token_requests) == 1
    clock.advance(2)  # now within the 60 s margin before expiry
    assert first_process.access_token(registration_id, [NRPS_SCOPE]) != token
    assert len(platform.token_requests) == 2


def test_one_cached_token_per_scope_set(
    tokens: ServiceTokenProvider, platform: FakePlatform, registration_id: int
) -> None:
    ags = tokens.access_token(registration_id, AGS_SCOPES)
    assert tokens.access_token(registration_id, list(reversed(AGS_SCOPES))) == ags
    assert tokens.access_token(registration_id, [NRPS_SCOPE]) != ags
    assert len(platform.token_requests) == 2


def test_a_401_gets_a_new_token_once_and_the_call_succeeds(
    tokens: ServiceTokenProvider, platform: FakePlatform, registration_id: int
) -> None:
    stale = tokens.access_token(registration_id, [NRPS_SCOPE])
    platform.expire_tokens()  # the platform forgot it early (restart, revoked)
    response = tokens.send(
        registration_id,
        [NRPS_SCOPE],
        authorised_get(tokens._http, MEMBERSHIPS_URL, NRPS_ACCEPT),
        "membership service",
    )
    assert response.status_code == 200
    assert len(platform.token_requests) == 2
    used = [r.headers["authorization"] for r in platform.requests if "authorization" in r.headers]
    assert used == [f"Bearer {stale}", used[1]]
    assert used[1] != used[0]


def test_a_second_401_says_the_authorization_header_is_stripped(
    tokens: ServiceTokenProvider, platform: FakePlatform, registration_id: int
) -> None:
    platform.strip_authorization = True
    with pytest.raises(ServiceSetupProblem) as caught:
        tokens.send(
            registration_id,
            [NRPS_SCOPE],
            authorised_get(tokens._http, MEMBERSHIPS_URL, NRPS_ACCEPT),
            "membership service",
        )
    message = str(caught.value)
    assert "strips the Authorization header" in message
    assert "CGIPassAuth On" in message
    # Exactly one refresh: two tokens, two service calls.
    assert len(platform.token_requests) == 2
    assert sum(1 for r in platform.requests if r.url.path.endswith("/memberships")) == 2


def test_a_token_endpoint_that_refuses_the_tool_says_what_to_check(
    session_factory: sessionmaker[Session], clock: FakeClock, registration_id: int
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = FakePlatform(tool_public_key=other_key.public_key(), clock=clock)
    tokens = service_clients(session_factory, platform)[2]
    with pytest.raises(ServiceSetupProblem) as caught:
        tokens.access_token(registration_id, [NRPS_SCOPE])
    assert "invalid_client" in str(caught.value)
    assert "public key" in caught.value.hint


def test_a_failing_token_endpoint_is_temporary(
    tokens: ServiceTokenProvider, platform: FakePlatform, registration_id: int
) -> None:
    platform.token_faults.extend(["500", "timeout"])
    with pytest.raises(ServiceUnavailable, match="HTTP 500"):
        tokens.access_token(registration_id, [NRPS_SCOPE])
    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        tokens.access_token(registration_id, [NRPS_SCOPE])
    assert tokens.access_token(registration_id, [NRPS_SCOPE])


def test_no_scope_no_token(tokens: ServiceTokenProvider, registration_id: int) -> None:
    with pytest.raises(ServiceCallRefused, match="without any scope"):
        tokens.access_token(registration_id, [])


def test_a_token_endpoint_answering_a_web_page_is_temporary(
    session_factory: sessionmaker[Session], clock: FakeClock, registration_id: int
) -> None:
    import httpx

    from adaptive_lti.lti.service_http import new_http_client
    from tests.lti.fake_platform import tool_signing_key

    def maintenance(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Moodle is being upgraded</html>")

    http = new_http_client(httpx.MockTransport(maintenance))
    tokens = ServiceTokenProvider(session_factory, http, signing_key=tool_signing_key, clock=clock)
    with pytest.raises(
        ServiceUnavailable, match="not JSON: an HTML page saying 'Moodle is being upgraded'"
    ):
        tokens.access_token(registration_id, [NRPS_SCOPE])
