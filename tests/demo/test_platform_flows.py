"""The demo platform's deep linking and dynamic registration steps, in-process: the deep linking
request it signs (Moodle 4.5's shape), each check on the tool's LtiDeepLinkingResponse, and the
registration endpoint's checks (single-use token, the fields Moodle requires)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from adaptive_lti.core.errors import InvalidInputError, NotFoundError
from adaptive_lti.demo import dynamic_registration as registration
from adaptive_lti.demo.deep_linking import (
    CONTENT_ITEMS_CLAIM,
    DATA_CLAIM,
    DeepLinkingResponseError,
    ReturnSessionCodec,
    add_activities,
    added_activities,
    verify_response,
)
from adaptive_lti.demo.platform import (
    DEEP_LINKING_SETTINGS_CLAIM,
    DEMO_PEOPLE,
    LTI_CLAIM,
    DemoPlatform,
    DemoPlatformError,
    PendingLaunch,
    PendingLaunchCodec,
    PlatformKey,
    generate_private_key_pem,
)
from adaptive_lti.demo.store import DemoPlatformStore
from tests.demo.samples import NOW, TOOL

IRENE = next(person for person in DEMO_PEOPLE if person.key == "irene")
ANA = next(person for person in DEMO_PEOPLE if person.key == "ana")


@pytest.fixture(scope="module")
def tool_key() -> PlatformKey:
    """Stands in for the tool's signing key (any RSA key with a kid)."""
    return PlatformKey.from_pem(generate_private_key_pem())


@pytest.fixture
def store(tmp_path: Path) -> DemoPlatformStore:
    return DemoPlatformStore(tmp_path / "state.json")


def response_claims(platform: DemoPlatform, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": platform.client_id,
        "aud": [platform.issuer],
        "iat": NOW,
        "exp": NOW + 300,
        "nonce": "fresh-nonce",
        LTI_CLAIM + "message_type": "LtiDeepLinkingResponse",
        LTI_CLAIM + "version": "1.3.0",
        LTI_CLAIM + "deployment_id": platform.deployment_id,
        CONTENT_ITEMS_CLAIM: [
            {
                "type": "ltiResourceLink",
                "title": "Intro",
                "url": TOOL + "/lti/launch",
                "custom": {"design": "intro-programming"},
                "lineItem": {"scoreMaximum": 100, "label": "Intro", "resourceId": "intro"},
            }
        ],
    }
    for name, value in changes.items():
        name = {"message_type": LTI_CLAIM + "message_type", "items": CONTENT_ITEMS_CLAIM}.get(
            name, name
        )
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign(key: PlatformKey, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


# --- the request ------------------------------------------------------------------------------


def deep_linking_auth(platform: DemoPlatform, user_id: str) -> dict[str, str]:
    return {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": platform.tool_launch_url,
        "login_hint": user_id,
        "lti_message_hint": "0",
        "nonce": "n",
        "state": "s",
    }


def test_the_deep_linking_request_is_shaped_like_moodles(platform: DemoPlatform) -> None:
    answer = platform.authorize(
        deep_linking_auth(platform, IRENE.user_id),
        platform.pending_deep_linking_for(IRENE),
        NOW,
        deep_link_return_url=platform.issuer + "/deep-linking/return?sesskey=x",
    )
    claims = jwt.decode(answer.fields["id_token"], options={"verify_signature": False})
    assert claims[LTI_CLAIM + "message_type"] == "LtiDeepLinkingRequest"
    assert LTI_CLAIM + "resource_link" not in claims
    assert "design" not in claims[LTI_CLAIM + "custom"]
    settings = claims[DEEP_LINKING_SETTINGS_CLAIM]
    assert settings["deep_link_return_url"].endswith("sesskey=x")
    assert settings["accept_types"] == ["ltiResourceLink"]
    assert settings["accept_presentation_document_targets"] == ["frame", "iframe", "window"]
    assert (settings["accept_multiple"], settings["auto_create"]) == (True, False)
    assert "data" not in settings
    assert "lineitem" not in claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]


