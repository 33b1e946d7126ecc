"""The demo platform's protocol steps: keys, login initiation, the authorization endpoint's checks
(as Moodle 4.5's auth.php makes them) and the id_token it signs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest
from jwcrypto.jwk import JWK

from adaptive_lti.demo.platform import (
    BASIC_OUTCOME_CLAIM,
    DEMO_PEOPLE,
    LTI_CLAIM,
    DemoPlatform,
    DemoPlatformError,
    PendingLaunch,
    PendingLaunchCodec,
    PlatformKey,
    generate_private_key_pem,
    load_or_create_platform_key,
)
from tests.demo.samples import NOW, TOOL


def auth_request(platform: DemoPlatform, **overrides: str | None) -> dict[str, str]:
    """A correct authentication request from the tool for Ana, with some fields changed."""
    request = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": platform.tool_launch_url,
        "login_hint": "3",
        "lti_message_hint": platform.activity.course_module_id,
        "state": "state-from-the-tool",
        "nonce": "nonce-from-the-tool",
    }
    for name, value in overrides.items():
        if value is None:
            request.pop(name, None)
        else:
            request[name] = value
    return request


def ana_pending(platform: DemoPlatform) -> PendingLaunch:
    ana = platform.person("ana")
    assert ana is not None
    return platform.pending_launch_for(ana)


def decode(platform: DemoPlatform, token: str) -> dict[str, object]:
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == platform.key.kid
    jwk = jwt.PyJWK(platform.key.public_jwks()["keys"][0])
    claims: dict[str, object] = jwt.decode(
        token,
        jwk,
        algorithms=["RS256"],
        audience=platform.client_id,
        issuer=platform.issuer,
        options={"verify_exp": False, "verify_iat": False},
    )
    return claims


# --- keys ---------------------------------------------------------------------------------------


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "platform.pem"
    first = load_or_create_platform_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_platform_key(path).kid == first.kid
    assert [p.name for p in path.parent.iterdir()] == ["platform.pem"]  # no temporary left


def test_an_existing_key_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "platform.pem"
    pem = generate_private_key_pem()
    path.write_bytes(pem)
    assert load_or_create_platform_key(path).kid == PlatformKey.from_pem(pem).kid


def test_a_broken_key_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "platform.pem"
    path.write_text("not a key")
    with pytest.raises(DemoPlatformError, match="Delete the key file"):
        load_or_create_platform_key(path)


def test_jwks_publishes_the_public_key_with_kid_alg_use(platform: DemoPlatform) -> None:
    (jwk,) = platform.key.public_jwks()["keys"]
    assert jwk["kty"] == "RSA"
    assert (jwk["alg"], jwk["use"], jwk["kid"]) == ("RS256", "sig", platform.key.kid)
    assert "d" not in jwk and "p" not in jwk  # nothing private
    # The kid is the RFC 7638 thumbprint: jwcrypto's own computation (via pylti1p3) agrees.
    assert JWK(**jwk).thumbprint() == platform.key.kid


# --- login initiation ---------------------------------------------------------------------------


def test_login_initiation_is_moodle_shaped(platform: DemoPlatform) -> None:
    ana = platform.person("ana")
    assert ana is not None
    form = platform.login_initiation(ana)
    assert form.action == TOOL + "/lti/login"
    assert form.fields == {
        "iss": TOOL + "/demo-platform",
        "target_link_uri": TOOL + "/lti/launch",
        "login_hint": "3",
        "lti_message_hint": "7",
        "client_id": platform.client_id,
        "lti_deployment_id": "1",
    }


def test_people_match_the_personas_and_include_an_instructor(platform: DemoPlatform) -> None:
    backgrounds = {p.key: dict(p.custom) for p in DEMO_PEOPLE if not p.is_instructor}
    assert backgrounds["ana"] == {"prior_programming": "none", "goal": "interest"}
    assert backgrounds["ben"] == {"prior_programming": "experienced", "goal": "vocational"}
    assert backgrounds["chen"] == {"prior_programming": "some", "goal": "academic"}
    assert backgrounds["dara"] == {"prior_programming": "none", "goal": "academic"}
    assert backgrounds["eve"] == {"prior_programming": "experienced", "goal": "interest"}
    assert backgrounds["femi"] == {"prior_programming": "some", "goal": "vocational"}
    assert backgrounds["gabi"] == {}
    assert [p.key for p in DEMO_PEOPLE if p.is_instructor] == ["irene"]
    assert len({p.user_id for p in DEMO_PEOPLE}) == len(DEMO_PEOPLE)
    assert platform.person("3") == platform.person("ana")
    assert platform.person("nobody") is None


# --- the authorization endpoint ------------------------------------------------------------------


def test_a_correct_request_gets_a_signed_moodle_shaped_id_token(platform: DemoPlatform) -> None:
    answer = platform.authorize(auth_request(platform), ana_pending(platform), now=NOW)
    assert not answer.is_error
    assert answer.action == TOOL + "/lti/launch"
    assert set(answer.fields) == {"id_token", "state"}
    assert answer.fields["state"] == "state-from-the-tool"
    claims = decode(platform, answer.fields["id_token"])
    assert claims["iss"] == TOOL + "/demo-platform"
    assert claims["aud"] == platform.client_id
    assert claims["sub"] == "3"
    assert claims["nonce"] == "nonce-from-the-tool"
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 60)
    assert (claims["given_name"], claims["family_name"]) == ("Ana", "Alves")
    assert claims[LTI_CLAIM + "version"] == "1.3.0"
    assert claims[LTI_CLAIM + "message_type"] == "LtiResourceLinkRequest"
    assert claims[LTI_CLAIM + "deployment_id"] == "1"
    assert claims[LTI_CLAIM + "target_link_uri"] == TOOL + "/lti/launch"
    assert claims[LTI_CLAIM + "roles"] == [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
    ]
    assert claims[LTI_CLAIM + "resource_link"] == {
        "id": "1",
        "title": platform.activity.title,
        "description": platform.activity.description,
    }
    context = claims[LTI_CLAIM + "context"]
    assert isinstance(context, dict) and context["type"] == ["CourseSection"]
    custom = claims[LTI_CLAIM + "custom"]
    assert isinstance(custom, dict)
    assert custom["prior_programming"] == "none" and custom["goal"] == "interest"
    assert all(isinstance(value, str) for value in custom.values())
    assert claims[LTI_CLAIM + "ext"] == {"lms": "moodle-2", "user_username": "ana.alves"}
    tool_platform = claims[LTI_CLAIM + "tool_platform"]
    assert isinstance(tool_platform, dict) and tool_platform["product_family_code"] == "moodle"
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert isinstance(ags, dict)
    assert str(ags["lineitem"]).startswith(TOOL + "/demo-platform/services/")
    assert str(ags["lineitem"]).endswith("?type_id=1")
    nrps = claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
    assert isinstance(nrps, dict) and nrps["service_versions"] == ["1.0", "2.0"]
    outcome = claims[BASIC_OUTCOME_CLAIM]
    assert isinstance(outcome, dict)
    assert json.loads(str(outcome["lis_result_sourcedid"]))["data"]["userid"] == "3"


def test_the_instructor_gets_the_instructor_role_and_no_outcome_claim(
    platform: DemoPlatform,
) -> None:
    irene = platform.person("irene")
    assert irene is not None
    answer = platform.authorize(
        auth_request(platform, login_hint=irene.user_id),
        platform.pending_launch_for(irene),
        now=NOW,
    )
    claims = decode(platform, answer.fields["id_token"])
    assert claims[LTI_CLAIM + "roles"] == [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
    ]
    assert BASIC_OUTCOME_CLAIM not in claims
    assert "prior_programming" not in dict(claims[LTI_CLAIM + "custom"])  # type: ignore[call-overload]


def test_the_locale_is_moodle_style(platform: DemoPlatform) -> None:
    chen = platform.person("chen")
    assert chen is not None
    claims = platform.id_token_claims(chen, "n", NOW)
    assert claims[LTI_CLAIM + "launch_presentation"]["locale"] == "pt_br"


def test_prompt_may_be_absent_as_moodle_allows(platform: DemoPlatform) -> None:
    answer = platform.authorize(auth_request(platform, prompt=None), ana_pending(platform), now=NOW)
    assert not answer.is_error


def test_state_is_not_invented_when_the_tool_sent_none(platform: DemoPlatform) -> None:
    answer = platform.authorize(auth_request(platform, state=None), ana_pending(platform), now=NOW)
    assert "state" not in answer.fields


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"scope": None}, "invalid_request", "Missing scope"),
        ({"nonce": ""}, "invalid_request", "Missing nonce"),
        ({"login_hint": None}, "invalid_request", "Missing login_hint"),
        ({"response_type": None}, "invalid_request", "Missing response_type"),
        ({"client_id": None}, "invalid_request", "Missing client_id"),
        ({"lti_message_hint": "8"}, "invalid_request", "No launch id in LTI hint"),
        ({"lti_message_hint": None}, "invalid_request", "No launch id in LTI hint"),
        ({"scope": "openid profile"}, "invalid_scope", "scope must be openid"),
        ({"response_type": "code"}, "unsupported_response_type", "response_type must be id_token"),
        ({"client_id": "someone-else"}, "unauthorized_client", "Unknown client_id"),
        ({"login_hint": "4"}, "access_denied", "login_hint is not the logged-in user"),
        ({"response_mode": None}, "invalid_request", "Missing response_mode"),
        ({"response_mode": "query"}, "invalid_request", "Invalid response_mode"),
        ({"prompt": "login"}, "invalid_request", "Invalid prompt"),
    ],
)
def test_a_bad_request_gets_the_error_posted_back_to_the_tool(
    platform: DemoPlatform, overrides: dict[str, str | None], error: str, description: str
) -> None:
    answer = platform.authorize(auth_request(platform, **overrides), ana_pending(platform), NOW)
    assert answer.is_error
    assert answer.action == platform.tool_launch_url
    assert answer.fields == {
        "error": error,
        "error_description": description,
        "state": "state-from-the-tool",
    }


@pytest.mark.parametrize(
    "redirect_uri",
    [
        TOOL + "/lti/launch/",  # trailing slash: not exactly the registered URI
        "http://TOOL.test:8000/lti/launch",
        "https://evil.example/lti/launch",
        "",
    ],
)
def test_an_unregistered_redirect_uri_gets_a_page_not_a_post(
    platform: DemoPlatform, redirect_uri: str
) -> None:
    with pytest.raises(DemoPlatformError, match="redirect"):
        platform.authorize(
            auth_request(platform, redirect_uri=redirect_uri), ana_pending(platform), now=NOW
        )


def test_no_launch_in_progress_gets_a_page(platform: DemoPlatform) -> None:
    with pytest.raises(DemoPlatformError, match="no launch in progress"):
        platform.authorize(auth_request(platform), None, now=NOW)


# --- the pending launch cookie -----------------------------------------------------------------


def test_pending_launch_round_trips_and_refuses_tampering() -> None:
    codec = PendingLaunchCodec("a" * 40)
    value = codec.encode(PendingLaunch(user_id="3", course_module_id="7"))
    assert codec.decode(value) == PendingLaunch(user_id="3", course_module_id="7")
    assert codec.decode(value[:-2] + "xx") is None
    assert PendingLaunchCodec("b" * 40).decode(value) is None
    assert codec.decode("") is None
    assert codec.decode(None) is None


def test_an_old_pending_launch_is_refused() -> None:
    value = PendingLaunchCodec("a" * 40).encode(PendingLaunch(user_id="3", course_module_id="7"))
    assert PendingLaunchCodec("a" * 40, max_age=-1).decode(value) is None


def test_openid_configuration_names_the_endpoints(platform: DemoPlatform) -> None:
    configuration = platform.openid_configuration()
    assert configuration["issuer"] == platform.issuer
    assert configuration["authorization_endpoint"] == TOOL + "/demo-platform/auth"
    assert configuration["jwks_uri"] == TOOL + "/demo-platform/jwks.json"
    assert configuration["token_endpoint"] == TOOL + "/demo-platform/token"
