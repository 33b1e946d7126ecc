"""LTI Deep Linking 2.0: reading the request's settings (row 18) and the signed response."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.lti import deeplink
from adaptive_lti.lti.keys import SigningKey, generate_key_pair
from tests.design_samples import (
    CLIENT_ID,
    ISSUER,
    MOODLE_DEEP_LINKING_SETTINGS,
    NOW,
    deep_linking_launch,
    launch_context,
)


def test_moodles_settings_are_read() -> None:
    request = deeplink.read_deep_linking_request(deep_linking_launch())
    assert request.return_url == MOODLE_DEEP_LINKING_SETTINGS["deep_link_return_url"]
    assert request.accept_types == ("ltiResourceLink",)
    assert request.accept_multiple
    assert request.accept_presentation_document_targets == ("frame", "iframe", "window")
    assert request.data is None  # Moodle sends none
    assert request.title == "DL" and request.text is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"deep_link_return_url": None}, "no deep_link_return_url"),
        ({"deep_link_return_url": ""}, "no deep_link_return_url"),
        ({"deep_link_return_url": "/relative/path"}, "not an absolute http(s) URL"),
        ({"deep_link_return_url": "ftp://moodle.example.edu/x"}, "not an absolute http(s) URL"),
        ({"accept_types": None}, "no accept_types"),
        ({"accept_types": []}, "no accept_types"),
        ({"accept_types": ["file", "html"]}, "accepts only file, html"),
    ],
)
def test_unusable_settings_are_refused_with_400(change: dict[str, Any], words: str) -> None:
    settings = {**MOODLE_DEEP_LINKING_SETTINGS, **change}
    settings = {key: value for key, value in settings.items() if value is not None}
    with pytest.raises(LaunchError) as raised:
        deeplink.read_deep_linking_request(deep_linking_launch(deep_linking_settings=settings))
    assert raised.value.status_code == 400
    assert raised.value.check == "deep linking settings"
    assert words in raised.value.message
    assert raised.value.hint


def test_a_resource_link_launch_is_not_a_deep_linking_request() -> None:
    with pytest.raises(LaunchError, match="LtiResourceLinkRequest") as raised:
        deeplink.read_deep_linking_request(launch_context())
    assert raised.value.status_code == 400


def test_line_items_only_with_the_lineitem_scope() -> None:
    assert deeplink.can_create_line_items(deep_linking_launch())
    assert not deeplink.can_create_line_items(
        deep_linking_launch(ags_scopes=("https://purl.imsglobal.org/spec/lti-ags/scope/score",))
    )
    assert not deeplink.can_create_line_items(deep_linking_launch(ags_scopes=None))


def test_the_response_is_signed_with_the_tools_key_and_kid() -> None:
    kid, pem, public_jwk = generate_key_pair()
    private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    key = SigningKey(kid, private_key)  # type: ignore[arg-type]
    launch = deep_linking_launch(
        deep_linking_settings={**MOODLE_DEEP_LINKING_SETTINGS, "data": "xyz"}
    )
    request = deeplink.read_deep_linking_request(launch)
    item = deeplink.ResourceLinkItem(
        title="Intro",
        url="https://tool.example.org/lti/launch",
        custom={"design": "intro"},
        text="An introduction",
        line_item=deeplink.LineItemRequest(100, "Intro", "intro", tag="grade"),
    )
    answer = deeplink.build_return(launch, request, [item], key, now=NOW, message="Added")
    assert answer.return_url == request.return_url
    assert answer.fields == {"JWT": answer.jwt}
    assert jwt.get_unverified_header(answer.jwt)["kid"] == kid
    claims = jwt.decode(
        answer.jwt,
        jwt.PyJWK(public_jwk).key,
        algorithms=["RS256"],
        audience=ISSUER,
        issuer=CLIENT_ID,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["exp"] == int((NOW + timedelta(minutes=5)).timestamp())
    assert claims[deeplink.DATA] == "xyz"
    assert claims[deeplink.MESSAGE] == "Added"
    assert claims[deeplink.CONTENT_ITEMS] == [
        {
            "type": "ltiResourceLink",
            "title": "Intro",
            "url": "https://tool.example.org/lti/launch",
            "custom": {"design": "intro"},
            "text": "An introduction",
            "lineItem": {
                "scoreMaximum": 100,
                "label": "Intro",
                "resourceId": "intro",
                "tag": "grade",
            },
        }
    ]


def test_no_line_items_when_the_platform_says_it_ignores_them() -> None:
    settings = {**MOODLE_DEEP_LINKING_SETTINGS, "accept_lineitem": False}
    launch = deep_linking_launch(deep_linking_settings=settings)
    assert deeplink.read_deep_linking_request(launch).accept_line_item is False
    assert not deeplink.can_create_line_items(launch)
    accepting = deep_linking_launch(
        deep_linking_settings={**MOODLE_DEEP_LINKING_SETTINGS, "accept_lineitem": True}
    )
    assert deeplink.can_create_line_items(accepting)