def test_a_learner_gets_no_deep_linking_request(platform: DemoPlatform) -> None:
    with pytest.raises(DemoPlatformError, match="only the instructor"):
        platform.authorize(
            deep_linking_auth(platform, ANA.user_id),
            PendingLaunch(user_id=ANA.user_id, course_module_id="0"),
            NOW,
            deep_link_return_url=platform.issuer + "/deep-linking/return?sesskey=x",
        )


def test_an_unknown_activity_gets_no_token(platform: DemoPlatform) -> None:
    request = {**deep_linking_auth(platform, ANA.user_id), "lti_message_hint": "99"}
    with pytest.raises(DemoPlatformError, match="no activity"):
        platform.authorize(request, PendingLaunch(user_id=ANA.user_id, course_module_id="99"), NOW)


def test_the_return_session_is_signed() -> None:
    codec = ReturnSessionCodec("k" * 40)
    platform = DemoPlatform.for_tool(TOOL, PlatformKey.from_pem(generate_private_key_pem()))
    url = codec.return_url(platform, IRENE)
    sesskey = url.split("sesskey=")[1]
    assert codec.user_id(sesskey) == IRENE.user_id
    with pytest.raises(DeepLinkingResponseError):
        codec.user_id(sesskey[:-2] + "xx")
    with pytest.raises(DeepLinkingResponseError):
        ReturnSessionCodec("k" * 40, max_age=-1).user_id(sesskey)


# --- the response ------------------------------------------------------------------------------


def test_a_good_response_is_accepted_once(
    platform: DemoPlatform, tool_key: PlatformKey, store: DemoPlatformStore
) -> None:
    token = sign(tool_key, response_claims(platform))
    verified = verify_response(platform, token, tool_key.public_jwks(), NOW, store)
    [item] = verified.items
    assert item.custom == {"design": "intro-programming"}
    assert item.line_item is not None and item.line_item.score_maximum == 100
    with pytest.raises(DeepLinkingResponseError, match="nonce was used"):
        verify_response(platform, token, tool_key.public_jwks(), NOW, store)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exp": NOW - 60}, "expired"),
        ({"exp": "tomorrow"}, "not a number"),
        ({"iat": True}, "not a number"),
        ({"iat": NOW + 600}, "future"),
        ({"exp": NOW + 86_400}, "lives too long"),
        ({"nonce": None}, "nonce"),
        ({"aud": ["https://elsewhere.example"]}, "another platform"),
        ({"iss": "someone-else"}, "client id"),
        ({"message_type": "LtiResourceLinkRequest"}, "message_type"),
        ({LTI_CLAIM + "deployment_id": "2"}, "deployment_id"),
        ({LTI_CLAIM + "version": "1.1"}, "version"),
        ({DATA_CLAIM: "opaque"}, "data"),
        ({"items": []}, "no activity"),
        ({"items": None}, "no activity"),
        ({"items": {"type": "ltiResourceLink"}}, "not a list"),
        ({"items": [{"type": "link", "url": TOOL}]}, "type 'link'"),
        ({"items": [{"type": "ltiResourceLink", "url": "https://evil.example/x"}]}, "tool's site"),
        ({"items": [{"type": "ltiResourceLink", "custom": {"a": 1}}]}, "not strings"),
        ({"items": [{"type": "ltiResourceLink", "lineItem": {"scoreMaximum": 0}}]}, "above 0"),
        ({"items": [{"type": "ltiResourceLink", "title": 5}]}, "not text"),
    ],
)
def test_a_bad_response_is_refused_and_changes_nothing(
    platform: DemoPlatform,
    tool_key: PlatformKey,
    store: DemoPlatformStore,
    changes: dict[str, Any],
    message: str,
) -> None:
    token = sign(tool_key, response_claims(platform, **changes))
    with pytest.raises(DeepLinkingResponseError, match=message):
        verify_response(platform, token, tool_key.public_jwks(), NOW, store)
    with store.locked(write=False) as data:
        assert data["deep_linking_nonces"] == {}


def test_signatures_and_keys_are_checked(
    platform: DemoPlatform, tool_key: PlatformKey, store: DemoPlatformStore
) -> None:
    other = PlatformKey.from_pem(generate_private_key_pem())
    jwks = tool_key.public_jwks()
    claims = response_claims(platform)
    forged = jwt.encode(claims, other.private_key, algorithm="RS256", headers={"kid": tool_key.kid})
    with pytest.raises(DeepLinkingResponseError, match="valid signature"):
        verify_response(platform, forged, jwks, NOW, store)
    with pytest.raises(DeepLinkingResponseError, match="does not hold"):
        verify_response(platform, sign(other, claims), jwks, NOW, store)
    hmac = jwt.encode(claims, "s" * 40, algorithm="HS256", headers={"kid": tool_key.kid})
    with pytest.raises(DeepLinkingResponseError, match="not RS256"):
        verify_response(platform, hmac, jwks, NOW, store)
    for junk in ("", "not-a-jwt"):
        with pytest.raises(DeepLinkingResponseError):
            verify_response(platform, junk, jwks, NOW, store)


def test_activities_get_new_ids_and_a_gradebook_column(
    platform: DemoPlatform, tool_key: PlatformKey, store: DemoPlatformStore
) -> None:
    items = [
        {"type": "ltiResourceLink", "title": "A", "custom": {"design": "a"}},
        {"type": "ltiResourceLink", "title": "B", "lineItem": {"scoreMaximum": 10}},
    ]
    token = sign(tool_key, response_claims(platform, items=items))
    verified = verify_response(platform, token, tool_key.public_jwks(), NOW, store)
    columns: list[dict[str, Any]] = []

    def add_line_item(body: Any) -> str:
        columns.append(dict(body))
        return str(len(columns) + 1)

    created = add_activities(
        store, platform, verified.items, IRENE, datetime.now(UTC), add_line_item
    )
    assert [(a.course_module_id, a.resource_link_id) for a in created] == [("8", "2"), ("9", "3")]
    assert created[0].line_item_id is None and created[1].line_item_id == "2"
    assert columns == [
        {"label": "B", "scoreMaximum": 10.0, "resourceLinkId": "3", "resourceId": "", "tag": ""}
    ]
    assert added_activities(store) == created
    assert platform.find_activity("9", added_activities(store)) == created[1]
    claims = platform.id_token_claims(ANA, "n", NOW, created[0])
    assert claims[LTI_CLAIM + "custom"]["design"] == "a"
    assert claims[LTI_CLAIM + "resource_link"]["id"] == "2"
    assert "lineitem" not in claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]


# --- dynamic registration -------------------------------------------------------------------------


def tool_body() -> dict[str, Any]:
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "initiate_login_uri": TOOL + "/lti/login",
        "redirect_uris": [TOOL + "/lti/launch"],
        "client_name": "Adaptive learning paths",
        "jwks_uri": TOOL + "/.well-known/jwks.json",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score https://example/unknown",
        registration.TOOL_CONFIGURATION: {
            "domain": "tool.test:8000",
            "target_link_uri": TOOL + "/lti/launch",
            "claims": ["sub", "name"],
            "messages": [{"type": "LtiDeepLinkingRequest"}],
        },
    }


def test_a_registration_is_answered_like_moodle_and_the_token_is_single_use(
    platform: DemoPlatform, store: DemoPlatformStore
) -> None:
    token = registration.issue_registration_token(store, NOW)
    answer = registration.register_tool(store, platform, f"Bearer {token}", tool_body(), NOW)
    assert len(answer["client_id"]) == 15
    assert answer[registration.TOOL_CONFIGURATION]["deployment_id"] == "2"
    assert answer["scope"] == "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    [tool] = registration.tool_registrations(store)
    assert (tool.client_id, tool.status, tool.messages) == (
        answer["client_id"],
        "pending",
        ("LtiDeepLinkingRequest",),
    )
    with pytest.raises(registration.RegistrationRefused) as refused:
        registration.register_tool(store, platform, f"Bearer {token}", tool_body(), NOW)
    assert refused.value.status_code == 401
    second = registration.issue_registration_token(store, NOW)
    again = registration.register_tool(store, platform, f"Bearer {second}", tool_body(), NOW)
    assert again[registration.TOOL_CONFIGURATION]["deployment_id"] == "3"
    assert registration.activate_tool(store, tool.client_id).status == "active"
    with pytest.raises(NotFoundError):
        registration.activate_tool(store, "nobody")


def _without(name: str) -> dict[str, Any]:
    body = tool_body()
    if name.startswith("tool."):
        del body[registration.TOOL_CONFIGURATION][name[5:]]
    else:
        del body[name]
    return body


@pytest.mark.parametrize(
    "body",
    [
        _without("response_types"),
        _without("initiate_login_uri"),
        _without("redirect_uris"),
        _without("client_name"),
        _without("jwks_uri"),
        _without("token_endpoint_auth_method"),
        _without(registration.TOOL_CONFIGURATION),
        _without("tool.domain"),
        _without("tool.target_link_uri"),
        {**tool_body(), "token_endpoint_auth_method": "client_secret_basic"},
        {
            **tool_body(),
            registration.TOOL_CONFIGURATION: {
                "domain": "other.test",
                "target_link_uri": TOOL + "/lti/launch",
            },
        },
        ["not", "an", "object"],
    ],
)
def test_a_registration_missing_what_moodle_requires_is_refused_and_keeps_the_token(
    platform: DemoPlatform, store: DemoPlatformStore, body: Any
) -> None:
    token = registration.issue_registration_token(store, NOW)
    with pytest.raises(registration.RegistrationRefused) as refused:
        registration.register_tool(store, platform, f"Bearer {token}", body, NOW)
    assert refused.value.status_code == 400
    assert refused.value.error == "invalid_client_metadata"
    assert registration.tool_registrations(store) == []
    # Corrected, the same token still works (Moodle uses it up only on success).
    registration.register_tool(store, platform, f"Bearer {token}", tool_body(), NOW)


def test_tokens_expire_and_must_be_bearer(platform: DemoPlatform, store: DemoPlatformStore) -> None:
    token = registration.issue_registration_token(store, NOW)
    for authorization in (None, "", token, f"Basic {token}", "Bearer "):
        with pytest.raises(registration.RegistrationRefused):
            registration.register_tool(store, platform, authorization, tool_body(), NOW)
    later = NOW + registration.REGISTRATION_TOKEN_LIFETIME_SECONDS + 1
    with pytest.raises(registration.RegistrationRefused, match="expired"):
        registration.register_tool(store, platform, f"Bearer {token}", tool_body(), later)


def test_the_start_url_keeps_the_tools_own_query(platform: DemoPlatform) -> None:
    url = registration.registration_start_url(
        TOOL + "/lti/register?tenant=a&registration_token=old", platform, "tok"
    )
    assert url.startswith(TOOL + "/lti/register?tenant=a&openid_configuration=")
    assert url.endswith("&registration_token=tok")
    for bad in ("javascript:alert(1)", "/lti/register", "ftp://tool.test/x", "http://t/#x"):
        with pytest.raises(InvalidInputError):
            registration.check_tool_url(bad)


def test_a_launch_through_a_registered_tool_uses_its_client_and_deployment(
    platform: DemoPlatform, store: DemoPlatformStore
) -> None:
    token = registration.issue_registration_token(store, NOW)
    answer = registration.register_tool(store, platform, f"Bearer {token}", tool_body(), NOW)
    client_id = answer["client_id"]
    with pytest.raises(InvalidInputError, match="still pending"):
        registration.platform_for_tool(store, platform, client_id)
    with pytest.raises(NotFoundError):
        registration.platform_for_tool(store, platform, "nobody")
    registration.activate_tool(store, client_id)
    through = registration.platform_for_tool(store, platform, client_id)
    assert (through.client_id, through.deployment_id) == (client_id, "2")
    assert through.issuer == platform.issuer and through.key == platform.key
    login = through.login_initiation(ANA)
    assert (login.fields["client_id"], login.fields["lti_deployment_id"]) == (client_id, "2")

    codec = PendingLaunchCodec("k" * 40)
    pending = PendingLaunch(user_id=ANA.user_id, course_module_id="7", client_id=client_id)
    assert codec.decode(codec.encode(pending)) == pending
    plain = PendingLaunch(user_id=ANA.user_id, course_module_id="7")
    assert codec.decode(codec.encode(plain)) == plain
